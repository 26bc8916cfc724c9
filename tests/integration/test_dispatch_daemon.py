"""Dispatch in the hot-folder daemon: builds wait for a free printer, go out by priority then
age, and survive a SIGKILL (real daemon subprocesses, real simulators, real SQLite).

Linux-specific only in that the restart test kills with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState, SqliteJobStore, extract_key
from tests.fleet_prints import end_print

REPO_ROOT = Path(__file__).resolve().parents[2]
#: A sent build: the daemon verifies it from the fleet folder from then on.
_SENT_OR_LATER = (JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED)
WAIT_S = 60.0
#: Two printers. A tiny print is estimated at 440 s, and at this scale a printer is busy for
#: all of it: far past every wait, so a printer frees only when the test ends its print
#: (:func:`~tests.fleet_prints.end_print`). Printers freed by the clock (15 s at 0.035) made
#: the test wait that long at every turn, and at 0.012 (about 5 s) raced a loaded 2-core
#: machine: ``jobs waiting`` found nothing left waiting, or a printer freed before the urgent
#: build was ready.
FLEET = [
    {"name": "Bench-A", "machine_type": "FORM-4-0", "material": "FLGPGR05"},
    {"name": "Bench-B", "machine_type": "FORM-4-0", "material": "FLGPGR05"},
]
BUSY_SCALE = 1.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _settings(tmp_path: Path, busy_scale: float) -> Path:
    recipe = write_recipe(tmp_path, printer="auto", per_build=1, extra_steps=["save_form"])
    path = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet",
                                    hotfolders={"batching": {"window_s": 0.3}})
    data = json.loads(path.read_text(encoding="utf-8"))
    data["simulator"] = {"fleet": FLEET, "print_time_scale": busy_scale}
    data["dispatch"] = {"poll_interval_s": 0.2}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class _Daemon:
    """``preform-pipeline watch SETTINGS`` as a subprocess, its output in a log file."""

    def __init__(self, tmp_path: Path, settings: Path) -> None:
        self.log = tmp_path / "daemon.log"
        self.command = [sys.executable, "-m", "preform_pipeline", "watch", str(settings),
                        "--quiet"]
        self.cwd = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=_environment(),
                                            stdout=out, stderr=out)

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[_Daemon]]:
    started: list[_Daemon] = []
    yield started
    for daemon in started:
        daemon.stop(signal.SIGKILL)


def _drop(inbox: Path, name: str, seed: int, sidecar: dict[str, Any] | None = None) -> None:
    staging = inbox.parent / "staging"
    staging.mkdir(exist_ok=True)
    if sidecar is not None:
        (inbox / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    (staging / f"{name}.stl").write_bytes(tetra_stl_bytes(seed))
    (staging / f"{name}.stl").rename(inbox / f"{name}.stl")


def _waiting(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    with SqliteJobStore(store_path, create=False) as store:
        return len(store.list_builds(state=JobState.WAITING_FOR_PRINTER))


def _jobs_waiting(store_path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "jobs", "waiting", "--store",
         str(store_path), "--format", "json"],
        env=_environment(), capture_output=True, text=True, timeout=60, check=True,
    )
    rows: list[dict[str, Any]] = json.loads(out.stdout)["waiting"]
    return rows


def _sent_order(fleet: Path) -> list[str]:
    """Build keys in the order the fleet accepted their prints."""
    jobs = sorted(fleet_jobs(fleet), key=lambda j: str(j["created_at"]))
    return [str(extract_key(j["job_name"])) for j in jobs]


class TestWaitingForPrinters:
    """With two printers and five builds, builds wait and go out as printers free up."""

    @pytest.mark.timeout(WAIT_S * 4)
    def test_builds_wait_then_go_by_priority_then_age_and_jobs_shows_the_waits(
        self, tmp_path: Path, daemons: list[_Daemon]
    ) -> None:
        settings = _settings(tmp_path, BUSY_SCALE)
        store_path, fleet, inbox = tmp_path / "jobs.sqlite3", tmp_path / "fleet", tmp_path / "inbox"
        inbox.mkdir()
        daemon = _Daemon(tmp_path, settings)
        daemons.append(daemon)
        daemon.start()
        for seed in range(4):
            _drop(inbox, f"p{seed}", seed)
        wait_for(lambda: len(fleet_jobs(fleet)) == 2 and _waiting(store_path) == 2, WAIT_S,
                 what="two prints out and two builds waiting")
        _drop(inbox, "urgent", 99, {"priority": 9})
        wait_for(lambda: _waiting(store_path) == 3, WAIT_S, what="the urgent build waiting")
        shown = _jobs_waiting(store_path)
        assert len(shown) == 3, daemon.tail()
        assert all(row["for"].startswith("any ready FORM-4-0 FLGPGR05") for row in shown)
        assert all(row["waited_s"] >= 0 and row["waiting_since"] for row in shown)
        # A printer frees; the daemon sends one waiting build to it; and again.
        for printed in (3, 4, 5):
            freed = end_print(fleet)
            wait_for(lambda n=printed: len(fleet_jobs(fleet)) == n, WAIT_S,
                     what=f"print {printed} sent once {freed} finished")
        daemon.stop()

        with SqliteJobStore(store_path) as store:
            builds = {b.job_key: b for b in store.list_builds()}
            waited = {
                key for key, b in builds.items()
                if any(t.to_state is JobState.WAITING_FOR_PRINTER
                       for t in store.build_history(b.id))
            }
            urgent = next(j.build_id for j in store.list_jobs() if j.priority == 9)
        assert len(waited) >= 2, daemon.tail()
        sent = [key for key in _sent_order(fleet) if key in waited]
        expected = sorted(waited, key=lambda k: (-builds[k].priority,
                                                 builds[k].waiting_since, builds[k].id))
        assert sent == expected, daemon.tail()
        assert builds[sent[0]].id == urgent  # it came last but waited least
        printers = Counter(j["printer"] for j in fleet_jobs(fleet))
        assert set(printers) == {"Bench-A", "Bench-B"}
        assert all(b.state in _SENT_OR_LATER for b in builds.values())
        assert sorted(p.name for p in (inbox / "done").glob("*.stl")) == sorted(
            ["urgent.stl", *(f"p{s}.stl" for s in range(4))])


class TestRestartWhileWaiting:
    """A daemon killed while builds wait sends each of them once, from its saved .form."""

    def test_sigkill_while_waiting_then_restart_sends_each_once_without_preparing_again(
        self, tmp_path: Path, daemons: list[_Daemon]
    ) -> None:
        store_path, fleet, inbox = tmp_path / "jobs.sqlite3", tmp_path / "fleet", tmp_path / "inbox"
        inbox.mkdir()
        # Printers busy for minutes: the builds are certain to be waiting when it dies.
        first = _Daemon(tmp_path, _settings(tmp_path, busy_scale=1.0))
        daemons.append(first)
        first.start()
        for seed in range(4):
            _drop(inbox, f"p{seed}", seed)
        wait_for(lambda: _waiting(store_path) == 2 and len(fleet_jobs(fleet)) == 2, WAIT_S,
                 what="two builds waiting")
        first.stop(signal.SIGKILL)
        with SqliteJobStore(store_path) as store:
            waiting = {b.job_key for b in store.list_builds(state=JobState.WAITING_FOR_PRINTER)}
        assert len(waiting) == 2

        # The restarted daemon finds the printers free (the fleet's prints ended) at once.
        second = _Daemon(tmp_path, _settings(tmp_path, busy_scale=0.0))
        daemons.append(second)
        second.start()
        wait_for(lambda: len(fleet_jobs(fleet)) == 4 and _waiting(store_path) == 0, WAIT_S,
                 what="the waiting builds sent after the restart")
        second.stop()

        per_build = Counter(_sent_order(fleet))
        assert all(per_build[key] == 1 for key in waiting), second.tail()
        assert sum(per_build.values()) == 4
        with SqliteJobStore(store_path) as store:
            for build in store.list_builds():
                history = [t.to_state for t in store.build_history(build.id)]
                assert history.count(JobState.PREPARING) == 1, (build.job_key, history)
                # Sent once; the daemon then follows the print in the fleet folder.
                assert build.state in _SENT_OR_LATER, build.state
        assert len(list((inbox / "done").glob("*.stl"))) == 4
