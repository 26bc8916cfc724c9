"""A dry run's look at a PostgreSQL job store (``PostgresJobStore.check``, through
``check_store``): whatever the real run's open would refuse is refused with the open's own
words, and nothing is created, written or migrated (real PostgreSQL, real logins).

Session 48: a dry run against a PostgreSQL URL did not reach the server at all, so a store its
real run could not open (a wrong password, a database missing, a newer schema) passed."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from preform_pipeline.errors import StoreError, StoreUnavailableError
from preform_pipeline.store.opening import check_store
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresJobStore
from tests.multinode_farm import wait_until
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import admin_connection, new_database


@pytest.fixture
def empty_url(conformance_db: tuple[str, Callable[[], None]]) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    with new_database(conformance_db[0], "check") as url:
        yield url


def _tables(url: str) -> dict[str, int]:
    """Every table of the database's own schema, with its row count; and the schema version
    (under its table's name) where there is one."""
    with admin_connection(url) as admin:
        names = [row[0] for row in admin.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name").fetchall()]
        counts = {name: admin.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                  for name in names}
        if "preform_schema" in counts:
            counts["preform_schema"] = admin.execute(
                "SELECT version FROM preform_schema").fetchone()[0]
    return counts


def _sessions(url: str) -> int:
    """The store's sessions (named preform-pipeline) open on ``url``'s database."""
    with admin_connection(url) as admin:
        return int(admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'preform-pipeline'").fetchone()[0])


def _refusals(url: str, password: str = PG_PASSWORD) -> tuple[str, str]:
    """What the check said and what the open said of ``url``."""
    with pytest.raises(StoreError) as checked:
        PostgresJobStore.check(url, password=password)
    with pytest.raises(StoreError) as opened:
        PostgresJobStore(url, password=password).close()
    return str(checked.value), str(opened.value)


class TestWhatTheOpenRefusesTheCheckRefuses:
    def test_a_refused_login_is_said_as_the_open_says_it(self, empty_url: str) -> None:
        checked, opened = _refusals(empty_url, password="not-the-password")
        assert checked == opened
        assert "refused the job store's login" in checked

    def test_a_database_not_there_is_said_as_the_open_says_it(
        self, conformance_db: tuple[str, Callable[[], None]]
    ) -> None:
        missing = conformance_db[0].rsplit("/", 1)[0] + "/no_such_store"
        checked, opened = _refusals(missing)
        assert checked == opened
        assert 'database "no_such_store" does not exist' in checked

    def test_a_server_not_answering_is_said_as_the_open_says_it(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        url = f"postgresql://pipeline@127.0.0.1:{port}/jobs"
        with pytest.raises(StoreUnavailableError) as checked:
            PostgresJobStore.check(url, password=PG_PASSWORD)
        with pytest.raises(StoreUnavailableError) as opened:
            PostgresJobStore(url, password=PG_PASSWORD).close()
        assert str(checked.value) == str(opened.value)
        assert (checked.value.kind, checked.value.waits) == ("away", True)

    def test_a_newer_schema_is_said_as_the_open_says_it_and_left_as_it_is(
        self, empty_url: str
    ) -> None:
        PostgresJobStore(empty_url, password=PG_PASSWORD).close()
        with admin_connection(empty_url) as admin:
            admin.execute("UPDATE preform_schema SET version = %s", (PG_SCHEMA_VERSION + 1,))
        before = _tables(empty_url)
        checked, opened = _refusals(empty_url)
        assert checked == opened
        assert f"schema version {PG_SCHEMA_VERSION + 1}, newer than the" in checked
        assert _tables(empty_url) == before

    def test_a_database_of_other_tables_is_refused_and_left_as_it_is(
        self, empty_url: str
    ) -> None:
        with admin_connection(empty_url) as admin:
            admin.execute("CREATE TABLE kept (x integer)")
        checked, opened = _refusals(empty_url)
        assert checked == opened
        assert "not a preform-pipeline job store (it has tables kept" in checked
        assert _tables(empty_url) == {"kept": 0}


class TestWhatTheOpenWouldMakeTheCheckLeaves:
    def test_an_empty_database_passes_and_no_table_is_created(
        self, empty_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)  # as a dry run reads it
        check_store(empty_url)
        assert _tables(empty_url) == {}

    def test_an_older_store_passes_and_is_not_migrated(self, empty_url: str) -> None:
        with admin_connection(empty_url) as admin:
            admin.execute("CREATE TABLE preform_schema (version INTEGER NOT NULL)")
            for migration in PG_MIGRATIONS[:-1]:
                admin.execute(migration.sql)
            admin.execute("INSERT INTO preform_schema (version) VALUES (%s)",
                          (PG_SCHEMA_VERSION - 1,))
        before = _tables(empty_url)
        PostgresJobStore.check(empty_url, password=PG_PASSWORD)
        assert _tables(empty_url) == before
        assert before["preform_schema"] == PG_SCHEMA_VERSION - 1


class TestTheCheckLeavesNoSessionOpen:
    def test_a_refusal_closes_the_checks_connection(self, empty_url: str) -> None:
        with admin_connection(empty_url) as admin:
            admin.execute("CREATE TABLE kept (x integer)")
        with pytest.raises(StoreError) as refused:
            PostgresJobStore.check(empty_url, password=PG_PASSWORD)
        # The refusal's traceback holds the check's frame, its connection with it, as a
        # caller that keeps the error does (session 48's review: the test of the check's
        # close was dropped because a connection let go of is closed when collected; a
        # refusal's is not let go of).
        assert refused.value.__traceback__ is not None
        wait_until("the check's session to end", lambda: _sessions(empty_url) == 0, 10.0)
