"""Opening a store: migrations from a real v1 file, and the files the store must refuse."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import SCHEMA_VERSION, JobState, Migration, SqliteJobStore
from preform_pipeline.store import sqlite as sqlite_store
from tests.unit.store.old_schemas import SQLITE_V1_SCHEMA

# The schema as version 1 of preform-pipeline wrote it (old_schemas.py), with its rows.
V1_DDL = SQLITE_V1_SCHEMA + """
INSERT INTO builds VALUES (1, 'PP-0000000001', 'dental', 'print_sent', 'server-1', '/out/b1.form',
    'pj-1', 'Form4-A', 'case 7 PP-0000000001', NULL, NULL, 'accepted',
    '2024-05-01T08:00:00.000000+00:00', '2024-05-01T08:05:00.000000+00:00',
    '2024-05-01T08:04:00.000000+00:00');
INSERT INTO jobs VALUES (1, 'PP-00000000AA', 'dental', '/hot/processing/arch.stl', 'arch.stl',
    'sha256:ab', 'case-7', 0, '{"patient": "Ann"}', 'print_sent', 1, 'accepted', 1,
    '2024-05-01T07:59:00.000000+00:00', '2024-05-01T08:05:00.000000+00:00', 'pj-1', 'Form4-A',
    NULL, NULL);
INSERT INTO build_jobs VALUES (1, 1, 0);
INSERT INTO transitions (job_id, build_id, from_state, to_state, at, reason) VALUES
    (1, NULL, NULL, 'discovered', '2024-05-01T07:59:00.000000+00:00', 'discovered'),
    (1, 1, 'print_sending', 'print_sent', '2024-05-01T08:05:00.000000+00:00', 'accepted');
PRAGMA user_version = 1;
"""


def _columns(path: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def v1_store(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "v1.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_DDL)
    yield path


class TestMigrations:
    """A store written by an older version is upgraded in place, its jobs intact."""

    def test_the_current_code_writes_the_latest_version(self, tmp_path: Path) -> None:
        path = tmp_path / "new.sqlite3"
        SqliteJobStore(path).close()
        assert _user_version(path) == SCHEMA_VERSION == 11

    def test_a_v1_store_is_migrated_and_its_jobs_stay_readable(
        self, v1_store: Path, clock: ManualClock
    ) -> None:
        assert "verified_at" not in _columns(v1_store, "jobs")
        with SqliteJobStore(v1_store, clock=clock) as store:
            job = store.get_job(1)
            assert (job.state, job.printer, dict(job.fields), job.verified_at) == (
                JobState.PRINT_SENT, "Form4-A", {"patient": "Ann"}, None
            )
            assert [t.reason for t in store.history(1)] == ["discovered", "accepted"]
            assert [b.id for b in store.pending_prints()] == [1]
            build = store.transition_build(1, JobState.FINISHED, "feed says FINISHED",
                                           verified_status="FINISHED")
            assert build.verified_at == clock.now()
            assert store.get_job(1).verified_at == clock.now()
        assert _user_version(v1_store) == 11
        assert "verified_at" in _columns(v1_store, "builds")
        assert "send_holder" in _columns(v1_store, "builds")
        assert {"print_target", "waiting_since", "priority"} <= _columns(v1_store, "builds")
        assert {"key", "about", "said_at"} == _columns(v1_store, "notices")
        assert {"id", "account", "sent_at"} == _columns(v1_store, "web_api_requests")
        assert {"account", "until"} == _columns(v1_store, "web_api_holds")
        assert {"printer", "holder", "build", "until"} == _columns(v1_store, "printer_claims")

    def test_each_step_of_a_migration_is_logged(self, v1_store: Path) -> None:
        with capture_logs() as logs:
            SqliteJobStore(v1_store).close()
        assert [e for e in logs if e["event"] == "store_migrated"] == [
            {"event": "store_migrated", "log_level": "info", "path": str(v1_store),
             "version": m.version, "description": m.description}
            for m in sqlite_store.MIGRATIONS[1:]
        ]

    def test_opening_an_up_to_date_store_again_changes_nothing(self, v1_store: Path) -> None:
        SqliteJobStore(v1_store).close()
        SqliteJobStore(v1_store).close()
        assert _user_version(v1_store) == 11

    def test_a_migration_failing_halfway_leaves_the_previous_version(
        self, v1_store: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def half(conn: sqlite3.Connection) -> None:
            conn.execute("ALTER TABLE jobs ADD COLUMN verified_at TEXT")
            conn.execute("ALTER TABLE no_such_table ADD COLUMN x TEXT")

        broken = (*sqlite_store.MIGRATIONS[:1], Migration(2, "broken", half))
        monkeypatch.setattr(sqlite_store, "MIGRATIONS", broken)
        with pytest.raises(StoreError, match="version 2: no such table: no_such_table"):
            SqliteJobStore(v1_store)
        assert _user_version(v1_store) == 1
        assert "verified_at" not in _columns(v1_store, "jobs")


class TestRefusedFiles:
    """Files the store cannot use are refused with the path and what to do."""

    def test_a_store_from_a_newer_version_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "future.sqlite3"
        SqliteJobStore(path).close()
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA user_version = 99")
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path)
        text = str(caught.value)
        assert str(path) in text and "schema version 99" in text
        assert caught.value.hint == (
            "upgrade preform-pipeline (a newer version wrote this store), or point --store / "
            "PREFORM_PIPELINE_STORE_PATH at another file")

    def test_a_store_of_a_version_below_zero_is_refused_as_damaged_and_left_as_it_was(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        SqliteJobStore(path).close()
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA user_version = -5")
        before = path.read_bytes()
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path)
        assert caught.value.message == (
            f"{path}: the job store has schema version -5, which no preform-pipeline writes")
        assert (caught.value.hint or "").startswith("the file is damaged or is not a job store")
        assert path.read_bytes() == before

    @pytest.mark.parametrize(
        ("content", "said"),
        [(b"x", "is not a job store: it is not a SQLite database"),
         (b"\xb4", "is not a job store: it is not a SQLite database"),
         (b"SQLite format 2", "is not a job store: it is not a SQLite database"),
         (b"this is a text file, not a database\n" * 40,
          "is not a job store: it is not a SQLite database"),
         (b"SQLite format 3\x00" + b"\xff" * 4080,
          "not a usable job store (file is not a database) while opening")],
        ids=["one-byte", "one-other-byte", "too-short", "text", "damaged-header"],
    )
    def test_a_file_that_is_no_store_is_refused_named_and_left_as_it_was(
        self, tmp_path: Path, content: bytes, said: str
    ) -> None:
        # SQLite reads a file shorter than its header as an empty database: the open made a
        # one-byte file a store of 108 KB over the byte (session 45's finding C). A longer
        # file of other bytes, or a damaged one, is named too, and kept as evidence.
        path = tmp_path / "jobs.sqlite3"
        path.write_bytes(content)
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path)
        assert caught.value.message == f"{path}: {said}"
        assert "move it aside" in str(caught.value)
        assert path.read_bytes() == content

    def test_another_programs_database_is_not_taken_over(self, tmp_path: Path) -> None:
        path = tmp_path / "other.db"
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
            conn.execute("CREATE TABLE customers (id INTEGER)")
            conn.commit()
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path)
        assert str(caught.value).startswith(
            f"{path}: not a preform-pipeline job store (it has tables customers, invoices but "
            "no schema version)")
        assert caught.value.hint == "point --store / PREFORM_PIPELINE_STORE_PATH at another file"

    def test_a_missing_store_is_not_created_when_asked_not_to(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.sqlite3"
        with pytest.raises(StoreError, match="no job store here") as caught:
            SqliteJobStore(path, create=False)
        assert not path.exists()
        assert caught.value.hint == (
            "check --store, store.path or PREFORM_PIPELINE_STORE_PATH; the hot folder creates "
            "the store when it first starts")

    def test_missing_folders_are_created_with_the_store(self, tmp_path: Path) -> None:
        path = tmp_path / "data" / "pipeline" / "jobs.sqlite3"
        SqliteJobStore(path).close()
        assert path.is_file()

    def test_a_folder_that_cannot_be_made_is_a_store_error(self, tmp_path: Path) -> None:
        (tmp_path / "data").write_text("a file where the folder should be")
        path = tmp_path / "data" / "jobs.sqlite3"
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path)
        assert str(caught.value).startswith(f"{path}: cannot create the store's folder: ")
        assert caught.value.hint == (
            "choose a writable folder (store.path or PREFORM_PIPELINE_STORE_PATH)")

    def test_a_store_locked_longer_than_the_timeout_is_a_store_error(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(path, busy_timeout_s=0.2) as store:
            job = store.create_job(recipe="r", source_path="/a.stl")
            holder = sqlite3.connect(path, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")  # another process's long write
                with pytest.raises(StoreError) as caught:
                    store.transition(job.id, JobState.QUEUED, "complete")
            finally:
                holder.close()
            assert "stayed locked" in str(caught.value) and str(path) in str(caught.value)
            assert store.transition(job.id, JobState.QUEUED, "complete").state is (
                JobState.QUEUED
            )

    def test_the_store_uses_wal(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        SqliteJobStore(path).close()
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
