"""A build held for approval survives a SIGKILL of the daemon: after the restart it is still
held (not prepared again, not printed), and once approved with ``jobs approve`` it prints
exactly once; the console follows a held build to its end (real daemon subprocesses, real
simulators, real SQLite).

Linux-specific only in that the daemon is killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
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
from preform_pipeline.report import REPORT_FORMAT
from preform_pipeline.store import Build, JobState, SqliteJobStore, extract_key
from tests.command_line import InProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0
#: A decision is said within this (the dispatch loop's pass, with room for a loaded machine).
DECIDED_S = 15.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _settings(root: Path, *, log_file: Path | None = None) -> Path:
    """A recipe that holds each one-file build for approval; ``log_file``: the daemon logs
    there (JSON lines), and sweeps processing/ only every ten minutes (a rejected build's
    files go to failed/, and its line is said, on the dispatch loop's pass that learns of the
    rejection, not with that sweep)."""
    recipe = write_recipe(root, printer="SimulatedForm4-1", per_build=1,
                          extra_steps=["save_form", "screenshot"], approval=True)
    hot: dict[str, Any] = {"batching": {"window_s": 0.3}}
    if log_file is not None:
        hot["rescan_interval_s"] = 600.0
    path = write_hotfolder_settings(root, recipe, fleet_dir=root / "fleet", hotfolders=hot)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["dispatch"] = {"poll_interval_s": 0.2}
    if log_file is not None:
        data["logging"] = {"file": str(log_file)}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _start(root: Path, settings: Path, started: list[subprocess.Popen[bytes]]) -> None:
    with (root / "daemon.log").open("ab") as out:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet",
             "--log-level", "INFO"],
            cwd=root, env=_environment(), stdout=out, stderr=out))


def _held(store_path: Path) -> list[int]:
    if not store_path.exists():
        return []
    with SqliteJobStore(store_path, create=False) as store:
        return [b.id for b in store.list_builds(state=JobState.AWAITING_APPROVAL)]


class TestApprovalAcrossRestarts:
    """The hold is in the store: a killed daemon neither loses it nor prints it."""

    def test_a_held_build_survives_sigkill_and_prints_once_after_approval(
        self, tmp_path: Path, daemons: list[subprocess.Popen[bytes]], in_process: InProcess
    ) -> None:
        settings = _settings(tmp_path)
        store_path, inbox = tmp_path / "jobs.sqlite3", tmp_path / "inbox"
        inbox.mkdir()
        _start(tmp_path, settings, daemons)
        (tmp_path / "case.stl").write_bytes(tetra_stl_bytes(3, size_mm=6.0))
        (tmp_path / "case.stl").rename(inbox / "case.stl")
        try:
            wait_for(lambda: len(_held(store_path)) == 1, WAIT_S, what="the build held")
        except TimeoutError as exc:  # what the daemon did instead: the evidence goes with tmp_path
            log = (tmp_path / "daemon.log").read_text(encoding="utf-8", errors="replace")
            raise AssertionError(f"{exc}; the daemon's log ends:\n{log[-6000:]}") from exc
        daemons[0].send_signal(signal.SIGKILL)
        daemons[0].wait(10)
        _start(tmp_path, settings, daemons)
        # Recovery runs before the loop starts: the second "hotfolder_started" comes after it.
        wait_for(lambda: (tmp_path / "daemon.log").read_text(
            encoding="utf-8", errors="replace").count("hotfolder_started") == 2
            or daemons[1].poll() is not None, WAIT_S, what="the second daemon started")
        (build_id,) = _held(store_path)
        assert fleet_jobs(tmp_path / "fleet") == []
        with SqliteJobStore(store_path, create=False) as store:
            key = store.get_build(build_id).job_key
        # Approved in the test's process (the command's parse, dispatch and handler): the
        # daemon's restart is what this tests, not a second process start (~1 s of CPU).
        _decide(in_process, tmp_path, "approve", key)
        wait_for(lambda: len(fleet_jobs(tmp_path / "fleet")) >= 1, WAIT_S,
                 what="the approved build printed")
        wait_for(lambda: (inbox / "done" / "case.stl").is_file(), WAIT_S,
                 what="the case settled in done/")
        assert [extract_key(j["job_name"]) for j in fleet_jobs(tmp_path / "fleet")] == [key]
        with SqliteJobStore(store_path, create=False) as store:
            assert len(store.list_builds()) == 1
            (job,) = store.list_jobs()
            assert job.attempts == 1  # prepared once, never again after the restart
            reasons = [t.reason for t in store.build_history(build_id)]
        assert any(r.startswith("approved by ") and r.endswith("(cli)") for r in reasons)


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Path]:
    """A ``watch`` daemon (not ``--quiet``) whose recipe holds each build for approval; its
    console goes to ``console.txt``, its log to ``log.jsonl``. The folder."""
    settings = _settings(tmp_path, log_file=tmp_path / "log.jsonl")
    (tmp_path / "inbox").mkdir()
    with (tmp_path / "console.txt").open("wb") as out, \
            (tmp_path / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings)],
            cwd=tmp_path, env=_environment(), stdout=out, stderr=err)
    try:
        # The test reads the daemon's store: only once the daemon has made it. Opened while
        # the daemon was still creating it, the two openings can lock each other out (session
        # 41: the daemon then stopped at start, its reason on a stderr nobody kept).
        wait_for(lambda: bool(_events(tmp_path, "hotfolder_started"))
                 or process.poll() is not None, WAIT_S, what="the daemon started")
        assert process.poll() is None, (tmp_path / "stderr.txt").read_text(errors="replace")
        yield tmp_path
    finally:
        process.kill()
        process.wait(10)


def _held_builds(root: Path) -> list[Build]:
    if not (root / "jobs.sqlite3").exists():
        return []
    with SqliteJobStore(root / "jobs.sqlite3", create=False) as store:
        return list(store.list_builds(state=JobState.AWAITING_APPROVAL))


def _runs_said(console: str, held_lines: list[str]) -> bool:
    """Every held line is said, and so is the line of the run that held the last of them
    (which comes after its builds' lines), and each run line said counts its held builds.
    Without the run line after them, both counts were 0 and equal as soon as the held lines
    were said: at load 12 the run's line had not come yet when the test read it."""
    if not all(line in console for line in held_lines):
        return False
    last_held = max(console.find(line) for line in held_lines)
    return "finished in " in console[last_held:] and console.count(
        " held for approval\n") == len(re.findall(r"finished in .*\n", console))


def _console(root: Path) -> str:
    return (root / "console.txt").read_text(encoding="utf-8", errors="replace")


def _events(root: Path, name: str) -> list[dict[str, Any]]:
    path = root / "log.jsonl"
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            found.append(event)
    return found


def _run_reports(root: Path) -> list[dict[str, Any]]:
    """The run reports the daemon's batches wrote (each written whole, by a rename)."""
    found = []
    for path in root.rglob("reports/*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") == REPORT_FORMAT:
            found.append(data)
    return found


def _decide(in_process: InProcess, root: Path, *args: str) -> None:
    """``jobs ARGS --store`` the daemon's store, as typed in ``root``: in the test's process
    (:class:`~tests.command_line.InProcess`, without the test's ``PREFORM_PIPELINE_*`` and
    with the package's logging given back), the daemon being what is tested."""
    done = in_process(root, "jobs", *args, "--store", str(root / "jobs.sqlite3"))
    assert done.returncode == 0, done.stderr


class TestTheConsoleFollowsAHeldBuild:
    """Held, then sent or rejected: a line each, and an event each."""

    def test_held_said_then_the_approved_one_sent_and_the_rejected_one_failed(
        self, watching: Path, in_process: InProcess
    ) -> None:
        for number in (1, 2):
            staged = watching / f"case{number}.stl"
            staged.write_bytes(tetra_stl_bytes(number, size_mm=6.0))
            staged.rename(watching / "inbox" / staged.name)
        wait_for(lambda: len(_held_builds(watching)) == 2, WAIT_S, what="both builds held")
        first, second = sorted(_held_builds(watching), key=lambda b: b.id)
        lines = [f"held for approval (dashboard or `jobs approve {build.job_key}`): prepared on "
                 for build in (first, second)]
        wait_for(lambda: _runs_said(_console(watching), lines),
                 WAIT_S, what="the held builds' lines and their runs' lines")
        said = _console(watching)
        assert "] succeeded" not in said
        held = re.findall(r": 0 of (\d) builds? succeeded, (\d) held for approval\n", said)
        assert sum(int(n) for n, _ in held) == sum(int(h) for _, h in held) == 2, said
        assert sorted(e["job_key"] for e in _events(watching, "build_held_for_approval")) == (
            sorted([first.job_key, second.job_key]))
        # Its batches' run reports say it as the console does: each held build flagged, the
        # tally counting it held and not succeeded; ``counts`` keeps it by status.
        wait_for(lambda: sum(r["tally"]["held"] for r in _run_reports(watching)) == 2,
                 WAIT_S, what="the held builds in their runs' reports")
        reports = _run_reports(watching)
        assert sorted(b["job_key"] for r in reports for b in r["builds"] if b["held"]) == (
            sorted([first.job_key, second.job_key]))
        assert {(r["tally"]["succeeded"], r["tally"]["waiting"]) for r in reports} == {(0, 0)}
        assert sum(r["counts"]["succeeded"] for r in reports) == 2

        _decide(in_process, watching, "approve", first.job_key)
        _decide(in_process, watching, "reject", second.job_key, "--reason",
                "crown 3 overlaps the raft")
        # As prompt as the dispatch loop's pass (0.2 s here), not the sweep's ten minutes.
        wait_for(lambda: "approved by" in _console(watching)
                 and "rejected by" in _console(watching), DECIDED_S, what="both decisions said")
        assert len(list((watching / "inbox" / "failed").glob("case*.stl"))) == 1
        said = _console(watching)
        assert f"[{first.job_key}] approved by " in said
        assert "(cli), sent to SimulatedForm4-1\n" in said
        assert (f"[{second.job_key}] rejected by " in said
                and "(cli): crown 3 overlaps the raft; its files go to failed/\n" in said)
        assert said.count(f"[{second.job_key}] rejected") == 1
        (sent,) = _events(watching, "approved_build_sent")
        assert (sent["job_key"], sent["printer"]) == (first.job_key, "SimulatedForm4-1")
        (rejected,) = _events(watching, "rejected_build_settled")
        assert (rejected["job_key"], rejected["reason"]) == (
            second.job_key, "crown 3 overlaps the raft")
