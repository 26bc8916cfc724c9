"""A build held for approval survives a SIGKILL of the daemon: after the restart it is still
held (not prepared again, not printed), and once approved with ``jobs approve`` it prints
exactly once (real daemon subprocesses, real simulators, real SQLite).

Linux-specific only in that the daemon is killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState, SqliteJobStore, extract_key

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _settings(root: Path) -> Path:
    recipe = write_recipe(root, printer="SimulatedForm4-1", per_build=1,
                          extra_steps=["save_form", "screenshot"], approval=True)
    path = write_hotfolder_settings(root, recipe, fleet_dir=root / "fleet",
                                    hotfolders={"batching": {"window_s": 0.3}})
    data = json.loads(path.read_text(encoding="utf-8"))
    data["dispatch"] = {"poll_interval_s": 0.2}
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
        self, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
    ) -> None:
        settings = _settings(tmp_path)
        store_path, inbox = tmp_path / "jobs.sqlite3", tmp_path / "inbox"
        inbox.mkdir()
        _start(tmp_path, settings, daemons)
        (tmp_path / "case.stl").write_bytes(tetra_stl_bytes(3, size_mm=6.0))
        (tmp_path / "case.stl").rename(inbox / "case.stl")
        wait_for(lambda: len(_held(store_path)) == 1, WAIT_S, what="the build held")
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
        approved = subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "jobs", "approve", key, "--store",
             str(store_path)], env=_environment(), capture_output=True, text=True, timeout=60)
        assert approved.returncode == 0, approved.stderr
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
