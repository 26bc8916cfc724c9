"""A ``watch`` killed between its printer claim and its send, then started again on the same
store, sends the waiting build at once: the claim of the dead process (same host, its process
gone) does not hold the shop's one printer until its lease runs out (real daemon
subprocesses, a real SQLite store, simulated servers and printer; the kill is SIGKILL at an
explicit seam, ``claim_then_die_child.py``).

Linux-specific only in that the first daemon kills itself with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState, SqliteJobStore, extract_key
from tests.fleet_prints import end_print

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve().parent / "claim_then_die_child.py"
PRINTER = "Bench-A"
#: The first print keeps the printer busy far past any wait (its ~440 s estimate times this):
#: the second build waits in the store, and the test ends the print once it does (the printer
#: finishing it), so the dispatch loop claims the printer then. A print of a few seconds (0.012)
#: made the test wait for it, and on a loaded machine could end before the second build waited.
BUSY_SCALE = 1.0
#: Far inside a claim's 900 s lease, which a claim not taken over waits out: the restarted
#: daemon sends within seconds of its own (0.5-3 s from its first log line to the send at
#: load 5-13), but only after two Python processes start (the daemon, then its simulated
#: server), each a few seconds of wall on a loaded machine; 60 s was crossed at load 16 in
#: session 46 with nothing but slowness in the way (session 47, docs/testing.md).
WAIT_S = 120.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _settings(tmp_path: Path) -> Path:
    recipe = write_recipe(tmp_path, printer="auto", per_build=1, extra_steps=["save_form"])
    path = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet",
                                    hotfolders={"batching": {"window_s": 0.3}})
    return declare_fleet(path, [PRINTER], print_time_scale=BUSY_SCALE, sections={
        "dispatch": {"poll_interval_s": 0.2},
        "logging": {"level": "INFO", "file": str(tmp_path / "watch.jsonl")},
    })


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def _start(command: list[str], tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    with (tmp_path / f"{name}.out").open("ab") as out:
        return subprocess.Popen(command, cwd=tmp_path, env=_environment(), stdout=out,
                                stderr=subprocess.STDOUT)


def _claims_left(store: Path) -> list[tuple[str, str]]:
    """The printer claims in the store as they are written (printer, holder)."""
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
        return [(str(p), str(h)) for p, h in
                conn.execute("SELECT printer, holder FROM printer_claims").fetchall()]


def _waiting(store: Path) -> int:
    """How many builds wait for a printer in the store, as it is written (0: no store yet)."""
    if not store.exists():
        return 0
    with SqliteJobStore(store, create=False) as opened:
        return len(opened.list_builds(state=JobState.WAITING_FOR_PRINTER))


def _events(log: Path, event: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [e for e in (json.loads(line) for line in lines if line.strip())
            if e.get("event") == event]


class TestAWatchKilledBetweenItsClaimAndItsSend:
    """Its claim dies with it: the restarted watch sends the waiting build at once."""

    @pytest.mark.timeout(WAIT_S * 4)
    def test_the_restarted_watch_sends_within_seconds_and_says_it_took_the_claim_over(
        self, tmp_path: Path, started: list[subprocess.Popen[bytes]]
    ) -> None:
        settings = _settings(tmp_path)
        store, fleet, inbox = tmp_path / "jobs.sqlite3", tmp_path / "fleet", tmp_path / "inbox"
        inbox.mkdir()
        first = _start([sys.executable, str(CHILD), "watch", str(settings), "--quiet"],
                       tmp_path, "first")
        started.append(first)
        for seed in (1, 2):  # the first prints at once, the second waits for the printer
            (tmp_path / f"part{seed}.stl").write_bytes(tetra_stl_bytes(seed))
            (tmp_path / f"part{seed}.stl").rename(inbox / f"part{seed}.stl")
        wait_for(lambda: _waiting(store) == 1, WAIT_S,
                 what="the second build waiting for the printer")
        assert end_print(fleet) == PRINTER
        assert first.wait(WAIT_S) == -signal.SIGKILL
        said = (tmp_path / "first.out").read_text(encoding="utf-8", errors="replace")
        claimed = [line.split() for line in said.splitlines() if line.startswith("CLAIMED ")]
        assert len(claimed) == 1, said
        key = claimed[0][1]
        assert claimed[0][2] == PRINTER
        # What the dead process left: its claim on the one printer, and the build waiting.
        left = _claims_left(store)
        assert [p for p, _ in left] == [PRINTER]
        dead_holder = left[0][1]
        assert dead_holder.startswith(f"{socket.gethostname()}:{first.pid}:")
        with SqliteJobStore(store) as opened:
            assert [b.job_key for b in
                    opened.list_builds(state=JobState.WAITING_FOR_PRINTER)] == [key]
        printed_before = [extract_key(str(j["job_name"])) for j in fleet_jobs(fleet)]
        assert len(printed_before) == 1 and key not in printed_before

        second = _start([sys.executable, "-m", "preform_pipeline", "watch", str(settings),
                         "--quiet"], tmp_path, "second")
        started.append(second)
        wait_for(lambda: len(fleet_jobs(fleet)) == 2, WAIT_S,
                 what="the waiting build sent by the restarted watch")
        second.send_signal(signal.SIGINT)
        assert second.wait(60) == 0

        printed = {extract_key(str(j["job_name"])): j["printer"] for j in fleet_jobs(fleet)}
        assert printed[key] == PRINTER and len(printed) == 2
        taken_over = _events(tmp_path / "watch.jsonl", "printer_claim_taken_over")
        assert [(e["printer"], e["build"], e["dead_holder"], e["dead_build"])
                for e in taken_over] == [(PRINTER, key, dead_holder, key)]
        assert _claims_left(store) == []  # sent: the claim ended
