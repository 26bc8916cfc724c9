"""The hot folder's console follows a build held for approval to its end: held (not
"succeeded"), then one line when the approved build is sent and when a rejected one's files
go to failed/, each with its structured event (a real daemon, real simulators, real SQLite;
the decisions through ``jobs approve`` / ``jobs reject``)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.cli import run
from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import Build, JobState, SqliteJobStore

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Path]:
    """A ``watch`` daemon (not ``--quiet``) whose recipe holds each one-file build for
    approval; its console goes to ``console.txt``, its log to ``log.jsonl``. The folder."""
    recipe = write_recipe(tmp_path, printer="SimulatedForm4-1", per_build=1,
                          extra_steps=["save_form", "screenshot"], approval=True)
    settings = write_hotfolder_settings(tmp_path, recipe, fleet_dir=tmp_path / "fleet",
                                        hotfolders={"batching": {"window_s": 0.3},
                                                    "rescan_interval_s": 1.0})
    data = json.loads(settings.read_text(encoding="utf-8"))
    data["dispatch"] = {"poll_interval_s": 0.2}
    data["logging"] = {"file": str(tmp_path / "log.jsonl")}
    settings.write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "inbox").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with (tmp_path / "console.txt").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.DEVNULL)
    try:
        yield tmp_path
    finally:
        process.kill()
        process.wait(10)


def _held(root: Path) -> list[Build]:
    if not (root / "jobs.sqlite3").exists():
        return []
    with SqliteJobStore(root / "jobs.sqlite3", create=False) as store:
        return list(store.list_builds(state=JobState.AWAITING_APPROVAL))


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


def _decide(root: Path, *args: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs", *args, "--store", str(root / "jobs.sqlite3")], out, err)
    assert code == 0, err.getvalue()


class TestTheConsoleFollowsAHeldBuild:
    """Held, then sent or rejected: a line each, and an event each."""

    def test_held_said_then_the_approved_one_sent_and_the_rejected_one_failed(
        self, daemon: Path
    ) -> None:
        for number in (1, 2):
            staged = daemon / f"case{number}.stl"
            staged.write_bytes(tetra_stl_bytes(number, size_mm=6.0))
            staged.rename(daemon / "inbox" / staged.name)
        wait_for(lambda: len(_held(daemon)) == 2, WAIT_S, what="both builds held")
        first, second = sorted(_held(daemon), key=lambda b: b.id)
        lines = [f"held for approval (dashboard or `jobs approve {build.job_key}`): prepared on "
                 for build in (first, second)]
        wait_for(lambda: all(line in _console(daemon) for line in lines)
                 and _console(daemon).count(" held for approval\n") == len(
                     re.findall(r"finished in .*\n", _console(daemon))),
                 WAIT_S, what="the held builds' lines and their runs' lines")
        console = _console(daemon)
        assert "] succeeded" not in console
        held = re.findall(r": 0 of (\d) builds? succeeded, (\d) held for approval\n", console)
        assert sum(int(n) for n, _ in held) == sum(int(h) for _, h in held) == 2, console
        assert sorted(e["job_key"] for e in _events(daemon, "build_held_for_approval")) == (
            sorted([first.job_key, second.job_key]))

        _decide(daemon, "approve", first.job_key)
        _decide(daemon, "reject", second.job_key, "--reason", "crown 3 overlaps the raft")
        wait_for(lambda: "approved by" in _console(daemon)
                 and "rejected by" in _console(daemon), WAIT_S, what="both decisions said")
        console = _console(daemon)
        assert f"[{first.job_key}] approved by " in console
        assert "(cli), sent to SimulatedForm4-1\n" in console
        assert (f"[{second.job_key}] rejected by " in console
                and "(cli): crown 3 overlaps the raft; its files go to failed/\n" in console)
        assert console.count(f"[{second.job_key}] rejected") == 1
        (sent,) = _events(daemon, "approved_build_sent")
        assert (sent["job_key"], sent["printer"]) == (first.job_key, "SimulatedForm4-1")
        (rejected,) = _events(daemon, "rejected_build_settled")
        assert (rejected["job_key"], rejected["reason"]) == (
            second.job_key, "crown 3 overlaps the raft")
