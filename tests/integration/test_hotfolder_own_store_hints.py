"""A hot folder with a job store of its own (``store.path``, in a folder with a space) names
that store in every ``jobs`` command it shows: a cancelled job's and a rejected build's notes
in failed/, and the dashboard of ``watch --serve``. Each command works as printed.

Real parts: ``preform-pipeline watch`` subprocesses on simulated servers, ``jobs`` commands
run from another folder with nothing in the environment, the dashboard over HTTP. The ``jobs``
lines copied from the notes run in the test's process (:class:`~tests.command_line.InProcess`:
the same parse, dispatch and handler, in another folder, no ``PREFORM_PIPELINE_*``): what they
are tested for is what they say and do to the store, not a process's start; four starts of
the package were ~3 s of CPU.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.settings import default_store_path
from preform_pipeline.settings.web import hash_secret
from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import InProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0
SECRET = "operator-secret-0123"


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preform_pipeline", *argv], cwd=cwd,
                          env=_environment(), capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def _as_typed(command: str, cwd: Path, in_process: InProcess
              ) -> subprocess.CompletedProcess[str]:
    """Runs a ``preform-pipeline ...`` line copied from a note, in ``cwd``, as a shell would
    split it."""
    argv = shlex.split(command)
    assert argv[0] == "preform-pipeline", command
    return in_process(cwd, *argv[1:])


def _held_lab(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """A lab folder with a space in its name, its settings (``store.path`` there) and a
    recipe that holds each build for approval; ``names`` dropped and held by ``watch --once``.
    The settings and the store."""
    lab = tmp_path / "lab share"
    lab.mkdir()
    recipe = write_recipe(lab, per_build=1, extra_steps=["save_form", "screenshot"],
                          approval=True)
    settings = write_hotfolder_settings(
        lab, recipe, fleet_dir=lab / "fleet",
        inbox={"quiet_period_s": 0.2, "incomplete_timeout_s": 0.2})
    (lab / "inbox").mkdir()
    for seed, name in enumerate(names):
        (lab / "inbox" / name).write_bytes(tetra_stl_bytes(seed + 1))
    held = _cli(lab, "watch", str(settings), "--once")
    assert held.returncode == 0, held.stderr[-3000:]
    store = lab / "jobs.sqlite3"
    assert store != default_store_path()
    return settings, store


def _keys(store: Path, name: str) -> tuple[str, str]:
    """The job key of the file ``name`` and its build's key."""
    with SqliteJobStore(store, create=False) as opened:
        (job,) = [j for j in opened.list_jobs() if j.original_name == name]
        assert job.build_id is not None
        return job.job_key, opened.get_build(job.build_id).job_key


class TestNotesNameTheHotFoldersStore:
    """A cancelled job's note and a rejected build's note name ``jobs --store "PATH"``, and
    the retry they print queues the job again in that store."""

    def test_the_cancel_and_reject_notes_work_as_printed(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        settings, store = _held_lab(tmp_path, "a.stl", "b.stl")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        jobs = f'preform-pipeline jobs --store "{store}"'
        a_job, a_build = _keys(store, "a.stl")
        b_job, _ = _keys(store, "b.stl")
        rejected = _as_typed(f"{jobs} reject {a_build} --reason 'supports on the margin'",
                             elsewhere, in_process)
        cancelled = _as_typed(f"{jobs} cancel {b_job}", elsewhere, in_process)
        assert (rejected.returncode, cancelled.returncode) == (0, 0), rejected.stderr
        settled = _cli(store.parent, "watch", str(settings), "--once")
        assert settled.returncode == 0, settled.stderr[-3000:]
        failed = store.parent / "inbox" / "failed"

        a_note = (failed / "a.stl.error.txt").read_text(encoding="utf-8")
        assert f"Job: {a_job} (see: {jobs} show {a_job})\n" in a_note
        assert a_note.rstrip().endswith(
            f"What to do: fix what the reason names, then drop the file again or run: "
            f"{jobs} retry {a_job}")
        b_note = (failed / "b.stl.error.txt").read_text(encoding="utf-8")
        assert f"Where: cancelled by a user ({jobs} cancel)\n" in b_note
        assert b_note.rstrip().endswith(
            f"What to do: nothing; to prepare it after all: {jobs} retry {b_job}")

        for note, key in ((a_note, a_job), (b_note, b_job)):
            (command,) = re.findall(r"(preform-pipeline jobs .+ retry PP-\w+)$", note, re.M)
            retried = _as_typed(command, elsewhere, in_process)
            assert retried.returncode == 0, retried.stderr
            assert f"({key}) queued again" in retried.stdout
        with SqliteJobStore(store, create=False) as opened:
            assert {j.state for j in opened.list_jobs()} == {JobState.QUEUED}
        assert not default_store_path().exists()  # the bare command's store was never made


class TestTheDashboardOfWatchServe:
    """``watch --serve``'s dashboard names the hot folder's store in a refusal's hint."""

    def test_settling_a_held_build_points_at_its_history_in_this_store(
        self, tmp_path: Path
    ) -> None:
        settings, store = _held_lab(tmp_path, "a.stl")
        _, build = _keys(store, "a.stl")
        with SqliteJobStore(store, create=False) as opened:
            (held,) = opened.list_builds(state=JobState.AWAITING_APPROVAL)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        data = json.loads(settings.read_text(encoding="utf-8"))
        data["web"] = {"port": port, "users": [{"name": "olivia", "role": "operator",
                                                "secret_hash": hash_secret(SECRET)}]}
        settings.write_text(json.dumps(data), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--serve",
             "--quiet"], cwd=store.parent, env=_environment(), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            def healthy() -> bool:
                try:
                    return httpx.get(f"{url}/healthz").status_code == 200
                except httpx.TransportError:
                    return process.poll() is not None

            wait_for(healthy, 60.0, what="the dashboard to answer")
            answer = httpx.post(
                f"{url}/builds/{held.id}/settle", data={"printed": "yes"},
                headers={"Authorization": f"Bearer olivia:{SECRET}", "Origin": url,
                         "Sec-Fetch-Site": "same-origin"})
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                _, err = process.communicate(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
        assert process.returncode == 0, err[-3000:]
        assert answer.status_code == 409, answer.text
        shown = html.unescape(answer.text)  # the page escapes the quotes
        assert f'see `preform-pipeline jobs --store "{store}" show {build}`' in shown
