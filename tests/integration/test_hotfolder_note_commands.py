"""The commands a hot folder's ``.error.txt`` names work as printed, whatever the store.

Real parts: ``preform-pipeline watch --once`` as a subprocess with a job store of the
settings' own (``store.path``, not the default one), then the commands copied out of the note
and run as a person runs them: from another folder, with nothing in the environment. Those
run in the test's process (:class:`~tests.command_line.InProcess`: the same parse, dispatch
and handler): what they are tested for is what they find and say, not a process's start.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.settings import default_store_path
from tests.command_line import InProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _watch_once(settings: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
        env=_environment(), cwd=settings.parent, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _as_typed(command: str, cwd: Path, in_process: InProcess
              ) -> subprocess.CompletedProcess[str]:
    """Runs a ``preform-pipeline ...`` line copied from a note, in ``cwd``, as a shell would
    split it."""
    argv = shlex.split(command)
    assert argv[0] == "preform-pipeline", command
    return in_process(cwd, *argv[1:])


class TestNoteCommandsReachTheStore:
    """With ``store.path`` in the settings, the note's show and retry commands find the job."""

    def test_the_show_and_retry_commands_of_a_duplicate_note_work_as_printed(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        hot = tmp_path / "lab"
        hot.mkdir()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        recipe = write_recipe(hot, printer=None)
        settings = write_hotfolder_settings(hot, recipe)
        store = hot / "jobs.sqlite3"
        assert store != default_store_path()
        inbox = hot / "inbox"
        inbox.mkdir()
        (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
        _watch_once(settings)
        (inbox / "again.stl").write_bytes(tetra_stl_bytes(1))  # the same content again
        _watch_once(settings)

        note = (inbox / "failed" / "again.stl.error.txt").read_text(encoding="utf-8")
        key = re.search(r"^Job: (PP-\w+) \(see: (.+)\)$", note, re.M)
        assert key is not None, note
        assert key.group(2).endswith(f"show {key.group(1)}")
        shown = _as_typed(key.group(2), elsewhere, in_process)
        assert shown.returncode == 0, shown.stderr
        assert "again.stl" in shown.stdout and "duplicate" in shown.stdout

        retry = re.search(r"To print it again: (preform-pipeline .+ retry PP-\w+),", note)
        assert retry is not None, note
        retried = _as_typed(retry.group(1), elsewhere, in_process)
        assert retried.returncode == 0, retried.stderr
        assert f"({key.group(1)}) queued again" in retried.stdout
        # Nothing was made in the default store, which the bare command would have opened.
        assert not default_store_path().exists()
