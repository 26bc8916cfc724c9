"""`jobs` on a store this account may only read, or not read at all (session 32), run as a
user runs it: a subprocess, without root's power to read and write anything (setpriv).

Session 31 found `jobs` (a read) refused on a read-only store with SQLite's "attempt to write
a readonly database" (the store was opened to write even to list), and a store of mode 000
refused with a hint about the folder, not the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.commands.test_cmd_plan_hostile import AS_A_USER

TIMEOUT_S = 60.0

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX's")


def jobs(store: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AS_A_USER, sys.executable, "-m", "preform_pipeline", "jobs", *words,
         "--store", str(store)],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[Path]:
    """A store with one failed job, the file read-only in a folder that is read-only too
    (no -wal or -shm beside it: nothing has it open)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "jobs.sqlite3"
    with SqliteJobStore(path) as store:
        job = store.create_job(recipe="crowns", source_path=tmp_path / "C-7.stl",
                               case_id="C-7", state=JobState.PROCESSING)
        store.transition(job.id, JobState.FAILED, "the model is not closed")
    assert sorted(p.name for p in folder.iterdir()) == ["jobs.sqlite3"]
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield path
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


class TestReadOnlyStore:
    """Reads work on a store this account may only read; a write says which file and why."""

    def test_the_list_and_a_job_are_shown(self, locked_store: Path) -> None:
        listed = jobs(locked_store)
        shown = jobs(locked_store, "show", "1")
        waiting = jobs(locked_store, "waiting")
        for done in (listed, shown, waiting):
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stderr == ""
        assert "the model is not closed" in listed.stdout
        assert "C-7.stl" in shown.stdout and "failed" in shown.stdout
        assert "no builds waiting for a printer" in waiting.stdout
        assert sorted(p.name for p in locked_store.parent.iterdir()) == ["jobs.sqlite3"]

    def test_a_retry_names_the_file_it_cannot_write_and_what_helps(
        self, locked_store: Path
    ) -> None:
        done = jobs(locked_store, "retry", "1")
        assert done.returncode == 1
        assert f"{locked_store}: this account cannot write to the job store" in done.stderr
        assert "give it permission to write the file and its folder" in done.stderr
        assert "Traceback" not in done.stderr
        locked_store.parent.chmod(0o755)
        with SqliteJobStore(locked_store, read_only=True) as store:
            assert store.get_job(1).state is JobState.FAILED


class TestUnreadableStore:
    """A store file this account may not read is named, not its folder."""

    def test_mode_000_names_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        SqliteJobStore(path).close()
        path.chmod(0)
        try:
            done = jobs(path)
        finally:
            path.chmod(0o644)
        assert done.returncode == 1
        text = done.stderr.replace("\n", " ")
        assert f"{path}: cannot read the job store file (Permission denied)" in text
        assert "give this account permission to read the file" in text
        assert "check that the folder exists" not in text
