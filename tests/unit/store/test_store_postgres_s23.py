"""Session 23's runs of the PostgreSQL store's open survivors: a read that spans two
statements sees one moment even when another node commits between them; the store's
connection never begins a transaction of its own, so the database's log stays free of
warnings; and a database whose user may not create the store's tables is refused with an
error that says it failed while migrating (real PostgreSQL, real roles, locks and log)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.store import JobState
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PG_USER, PgCluster
from tests.unit.store.conftest import admin_connection, build_in_state, lock_waiters

#: Generous on a loaded machine; every wait ends as soon as its condition holds.
WAIT_S = 30.0
#: The advisory lock the test holds to keep another node's write from committing.
_COMMIT_GATE = 2323
#: How the test's own sessions name themselves in pg_stat_activity.
_BLOCKER = "s23-blocker"


def _in_thread(target: Callable[[], Any], outcome: list[Any]) -> threading.Thread:
    """``target`` run on a daemon thread; its result, or what it raised, goes to ``outcome``."""

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class TestAReadSeesOneMoment:
    """A read of a build's jobs (the build's state, then its jobs in that state: two
    statements) sees the store as it was at its start, even when another node moves the build
    and its jobs on and commits between the two statements."""

    def test_another_nodes_move_between_the_statements_is_not_half_seen(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        build = build_in_state(pg_store, JobState.PROCESSING, jobs=2)
        other = PostgresJobStore(pg_url, password=PG_PASSWORD)
        gate = admin_connection(pg_url)
        blocker = admin_connection(pg_url)
        moved: list[Any] = []
        read: list[Any] = []
        threads: list[threading.Thread] = []
        try:
            # The other node's move runs whole and then waits, uncommitted, at its COMMIT.
            gate.execute("SELECT pg_advisory_lock(%s)", (_COMMIT_GATE,))
            gate.execute("CREATE FUNCTION gate_s23() RETURNS trigger LANGUAGE plpgsql AS "
                         f"$$ BEGIN PERFORM pg_advisory_xact_lock({_COMMIT_GATE}); "
                         "RETURN NULL; END $$")
            gate.execute("CREATE CONSTRAINT TRIGGER gate_s23 AFTER UPDATE ON builds "
                         "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                         "WHEN (NEW.reason = 'gated') EXECUTE FUNCTION gate_s23()")
            threads.append(_in_thread(
                lambda: other.transition_build(build.id, JobState.PREPARING, "gated"), moved))
            wait_for(lambda: lock_waiters(pg_url, "preform-pipeline", "advisory") == 1,
                     WAIT_S, what="the other node's move to wait at its commit")
            # A table lock queued behind the move (which has read build_jobs) holds back the
            # read's second statement, the one over build_jobs, until the move has committed.
            blocker.execute(f"SET application_name = '{_BLOCKER}'")
            threads.append(_in_thread(lambda: _lock_build_jobs(blocker), []))
            wait_for(lambda: lock_waiters(pg_url, _BLOCKER, "relation") == 1,
                     WAIT_S, what="the table lock to queue behind the move")
            threads.append(_in_thread(lambda: pg_store.build_members(build.id), read))
            wait_for(lambda: lock_waiters(pg_url, "preform-pipeline", "relation") == 1
                     or bool(read), WAIT_S, what="the read's second statement to wait")
            assert not read, "the read did not wait at its second statement"
            gate.execute("SELECT pg_advisory_unlock(%s)", (_COMMIT_GATE,))
            for thread in threads:
                thread.join(WAIT_S)
            assert not any(thread.is_alive() for thread in threads)
        finally:
            # Let a move still held go first: dropping the trigger waits for its transaction.
            gate.execute("SELECT pg_advisory_unlock_all()")
            for thread in threads:
                thread.join(WAIT_S)
            gate.execute("DROP TRIGGER IF EXISTS gate_s23 ON builds")
            gate.execute("DROP FUNCTION IF EXISTS gate_s23()")
            gate.close()
            blocker.close()
            other.close()
        (moved_build,) = moved
        (members,) = read
        assert not isinstance(moved_build, BaseException), moved_build
        assert not isinstance(members, BaseException), members
        assert moved_build.state is JobState.PREPARING  # committed before the read went on
        # As the store was when the read began: both jobs, still PROCESSING. Two moments mixed
        # (the build PROCESSING, its jobs already PREPARING) would give no jobs at all.
        assert [(job.id, job.state) for job in members] == [
            (job_id, JobState.PROCESSING) for job_id in build.job_ids]
        assert [(job.id, job.state) for job in pg_store.build_members(build.id)] == [
            (job_id, JobState.PREPARING) for job_id in build.job_ids]


def _lock_build_jobs(conn: Any) -> None:
    """Take (after whoever holds it) and at once give back an exclusive lock on build_jobs."""
    with conn.transaction():
        conn.execute("LOCK TABLE build_jobs IN ACCESS EXCLUSIVE MODE")


def _server_log(admin: Any) -> str:
    """The path of the test cluster's log, beside its data folder (tests/pg_cluster.py)."""
    row = admin.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    return str(PgCluster(bin_dir=Path(), root=Path(row[0]).parent, port=0).log_file)


def _log_size(admin: Any, path: str) -> int:
    row = admin.execute("SELECT size FROM pg_stat_file(%s)", (path,)).fetchone()
    assert row is not None
    return int(row[0])


class TestTheDatabaseLogStaysQuiet:
    """The store begins and ends its transactions itself, on a connection that never begins
    one of its own: opening, writing and reading leave no warning in the database's log (on a
    connection that did, the server would warn "there is already a transaction in progress" at
    every call)."""

    def test_a_round_of_calls_writes_no_warning(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        with admin_connection(pg_url) as admin:
            log_path = _server_log(admin)
            start = _log_size(admin, log_path)
            with PostgresJobStore(pg_url, password=PG_PASSWORD) as other:  # connects, migrates
                job = other.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
                other.transition(job.id, JobState.QUEUED, "complete")
            build = build_in_state(pg_store, JobState.PREPARED, jobs=1)
            assert pg_store.get_job(job.id).state is JobState.QUEUED
            assert [j.id for j in pg_store.build_members(build.id)] == list(build.job_ids)
            # A line the test writes last must be in the part read: it is the live log.
            mark = f"s23 quiet log {uuid.uuid4().hex}"
            admin.execute(f"DO $$ BEGIN RAISE LOG '{mark}'; END $$")
            written = admin.execute("SELECT pg_read_file(%s, %s, %s)",
                                    (log_path, start, _log_size(admin, log_path) - start)
                                    ).fetchone()
        assert written is not None
        lines = written[0].splitlines()
        assert any(line.endswith(f"LOG:  {mark}") for line in lines), lines[-3:]
        assert [line for line in lines if "WARNING" in line] == []


@dataclass(frozen=True)
class Unowned:
    """A database and the URLs by which the store's user and the superuser reach it."""

    url: str
    admin_url: str


@pytest.fixture
def unowned(conformance_db: tuple[str, Callable[[], None]]) -> Iterator[Unowned]:
    """A new, empty database made without ``OWNER`` for the store's user, a plain login
    (docs/multi-node.md says to give it one)."""
    server_url = conformance_db[0]
    suffix = uuid.uuid4().hex[:12]
    database, role = f"unowned_{suffix}", f"store_user_{suffix}"
    with admin_connection(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PG_PASSWORD}'")
    admin_url = f"{server_url.rpartition('/')[0]}/{database}"
    try:
        yield Unowned(url=admin_url.replace(f"//{PG_USER}@", f"//{role}@", 1),
                      admin_url=admin_url)
    finally:
        with admin_connection(server_url) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            admin.execute(f"DROP ROLE {role}")


class TestAUserThatMayNotCreateTables:
    """A store whose user may not create tables in its database is refused on opening with an
    error that says it failed while migrating the schema and why; the database is left as it
    was."""

    def test_opening_names_the_migration_and_the_missing_right(self, unowned: Unowned) -> None:
        with pytest.raises(StoreError) as caught:
            PostgresJobStore(unowned.url, password=PG_PASSWORD)
        assert str(caught.value) == (
            f"{unowned.url}: the job store failed while migrating the schema: permission "
            "denied for schema public (see docs/multi-node.md; the database log has the "
            "details)")
        with admin_connection(unowned.admin_url) as admin:
            tables = admin.execute("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = 'public'").fetchall()
        assert tables == []
