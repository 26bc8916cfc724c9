"""Moving a SQLite store into PostgreSQL (store/migrate.py): every row with its id, the ids
continuing afterwards, the copy logged, and an unusable source or target refused with nothing
copied (real SQLite file, real PostgreSQL)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.migrate import MigrationReport, migrate_sqlite_to_postgres
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.sqlcore import iso_utc
from tests.unit.store.conftest import CLOCK_START, build_in_state, job_in_state

S = JobState
NOT_EMPTY_HINT = "migrate into a new, empty database; nothing was copied"
_PAGE = 4096  # SQLite's default page size


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A SQLite store with history: builds printed, sent and held for approval (with its
    decision), a build waiting for a printer, one failed by a full disk, a failed job
    retried, a job with fields."""
    path = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(path, clock=ManualClock(wall=CLOCK_START)) as store:
        for state, members in ((S.FINISHED, 2), (S.PRINT_SENT, 1), (S.AWAITING_APPROVAL, 1)):
            build_in_state(store, state, jobs=members)
        held = store.list_builds(state=S.AWAITING_APPROVAL)[0]
        store.update_build(held.id, approval={"decision": "approved", "by": "ann"})
        waiting = build_in_state(store, S.WAITING_FOR_PRINTER, jobs=1)
        store.update_build(waiting.id, print_target={"printers": ["Form4-A"]}, priority=2,
                           wait_notified_at=CLOCK_START.isoformat())
        full = build_in_state(store, S.PREPARING, jobs=1)
        store.transition_build(full.id, S.FAILED, "saveFormFile refused",
                               full_disk=Path("/lab/out"))
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
        expected |= {"web_api_requests": 0, "web_api_holds": 0}
        assert report == MigrationReport(source=source, target=pg_store.location,
                                         rows=expected)
        assert expected["build_jobs"] == 6
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
        assert report.rows == {"builds": 0, "jobs": 0, "build_jobs": 0, "transitions": 0,
                               "web_api_requests": 0, "web_api_holds": 0}
        assert pg_store.list_jobs() == ()


BUSY = "web-api:busy"
IDLE = "web-api:idle"
HOUR_S = 3600.0


def _spend(store: SqliteJobStore, account: str, minutes_ago: float, count: int = 1) -> None:
    """Record ``count`` requests sent ``minutes_ago`` before the start of the tests' clock."""
    for _ in range(count):
        assert store.spend_web_request(
            account, limit=1500, now=CLOCK_START - timedelta(minutes=minutes_ago),
            window_s=HOUR_S)[:2] == (0.0, "")


class TestTheWebApiBudget:
    """The budget still live at the migration goes with it: the last hour's requests and the
    holds not ended, so the target answers as the source would have; older rows stay."""

    @pytest.fixture
    def busy(self, source: Path) -> Path:
        with SqliteJobStore(source) as store:
            _spend(store, BUSY, 30, count=3)
            _spend(store, IDLE, 59.5)
            store.hold_web_requests(BUSY, CLOCK_START + timedelta(minutes=20))
            store.hold_web_requests(IDLE, CLOCK_START - timedelta(minutes=5))  # ended
        with sqlite3.connect(source) as conn:
            # Rows no spend has cleared yet: one an hour old exactly (it has left the
            # window), one older.
            conn.executemany("INSERT INTO web_api_requests (account, sent_at) VALUES (?, ?)",
                             [(BUSY, iso_utc(CLOCK_START - timedelta(minutes=m)))
                              for m in (60, 61)])
        return source

    def test_the_target_counts_the_live_window_and_keeps_the_live_hold(
        self, busy: Path, pg_store: PostgresJobStore
    ) -> None:
        report = migrate_sqlite_to_postgres(busy, pg_store)
        assert (report.rows["web_api_requests"], report.rows["web_api_holds"]) == (4, 1)
        for account, spent in ((BUSY, 3), (IDLE, 1)):
            assert pg_store.web_requests_spent(account, now=CLOCK_START,
                                               window_s=HOUR_S) == spent
        # The Retry-After met on the old store holds on the new one, to the same instant.
        assert pg_store.spend_web_request(BUSY, limit=1500, now=CLOCK_START,
                                          window_s=HOUR_S) == (1200.0, "retry_after", 3)
        assert pg_store.spend_web_request(IDLE, limit=1500, now=CLOCK_START,
                                          window_s=HOUR_S) == (0.0, "", 2)
        with sqlite3.connect(busy) as conn:
            assert conn.execute("SELECT count(*) FROM web_api_requests").fetchone()[0] == 6

    @pytest.mark.parametrize("limit", [3, 4])
    def test_a_spent_hour_is_as_spent_on_the_target_as_on_the_source(
        self, source: Path, pg_store: PostgresJobStore, limit: int
    ) -> None:
        with SqliteJobStore(source) as store:
            _spend(store, BUSY, 50, count=2)
            _spend(store, BUSY, 10, count=2)
        migrate_sqlite_to_postgres(source, pg_store)
        with SqliteJobStore(source) as old:
            answers = [store.spend_web_request(BUSY, limit=limit, now=CLOCK_START,
                                               window_s=HOUR_S)[:2]
                       for store in (old, pg_store)]
        # Four requests in the hour: a limit of 3 waits until a 50-minute-old one leaves
        # (10 minutes); a limit of 4 until the first of them does, the same on both stores.
        assert answers[0] == answers[1] == (600.0, "hourly_budget")

    def test_a_longer_hold_already_on_the_target_is_kept_a_shorter_one_is_extended(
        self, busy: Path, pg_store: PostgresJobStore
    ) -> None:
        pg_store.hold_web_requests(IDLE, CLOCK_START + timedelta(minutes=40))
        pg_store.hold_web_requests(BUSY, CLOCK_START + timedelta(minutes=5))
        with SqliteJobStore(busy) as store:
            store.hold_web_requests(IDLE, CLOCK_START + timedelta(minutes=10))
        migrate_sqlite_to_postgres(busy, pg_store)
        waits = {account: pg_store.spend_web_request(account, limit=1500, now=CLOCK_START,
                                                     window_s=HOUR_S)[:2]
                 for account in (BUSY, IDLE)}
        assert waits == {BUSY: (1200.0, "retry_after"), IDLE: (2400.0, "retry_after")}

    def test_the_window_is_the_one_at_the_time_given(
        self, busy: Path, pg_store: PostgresJobStore
    ) -> None:
        later = CLOCK_START + timedelta(minutes=25)  # the hold ended, the 30-minute-old stay
        report = migrate_sqlite_to_postgres(busy, pg_store, now=later)
        assert (report.rows["web_api_requests"], report.rows["web_api_holds"]) == (3, 0)
        assert pg_store.web_requests_spent(BUSY, now=later, window_s=HOUR_S) == 3
        assert pg_store.web_requests_spent(IDLE, now=later, window_s=HOUR_S) == 0


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
