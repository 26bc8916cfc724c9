"""The PostgreSQL store's plumbing: migrating a database, refusing a newer or foreign one, a
lost connection, a failing statement, an unreachable server, closing (real PostgreSQL)."""

from __future__ import annotations

import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError, StoreUnavailableError
from preform_pipeline.hotfolder.storewait import database_away
from preform_pipeline.store import JobState
from preform_pipeline.store.pgerrors import RUNNING_KEEPS_TRYING
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import (
    _WRITE_LOCK,
    CANCELLED_HINT,
    PG_MIGRATIONS,
    PG_SCHEMA_VERSION,
    REFUSED_ENDING,
    PostgresJobStore,
)
from tests.conftest import REPO_ROOT
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import UNREACHABLE_HINT, admin_connection, new_database


@pytest.fixture
def ascii_url(conformance_db: tuple[str, Callable[[], None]]) -> Iterator[str]:
    """A new, empty database in SQL_ASCII, what ``initdb`` makes under a C locale."""
    with new_database(conformance_db[0], "ascii", "ENCODING 'SQL_ASCII' TEMPLATE template0 "
                      "LC_COLLATE 'C' LC_CTYPE 'C'") as url:
        yield url


def _others(url: str, select: str) -> list[tuple[Any, ...]]:
    """``select`` over the database's sessions other than the caller's."""
    with admin_connection(url) as admin:
        return admin.execute(f"SELECT {select} FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid()").fetchall()


def _wait_for_sessions(url: str, count: int) -> None:
    """Wait (up to 30 s) until the database has ``count`` sessions besides the caller's: a
    backend leaves pg_stat_activity a moment after its connection ends."""
    deadline = time.monotonic() + 30
    while (found := _others(url, "count(*)")) != [(count,)]:
        assert time.monotonic() < deadline, f"sessions: {found}"
        threading.Event().wait(0.05)


def _open(url: str, **options: Any) -> PostgresJobStore:
    return PostgresJobStore(url, password=PG_PASSWORD, **options)


def _tcp_limits(store: PostgresJobStore) -> dict[str, int]:
    """The TCP options on the store's connection, read from its socket as the kernel has
    them (the store's connection is private: no public seam says what libpq set)."""
    assert store._conn is not None
    with socket.fromfd(store._conn.raw.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as sock:
        return {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle_s": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval_s": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


class TestADatabaseInAsciiEncoding:
    """A database made under a C locale (SQL_ASCII) is a store like any other (session 30: its
    second opening crashed on table names read as bytes; a non-ASCII file name could not be
    sent at all)."""

    def test_it_opens_again_and_keeps_a_non_ascii_file_name(self, ascii_url: str) -> None:
        with admin_connection(ascii_url) as admin:
            assert admin.execute("SHOW server_encoding").fetchall() == [(b"SQL_ASCII",)]
        with _open(ascii_url) as store:
            job = store.create_job(recipe="dental", source_path="/nas/Müller/zahnrad groß.stl")
        with _open(ascii_url) as store:
            assert str(store.get_job(job.id).source_path) == "/nas/Müller/zahnrad groß.stl"


class TestMigrating:
    """An empty database gets every migration once, logged; a second opening changes nothing."""

    def test_an_empty_database_is_migrated_to_the_latest_version(self, fresh_url: str) -> None:
        with capture_logs() as logs:
            _open(fresh_url).close()
        migrated = [(e["version"], e["description"], e["store"]) for e in logs
                    if e["event"] == "store_migrated"]
        assert migrated == [(m.version, m.name, fresh_url) for m in PG_MIGRATIONS]
        assert PG_MIGRATIONS[0].name == "jobs"
        with admin_connection(fresh_url) as conn:
            row = conn.execute("SELECT version FROM preform_schema").fetchall()
        assert row == [(PG_SCHEMA_VERSION,)]
        with capture_logs() as again:
            store = _open(fresh_url)
        try:
            assert [e for e in again if e["event"] == "store_migrated"] == []
            job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            assert store.get_job(job.id).state is JobState.DISCOVERED
        finally:
            store.close()

    def test_a_database_of_a_newer_version_is_refused_and_left_alone(
        self, fresh_url: str
    ) -> None:
        _open(fresh_url).close()
        with admin_connection(fresh_url) as conn:
            conn.execute("UPDATE preform_schema SET version = %s", (PG_SCHEMA_VERSION + 1,))
        with pytest.raises(StoreError) as caught:
            _open(fresh_url)
        assert str(caught.value).startswith(
            f"{fresh_url}: the job store has schema version {PG_SCHEMA_VERSION + 1}, newer "
            f"than the {PG_SCHEMA_VERSION} this preform-pipeline knows (")
        assert caught.value.hint == (
            "upgrade preform-pipeline on this node: a newer one migrated the shared store")
        with admin_connection(fresh_url) as conn:
            assert conn.execute("SELECT version FROM preform_schema").fetchall() == [
                (PG_SCHEMA_VERSION + 1,)]

    def test_another_programs_database_is_refused_and_left_alone(self, fresh_url: str) -> None:
        with admin_connection(fresh_url) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
            conn.execute("CREATE TABLE customers (id INTEGER)")
        with pytest.raises(StoreError) as caught:
            _open(fresh_url)
        assert str(caught.value).startswith(
            f"{fresh_url}: not a preform-pipeline job store (it has tables customers, "
            "invoices but no schema version) (")
        assert caught.value.hint == "give the job store a database (or schema) of its own"
        _wait_for_sessions(fresh_url, 0)  # ended at once, though the error is still held
        with admin_connection(fresh_url) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY table_name").fetchall()
        assert tables == [("customers",), ("invoices",)]


class TestConnection:
    """The store names itself to the server, reconnects after a lost connection, and turns
    driver errors into StoreErrors that name the store and the action."""

    def test_the_session_is_named_and_answers_in_utc(self, fresh_url: str) -> None:
        with admin_connection(fresh_url) as admin:  # a server whose own zone is not UTC
            admin.execute(f'ALTER DATABASE "{fresh_url.rsplit("/", 1)[1]}" '
                          "SET TimeZone = 'Asia/Tokyo'")
        with _open(fresh_url) as store:
            job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            assert _others(fresh_url, "application_name") == [("preform-pipeline",)]
            assert store.get_job(job.id).created_at.utcoffset() == timedelta(0)

    def test_a_lost_connection_fails_one_call_and_the_next_connects_again(
        self, fresh_url: str
    ) -> None:
        with _open(fresh_url) as store:
            job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            assert _others(fresh_url, "pg_terminate_backend(pid)") == [(True,)]
            _wait_for_sessions(fresh_url, 0)
            with pytest.raises(StoreError) as caught:
                store.get_job(job.id)
            assert str(caught.value).startswith(
                f"{fresh_url}: cannot reach the PostgreSQL job store while reading job "
                f"{job.id}: ")
            assert caught.value.hint == UNREACHABLE_HINT
            with capture_logs() as logs:
                assert store.get_job(job.id).state is JobState.DISCOVERED
            assert [e for e in logs if e["event"] == "store_reconnecting"] == [
                {"event": "store_reconnecting", "log_level": "warning", "store": fresh_url}]

    def test_a_dead_link_is_given_up_within_a_minute_not_the_systems_quarter_hour(
        self, fresh_url: str
    ) -> None:
        with _open(fresh_url) as store:
            assert _tcp_limits(store) == {"keepalive": 1, "idle_s": 30, "interval_s": 10,
                                          "count": 3, "user_timeout_ms": 60000}
            # A connection made again (after a lost one) is bounded the same way.
            assert _others(fresh_url, "pg_terminate_backend(pid)") == [(True,)]
            _wait_for_sessions(fresh_url, 0)
            with pytest.raises(StoreError):
                store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            assert _tcp_limits(store)["user_timeout_ms"] == 60000

    def test_the_urls_own_tcp_limits_are_kept(self, fresh_url: str) -> None:
        joined = "&" if "?" in fresh_url else "?"
        with _open(f"{fresh_url}{joined}tcp_user_timeout=5000&keepalives_idle=45") as store:
            assert _tcp_limits(store) == {"keepalive": 1, "idle_s": 45, "interval_s": 10,
                                          "count": 3, "user_timeout_ms": 5000}

    def test_a_failing_statement_is_rolled_back_and_the_store_goes_on(
        self, fresh_url: str
    ) -> None:
        with _open(fresh_url) as store:
            job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            with admin_connection(fresh_url) as admin:
                admin.execute("ALTER TABLE transitions RENAME TO transitions_gone")
            with pytest.raises(StoreError) as caught:
                store.transition(job.id, JobState.QUEUED, "complete")
            # The driver's message has more lines (LINE 1: ...); only the first is kept.
            assert str(caught.value) == (
                f"{fresh_url}: the job store failed while moving job {job.id} to queued: "
                'relation "transitions" does not exist (see docs/multi-node.md; the '
                "database log has the details)")
            with capture_logs() as logs:  # rolled back, the connection goes on: no reconnect
                assert store.get_job(job.id).state is JobState.DISCOVERED  # nothing half-written
            assert [e for e in logs if e["event"] == "store_reconnecting"] == []
            with admin_connection(fresh_url) as admin:
                admin.execute("ALTER TABLE transitions_gone RENAME TO transitions")
            assert store.transition(job.id, JobState.QUEUED, "complete").state is (
                JobState.QUEUED)

    def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_the_store_usable(
        self, fresh_url: str
    ) -> None:
        # A role's statement_timeout, or a DBA's pg_cancel_backend, ends a write that queues
        # behind another node's: the transaction it opened must not stay open and aborted.
        with _open(fresh_url) as store:
            job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            failed: list[BaseException] = []

            def write() -> None:
                try:
                    store.transition(job.id, JobState.QUEUED, "complete")
                except BaseException as exc:  # handed to the test's thread
                    failed.append(exc)

            with admin_connection(fresh_url) as holder:
                holder.execute("BEGIN")
                holder.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
                writer = threading.Thread(target=write)
                writer.start()
                deadline = time.monotonic() + 30
                waiting = "count(*) FILTER (WHERE wait_event_type = 'Lock')"
                while _others(fresh_url, waiting) != [(1,)]:
                    assert time.monotonic() < deadline, "the write never waited for the lock"
                    threading.Event().wait(0.05)
                with admin_connection(fresh_url) as admin:
                    admin.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE "
                                  "application_name = 'preform-pipeline'")
                writer.join(30)
                holder.execute("COMMIT")
            assert not writer.is_alive()
            (error,) = failed
            assert isinstance(error, StoreError)
            assert str(error) == (
                f"{fresh_url}: the job store failed while moving job {job.id} to queued: "
                "canceling statement due to user request (" + CANCELLED_HINT + ")")
            assert store.transition(job.id, JobState.QUEUED, "complete").state is (
                JobState.QUEUED)
            assert store.get_job(job.id).state is JobState.QUEUED

    def test_a_write_its_lock_timeout_ended_says_so_and_is_not_an_unreachable_store(
        self, fresh_url: str
    ) -> None:
        # Review of session 45: a lock_timeout's error is 55P03 (LockNotAvailable), not the
        # QueryCanceled of a statement_timeout: it was said as "cannot reach the PostgreSQL
        # job store" (check that the server runs), and a starting watch waited on it.
        with admin_connection(fresh_url) as admin:
            admin.execute(f'ALTER DATABASE "{fresh_url.rsplit("/", 1)[1]}" SET lock_timeout '
                          "= '100ms'")
        with _open(fresh_url) as store:
            job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
            with admin_connection(fresh_url) as holder:
                holder.execute("BEGIN")
                holder.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
                with pytest.raises(StoreError) as caught:
                    store.transition(job.id, JobState.QUEUED, "complete")
                holder.execute("COMMIT")
            assert str(caught.value) == (
                f"{fresh_url}: the job store failed while moving job {job.id} to queued: "
                "canceling statement due to lock timeout (" + CANCELLED_HINT + ")")
            assert not isinstance(caught.value, StoreUnavailableError)
            assert not database_away(caught.value)
            assert store.transition(job.id, JobState.QUEUED, "complete").state is (
                JobState.QUEUED)

    def test_an_unknown_database_is_a_refusal_without_the_password(
        self, fresh_url: str
    ) -> None:
        with admin_connection(fresh_url) as admin:
            port = admin.execute("SELECT inet_server_port()").fetchone()
        assert port is not None
        wrong = fresh_url.replace(f":{port[0]}/", f":{port[0]}/nosuchdb_")
        with pytest.raises(StoreError) as caught:
            PostgresJobStore(wrong, password="hunter2-secret", connect_timeout_s=5)
        text = str(caught.value)
        assert text.startswith(
            f"{wrong}: the PostgreSQL server refused the job store's login while connecting: ")
        assert "hunter2-secret" not in text
        assert caught.value.hint is not None
        assert caught.value.hint.endswith(REFUSED_ENDING)
        # Review rv48-regress: a store a command that exits opened (run --dry-run, jobs) is
        # told nothing of what a running watch or serve does (PgFailure.hint_for).
        assert RUNNING_KEEPS_TRYING not in caught.value.hint

    def test_the_password_comes_from_the_environment_when_not_given(
        self, fresh_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        with PostgresJobStore(fresh_url) as store:
            assert store.list_jobs() == ()
        monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
        with pytest.raises(StoreError, match="refused the job store's login"):
            PostgresJobStore(fresh_url)


class TestClosing:
    """A closed store refuses calls with a clear error, closes twice quietly, and says so."""

    def test_a_closed_store_refuses_calls(self, fresh_url: str) -> None:
        store = _open(fresh_url)
        assert repr(store) == f"PostgresJobStore({fresh_url!r}, open)"
        store.close()
        store.close()
        assert repr(store) == f"PostgresJobStore({fresh_url!r}, closed)"
        with pytest.raises(StoreError) as caught:
            store.list_jobs()
        assert str(caught.value) == f"{fresh_url}: the job store is closed"
        _wait_for_sessions(fresh_url, 0)  # the connection is closed, not left to the server


class TestWithoutTheDriver:
    """A PostgreSQL store without psycopg installed says what to install."""

    def test_a_missing_driver_is_a_store_error_with_the_install_command(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import` sees when absent
        with pytest.raises(StoreError) as caught:
            PostgresJobStore("postgresql://pipeline@127.0.0.1:1/jobs", password="x")
        assert str(caught.value).startswith(
            "a PostgreSQL job store (postgresql://...) needs psycopg, which is not installed (")
        # Session 41: the hint was for an installed package only; this code runs from a
        # checkout, whose own Python's pip installs it again editable with the extra.
        assert caught.value.hint == (
            "install the postgresql extra into this checkout's install: "
            f"{shlex.quote(sys.executable)} -m pip install -e "
            f"{shlex.quote(f'{REPO_ROOT}[postgresql]')}")
