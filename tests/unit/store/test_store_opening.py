"""Opening the store the settings name (store/opening.py): a SQLite file, or a PostgreSQL URL
shown and logged without its password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.opening import describe_store, is_shared_store, open_store
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import CLOCK_START

#: Nothing listens on port 1 of the loopback: a connection there is refused at once.
UNREACHABLE = "postgresql://pipeline:hunter2-secret@127.0.0.1:1/jobs"


class TestWhichStore:
    """Only a PostgreSQL URL given as text is a shared store; a path never is."""

    def test_a_url_is_shared(self) -> None:
        assert is_shared_store("postgres://db.lab/jobs")

    @pytest.mark.parametrize("location", [
        "jobs.sqlite3", Path("jobs.sqlite3"), Path("postgresql:") / "db.lab" / "jobs",
    ])
    def test_a_file_is_not(self, location: str | Path) -> None:
        assert not is_shared_store(location)


class TestDescribing:
    """A store is named by its file, or by its URL without the password."""

    def test_a_url_is_named_without_its_password(self) -> None:
        assert describe_store(UNREACHABLE) == "postgresql://pipeline:***@127.0.0.1:1/jobs"

    @pytest.mark.parametrize("location", [
        "/data/password=1/jobs.sqlite3", Path("/data/a:b@c/jobs.sqlite3"),
        "/data/jobs?password=1.sqlite3",
    ])
    def test_a_file_is_named_as_it_is(self, location: str | Path) -> None:
        assert describe_store(location) == str(location)


class TestOpeningAFile:
    """A SQLite file is created unless told not to, and its rows carry the given clock's time."""

    def test_a_new_file_is_created_on_the_given_clock(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with open_store(path, clock=ManualClock(wall=CLOCK_START)) as store:
            assert isinstance(store, SqliteJobStore)
            job = store.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
        assert path.exists()
        assert job.created_at == CLOCK_START

    def test_a_path_given_as_text_is_a_file(self, tmp_path: Path) -> None:
        with open_store(str(tmp_path / "jobs.sqlite3")) as store:
            assert isinstance(store, SqliteJobStore)
        assert (tmp_path / "jobs.sqlite3").exists()

    def test_a_missing_file_is_not_created_when_told_not_to(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        with pytest.raises(StoreError, match="no job store here"):
            open_store(path, create=False)
        assert not path.exists()


class TestOpeningAUrl:
    """A URL opens the PostgreSQL store; one that cannot be reached says so, without the
    password."""

    def test_an_unreachable_database_is_a_store_error_without_the_password(self) -> None:
        with pytest.raises(StoreError) as caught:
            open_store(UNREACHABLE, create=False)
        assert str(caught.value).startswith(
            "postgresql://pipeline:***@127.0.0.1:1/jobs: cannot reach the PostgreSQL job store "
            "while connecting")
        assert "hunter2" not in str(caught.value)

    def test_a_url_libpq_cannot_read_is_a_store_error_without_the_password(self) -> None:
        # libpq quotes the badly encoded part of the password (session 31); since session 42
        # such a URL is refused before libpq reads it.
        with pytest.raises(StoreError) as caught:
            open_store("postgresql://pipeline:hunter2-secret%ZZ@127.0.0.1:1/jobs", create=False)
        assert str(caught.value).startswith(
            "postgresql://pipeline:***@127.0.0.1:1/jobs: the URL's user or password holds @, / "
            "or a bare %, which it must percent-encode")
        assert "hunter2" not in str(caught.value)

    def test_a_url_opens_the_postgresql_store_on_the_given_clock(
        self, conformance_db: tuple[str, Callable[[], None]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url, empty = conformance_db
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        clock = ManualClock(wall=CLOCK_START)
        try:
            with open_store(url, create=False, clock=clock) as store:
                assert isinstance(store, PostgresJobStore)
                job = store.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
                assert store.history(job.id)[0].at == CLOCK_START
        finally:
            empty()
