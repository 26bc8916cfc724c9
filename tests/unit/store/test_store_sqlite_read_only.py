"""A SQLite store opened to read only (`jobs`, `jobs show`, `jobs waiting`): it never writes
the file, sees what a writer commits, and a store this code has not migrated is migrated
as before (session 32)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.sqlite import SCHEMA_VERSION
from tests.unit.store.test_store_migrations import V1_DDL


def _one_job(path: Path) -> None:
    with SqliteJobStore(path) as store:
        store.create_job(recipe="crowns", source_path=path.parent / "C-7.stl", case_id="C-7",
                         state=JobState.QUEUED)


class TestReadOnly:
    """Reading only: the writer's commits are seen; a write is refused, naming the file."""

    def test_a_reader_sees_what_a_running_writer_commits(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        _one_job(path)
        with SqliteJobStore(path) as writer, SqliteJobStore(path, read_only=True) as reader:
            assert [j.case_id for j in reader.list_jobs()] == ["C-7"]
            writer.transition(1, JobState.CANCELLED, "cancelled by olivia")
            assert reader.get_job(1).state is JobState.CANCELLED

    def test_a_write_through_it_is_a_store_error_naming_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        _one_job(path)
        with SqliteJobStore(path, read_only=True) as store, pytest.raises(StoreError) as got:
            store.transition(1, JobState.CANCELLED, "cancelled")
        assert str(got.value).startswith(f"{path}: this account cannot write to the job store")
        with SqliteJobStore(path) as store:
            assert store.get_job(1).state is JobState.QUEUED

    def test_an_older_store_is_migrated_as_any_opening_does(self, tmp_path: Path) -> None:
        path = tmp_path / "v1.sqlite3"
        with closing(sqlite3.connect(path)) as conn:
            conn.executescript(V1_DDL)
        with SqliteJobStore(path, read_only=True) as store:
            assert store.get_job(1).printer == "Form4-A"
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
