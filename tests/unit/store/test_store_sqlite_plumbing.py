"""The SQLite store's connection: waiting for another writer's lock, the errors of opening,
threads sharing one store, and a file that cannot use WAL (real SQLite files)."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.store import SCHEMA_VERSION, Job, JobState, SqliteJobStore

_LOCKED_HINT = (
    "another process holds a long write; if none runs, the file may sit on a network share "
    "that cannot lock: keep the store on a local disk"
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection to a fresh store file (the file is made and closed)."""
    path = tmp_path / "jobs.sqlite3"
    SqliteJobStore(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


class TestAnotherWritersLock:
    """A writer blocked by another process waits out its busy timeout, then says so."""

    def test_a_blocked_write_fails_only_after_the_busy_timeout(
        self, tmp_path: Path, holder: sqlite3.Connection
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path, busy_timeout_s=0.6) as store:
            job = store.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
            holder.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                store.transition(job.id, JobState.QUEUED, "complete")
            waited = time.monotonic() - started
            holder.execute("ROLLBACK")
            # A lower bound only: a loaded machine may take longer, never shorter.
            assert waited >= 0.5
            assert str(caught.value).startswith(
                f"{path}: the job store stayed locked for more than 0.6 s while moving job "
                f"{job.id} to ")
            assert caught.value.hint == _LOCKED_HINT
            assert store.get_job(job.id).state is JobState.DISCOVERED

    def test_an_up_to_date_store_opens_and_reads_while_another_process_writes(
        self, tmp_path: Path, holder: sqlite3.Connection
    ) -> None:
        # `jobs` beside a running daemon: opening takes no write lock when nothing migrates.
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            job = store.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE jobs SET reason = 'being written'")
        with SqliteJobStore(path, busy_timeout_s=0.3) as reader:
            assert [(j.id, j.reason) for j in reader.list_jobs()] == [(job.id, "created")]
        holder.execute("ROLLBACK")

    def test_opening_a_file_another_process_holds_exclusively_is_a_lock_error(
        self, tmp_path: Path, holder: sqlite3.Connection
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")  # not even readers get in
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path, busy_timeout_s=0.3)
        assert time.monotonic() - started >= 0.25
        assert str(caught.value) == (
            f"{path}: the job store stayed locked for more than 0.3 s while opening "
            f"({_LOCKED_HINT})")


class TestOpeningErrors:
    """A file that is not a store is refused with the action named, and left as it was."""

    @pytest.mark.parametrize("content", [
        b"not a database\n" * 300,
        # Shorter than SQLite's 100-byte header, SQLite reads a file as an empty database:
        # before session 45's fix these were migrated into new stores over their bytes.
        b"\x00",
        random.Random(45).randbytes(37),
        b"x" * 99,
        b"SQLite format 3",  # the header's start, cut short
        b"SQLite format 2\x00" + bytes(84),
    ], ids=["text", "one-byte", "random-37", "99-bytes", "header-cut", "other-header"])
    @pytest.mark.parametrize("read_only", [False, True])
    def test_a_file_of_other_bytes_is_refused_and_left_as_it_was(
        self, tmp_path: Path, content: bytes, read_only: bool
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        path.write_bytes(content)
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path, read_only=read_only)
        assert str(caught.value) == (
            f"{path}: is not a job store: it is not a SQLite database (name the store's file "
            "(--store, store.path or PREFORM_PIPELINE_STORE_PATH); if this was the store, it "
            "is damaged: move it aside and restore a backup)")
        assert path.read_bytes() == content
        assert list(tmp_path.iterdir()) == [path]  # no journal or WAL beside it either

    def test_an_empty_file_becomes_a_store(self, tmp_path: Path) -> None:
        # Nothing in it to lose; a store another process is creating is empty for a moment.
        path = tmp_path / "jobs.sqlite3"
        path.touch()
        SqliteJobStore(path).close()
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


class TestUnknownRows:
    """A job or build the store does not have is an error naming the store's file."""

    def test_the_errors_name_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            with pytest.raises(StoreError) as job:
                store.get_job(999)
            with pytest.raises(StoreError) as build:
                store.get_build(999)
        assert str(job.value).startswith(f"{path}: no job 999 (")
        assert str(build.value) == f"{path}: no build 999"


class TestThreads:
    """One store is shared by the threads of a process."""

    def test_a_store_opened_in_one_thread_works_in_another(self, tmp_path: Path) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            made: list[Job] = []
            failed: list[BaseException] = []

            def work() -> None:
                try:
                    made.append(store.create_job(recipe="dental", source_path="/hot/a.stl"))
                except BaseException as exc:  # reported below, with the thread's error
                    failed.append(exc)

            worker = threading.Thread(target=work)
            worker.start()
            worker.join(timeout=30)
            assert not worker.is_alive()
            assert failed == []
            assert [j.id for j in store.list_jobs()] == [made[0].id]


class TestJournalMode:
    """A file SQLite cannot put in WAL mode still works, with a warning; a file in WAL gets
    none."""

    def test_a_store_without_wal_warns_and_works(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # ":memory:" is the one path SQLite itself keeps out of WAL (journal mode "memory"),
        # as some network file systems do; the folder is the test's own.
        monkeypatch.chdir(tmp_path)
        with capture_logs() as logs:
            store = SqliteJobStore(":memory:")
        try:
            job = store.create_job(recipe="dental", source_path="/hot/a.stl")
            assert store.get_job(job.id).state is JobState.DISCOVERED
        finally:
            store.close()
        warnings = [e for e in logs if e["event"] == "store_not_wal"]
        assert warnings == [{"event": "store_not_wal", "log_level": "warning",
                             "path": ":memory:", "journal_mode": "memory"}]

    def test_a_file_in_wal_mode_gets_no_warning(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with capture_logs() as logs:
            SqliteJobStore(path).close()
        assert [e for e in logs if e["event"] == "store_not_wal"] == []
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class TestCaseInSearches:
    """The store's connections fold case as Python does: SQLite's own lower() folds ASCII
    letters only, so a search for "été" missed "ÉTÉ" (PostgreSQL's found it)."""

    def test_a_search_folds_letters_beyond_ascii(self, tmp_path: Path) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            job = store.create_job(recipe="r", source_path="/hot/ÉTÉ-Ünal.stl",
                                   original_name="ÉTÉ-Ünal.stl", case_id="Öz-12")
            other = store.create_job(recipe="r", source_path="/hot/b.stl", case_id=None)
            for text in ("été-ü", "ÉTÉ-Ü", "öz-1"):
                assert [j.id for j in store.list_jobs(text=text)] == [job.id], text
            assert [j.id for j in store.list_jobs(text="b.")] == [other.id]
