"""Moving a SQLite store into PostgreSQL (store/migrate.py): every row with its id, the ids
continuing afterwards, the copy logged, and an unusable source or target refused with nothing
copied (real SQLite file, real PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.migrate import MigrationReport, migrate_sqlite_to_postgres
from preform_pipeline.store.postgres import PostgresJobStore
from tests.unit.store.conftest import CLOCK_START, build_in_state, job_in_state

S = JobState
NOT_EMPTY_HINT = "migrate into a new, empty database; nothing was copied"
_PAGE = 4096  # SQLite's default page size


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A SQLite store with history: builds printed, sent and held for approval (with its
    decision), a build waiting for a printer, a failed job retried, a job with fields."""
    path = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(path, clock=ManualClock(wall=CLOCK_START)) as store:
        for state, members in ((S.FINISHED, 2), (S.PRINT_SENT, 1), (S.AWAITING_APPROVAL, 1)):
            build_in_state(store, state, jobs=members)
        held = store.list_builds(state=S.AWAITING_APPROVAL)[0]
        store.update_build(held.id, approval={"decision": "approved", "by": "ann"})
        waiting = build_in_state(store, S.WAITING_FOR_PRINTER, jobs=1)
        store.update_build(waiting.id, print_target={"printers": ["Form4-A"]}, priority=2,
                           wait_notified_at=CLOCK_START.isoformat())
        retried = job_in_state(store, S.FAILED)
        store.transition(retried.id, S.QUEUED, "retried by user")
        store.create_job(recipe="ortho", source_path="/hot/inbox/c.stl", case_id="case-7",
                         content_hash="sha256:" + "ab" * 32, fields={"patient": "Ann"},
                         priority=3)
    return path


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("builds", "jobs", "build_jobs", "transitions")}


class TestTheCopy:
    """Every job, build, member and audit row arrives with its id; new rows continue after."""

    def test_the_target_holds_the_same_store_and_the_report_counts_it(
        self, source: Path, pg_store: PostgresJobStore
    ) -> None:
        expected = _counts(source)
        with capture_logs() as logs:
            report = migrate_sqlite_to_postgres(source, pg_store)
        assert report == MigrationReport(source=source, target=pg_store.location,
                                         rows=expected)
        assert expected["build_jobs"] == 5
        assert [e for e in logs if e["event"] == "store_copied"] == [
            {"event": "store_copied", "log_level": "info", "source": str(source),
             "target": pg_store.location, **expected}]
        with SqliteJobStore(source) as old:
            assert pg_store.list_jobs() == old.list_jobs()
            assert pg_store.list_builds() == old.list_builds()
            for job in old.list_jobs():
                assert pg_store.history(job.id) == old.history(job.id)
            for build in old.list_builds():
                assert pg_store.build_history(build.id) == old.build_history(build.id)
                assert pg_store.build_members(build.id) == old.build_members(build.id)

    def test_new_jobs_builds_and_audit_rows_continue_after_the_copied_ids(
        self, source: Path, pg_store: PostgresJobStore
    ) -> None:
        migrate_sqlite_to_postgres(source, pg_store)
        with sqlite3.connect(source) as conn:
            last_job, last_build, last_row = (
                conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
                for table in ("jobs", "builds", "transitions"))
        job = pg_store.create_job(recipe="dental", source_path="/hot/inbox/new.stl",
                                  state=S.PROCESSING)
        build = pg_store.create_build(recipe="dental", job_ids=[job.id])
        assert (job.id, build.id) == (last_job + 1, last_build + 1)
        assert pg_store.history(job.id)[0].id == last_row + 1

    def test_an_empty_store_copies_nothing_and_ids_start_at_one(
        self, tmp_path: Path, pg_store: PostgresJobStore
    ) -> None:
        path = tmp_path / "empty.sqlite3"
        SqliteJobStore(path).close()
        report = migrate_sqlite_to_postgres(path, pg_store)
        assert report.rows == {"builds": 0, "jobs": 0, "build_jobs": 0, "transitions": 0}
        assert pg_store.list_jobs() == ()


class TestRefused:
    """A target with rows, or a source that is no store, is refused and nothing is copied."""

    def test_a_target_with_a_job_is_refused_and_kept_as_it_was(
        self, source: Path, pg_store: PostgresJobStore
    ) -> None:
        there = pg_store.create_job(recipe="dental", source_path="/hot/inbox/there.stl")
        with pytest.raises(StoreError) as caught:
            migrate_sqlite_to_postgres(source, pg_store)
        assert caught.value.message == (
            f"{pg_store.location}: the target store is not empty (jobs has rows)")
        assert caught.value.hint == NOT_EMPTY_HINT
        assert pg_store.list_jobs() == (there,)
        assert pg_store.list_builds() == ()

    def test_a_target_with_a_build_names_the_builds(
        self, source: Path, pg_store: PostgresJobStore
    ) -> None:
        build_in_state(pg_store, S.PROCESSING, jobs=1)
        with pytest.raises(StoreError, match=r"not empty \(builds has rows\)"):
            migrate_sqlite_to_postgres(source, pg_store)
        assert len(pg_store.list_jobs()) == 1

    def test_a_missing_source_is_refused_without_creating_it(
        self, tmp_path: Path, pg_store: PostgresJobStore
    ) -> None:
        missing = tmp_path / "none.sqlite3"
        with pytest.raises(StoreError, match="no job store here"):
            migrate_sqlite_to_postgres(missing, pg_store)
        assert not missing.exists()
        assert pg_store.list_jobs() == ()

    def test_a_row_the_target_refuses_fails_the_copy_and_leaves_the_target_empty(
        self, source: Path, pg_store: PostgresJobStore
    ) -> None:
        with sqlite3.connect(source) as conn:
            conn.execute("UPDATE jobs SET created_at = 'a while ago' WHERE id = "
                         "(SELECT max(id) FROM jobs)")
        with pytest.raises(StoreError) as caught:
            migrate_sqlite_to_postgres(source, pg_store)
        assert caught.value.message.startswith(
            f"{pg_store.location}: the job store failed while migrating a SQLite store in: ")
        assert "a while ago" in caught.value.message
        assert pg_store.list_builds() == () and pg_store.list_jobs() == ()

    def test_a_damaged_source_fails_the_copy_naming_it_and_leaves_the_target_empty(
        self, source: Path, pg_store: PostgresJobStore
    ) -> None:
        conn = sqlite3.connect(source)
        with conn:  # enough audit rows to fill many pages
            conn.executemany(
                "INSERT INTO transitions (job_id, build_id, from_state, to_state, at, reason) "
                "VALUES ((SELECT min(id) FROM jobs), NULL, NULL, 'queued', ?, ?)",
                [(CLOCK_START.isoformat(), "padding " * 40)] * 400)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page into the file itself
        conn.close()
        data = bytearray(source.read_bytes())
        middle = len(data) // _PAGE // 2 * _PAGE  # table pages; page 1 holds the schema
        data[middle:middle + 3 * _PAGE] = b"\xff" * (3 * _PAGE)
        source.write_bytes(bytes(data))
        with pytest.raises(StoreError) as caught:
            migrate_sqlite_to_postgres(source, pg_store)
        assert caught.value.message == (
            f"{source}: reading the store to migrate failed: database disk image is malformed")
        assert pg_store.list_builds() == () and pg_store.list_jobs() == ()
