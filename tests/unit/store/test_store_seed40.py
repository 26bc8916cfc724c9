"""Session 22's whole runs of the PostgreSQL store's modules (and seed 40's sample of sqlcore):
a SQLite store moved in from a folder whose name holds URI characters, a target that drops a
copied row, two nodes' writes taking turns, a node's stop that fails whole, a server that
accepts the connection and never answers, and the password file read as UTF-8 under an ASCII
locale (real SQLite files, real PostgreSQL, a real loopback socket)."""

from __future__ import annotations

import locale
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.migrate import MigrationReport, migrate_sqlite_to_postgres
from preform_pipeline.store.pgurl import PASSWORD_FILE_ENV, store_password
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import (
    UNREACHABLE_HINT,
    NodeFactory,
    admin_connection,
    build_in_state,
    lock_waiters,
)

#: Generous on a loaded machine; the store gives up after about one connect timeout per try.
WAIT_S = 30.0


class TestAStoreInAFolderWithUriCharacters:
    """A SQLite store whose folder name holds ``#``, ``%`` or ``?`` is moved in whole, and no
    other file appears beside it."""

    @pytest.mark.parametrize("folder", ["lab #2", "100%41 done", "why?"])
    def test_every_row_arrives_and_nothing_else_is_created(
        self, tmp_path: Path, pg_store: PostgresJobStore, folder: str
    ) -> None:
        source = tmp_path / folder / "jobs.sqlite3"
        with SqliteJobStore(source) as old:
            build_in_state(old, JobState.PRINT_SENT, jobs=2)
            old.create_job(recipe="ortho", source_path="/hot/inbox/c.stl")
            jobs, builds = old.list_jobs(), old.list_builds()
        report = migrate_sqlite_to_postgres(source, pg_store)
        assert report == MigrationReport(
            source=source, target=pg_store.location,
            rows={"builds": 1, "jobs": 3, "build_jobs": 2, "transitions": 18,
                  "web_api_requests": 0, "web_api_holds": 0})
        assert pg_store.list_jobs() == jobs
        assert pg_store.list_builds() == builds
        # Read as a URI cut short at the '#' or '?', the copy opened (and created) "lab " or
        # "why" beside the folder instead, and failed on its missing tables.
        assert [p.name for p in tmp_path.iterdir()] == [folder]


class TestARowTheTargetDropsQuietly:
    """A target that drops a row without an error (a trigger of its own) is caught by the
    count after the copy: the copy fails, naming the table and both counts, and nothing is
    kept."""

    def test_the_copy_fails_with_both_counts_and_the_target_stays_empty(
        self, tmp_path: Path, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        source = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(source) as old:
            job = old.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
            old.transition(job.id, JobState.QUEUED, "complete")
        with admin_connection(pg_url) as admin:
            admin.execute("CREATE FUNCTION skip_queued() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RETURN NULL; END $$")
            admin.execute("CREATE TRIGGER skip_queued BEFORE INSERT ON transitions FOR EACH ROW "
                          "WHEN (NEW.to_state = 'queued') EXECUTE FUNCTION skip_queued()")
        try:
            with pytest.raises(StoreError) as caught:
                migrate_sqlite_to_postgres(source, pg_store)
        finally:
            with admin_connection(pg_url) as admin:
                admin.execute("DROP TRIGGER skip_queued ON transitions")
                admin.execute("DROP FUNCTION skip_queued()")
        assert caught.value.message == (
            f"{pg_store.location}: transitions holds 1 row after the copy, expected 2; "
            "nothing was kept")
        assert pg_store.list_jobs() == () and pg_store.list_builds() == ()


class TestWritersTakeTurns:
    """While one node's write is still open, another node's write waits for it (reads do not):
    the second job appears only after the first write commits."""

    def test_a_second_write_waits_for_the_first_to_commit(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        job = pg_store.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
        other = PostgresJobStore(pg_url, password=PG_PASSWORD)
        gate = admin_connection(pg_url)
        try:
            # The first write stays open at its audit row until the test lets it go.
            gate.execute("SELECT pg_advisory_lock(4242)")
            gate.execute("CREATE FUNCTION gate_s22() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$")
            gate.execute("CREATE TRIGGER gate_s22 BEFORE INSERT ON transitions FOR EACH ROW "
                         "WHEN (NEW.reason = 'gated') EXECUTE FUNCTION gate_s22()")
            first = threading.Thread(
                target=pg_store.transition, args=(job.id, JobState.QUEUED, "gated"), daemon=True)
            first.start()
            wait_for(lambda: lock_waiters(pg_url) == 1, WAIT_S, what="the first write at its gate")
            second = threading.Thread(
                target=other.create_job,
                kwargs={"recipe": "dental", "source_path": "/hot/inbox/b.stl"}, daemon=True)
            second.start()
            wait_for(lambda: lock_waiters(pg_url) == 2 or not second.is_alive(),
                     WAIT_S, what="the second write to wait or end")
            assert second.is_alive(), "the second write did not wait for the first"
            with PostgresJobStore(pg_url, password=PG_PASSWORD) as reader:
                assert reader.list_jobs() == (job,)  # a read does not wait
            gate.execute("SELECT pg_advisory_unlock(4242)")
            first.join(WAIT_S)
            second.join(WAIT_S)
            assert not first.is_alive() and not second.is_alive()
        finally:
            gate.execute("DROP TRIGGER IF EXISTS gate_s22 ON transitions")
            gate.execute("DROP FUNCTION IF EXISTS gate_s22()")
            gate.close()
            other.close()
        jobs = pg_store.list_jobs()
        assert [(str(j.source_path), j.state) for j in jobs] == [
            ("/hot/inbox/a.stl", JobState.QUEUED), ("/hot/inbox/b.stl", JobState.DISCOVERED)]
        assert [t.reason for t in pg_store.history(job.id)][-1] == "gated"


class TestAStopThatCannotGiveItsBuildsBack:
    """A node's stop whose release of its builds fails is not recorded at all: the node still
    shows as running and holding its build."""

    def test_the_stop_fails_whole_and_the_node_keeps_its_build(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a", lease_s=600.0)
        job = a.create_job(recipe="dental", source_path="/nas/processing/m.stl",
                           content_hash="sha256:m", state=JobState.PROCESSING)
        build = a.create_build(recipe="dental", job_ids=[job.id])
        with admin_connection(pg_url) as admin:
            admin.execute("CREATE FUNCTION refuse_s22() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'builds are read-only today'; END $$")
            admin.execute("CREATE TRIGGER refuse_s22 BEFORE UPDATE ON builds FOR EACH ROW "
                          "EXECUTE FUNCTION refuse_s22()")
        try:
            with pytest.raises(StoreError) as caught:
                a.node_stopped("pc-a")
        finally:
            with admin_connection(pg_url) as admin:
                admin.execute("DROP TRIGGER refuse_s22 ON builds")
                admin.execute("DROP FUNCTION refuse_s22()")
        assert caught.value.message == (
            f"{pg_url}: the job store failed while stopping node pc-a: "
            "builds are read-only today")
        (status,) = a.list_nodes()
        assert not status.stopped
        assert status.held_builds == (build.id,)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose listener takes connections and never answers them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepted by the kernel, never read nor answered
        yield int(listener.getsockname()[1])


class TestAServerThatNeverAnswers:
    """A server that takes the connection and never answers is given up after the connect
    timeout, with the error that says the store cannot be reached."""

    def test_opening_gives_up_and_names_the_store(self, silent_port: int) -> None:
        url = f"postgresql://pipeline@127.0.0.1:{silent_port}/jobs"
        outcome: list[BaseException] = []

        def open_store() -> None:
            try:
                PostgresJobStore(url, password="x", connect_timeout_s=1)
            except BaseException as exc:  # handed to the test's thread
                outcome.append(exc)

        opening = threading.Thread(target=open_store, name="opening", daemon=True)
        opening.start()
        opening.join(WAIT_S)
        assert not opening.is_alive(), "still connecting: no connect timeout"
        (error,) = outcome
        assert isinstance(error, StoreError)
        assert error.message == (f"{url}: cannot reach the PostgreSQL job store while "
                                 "connecting: connection timeout expired")
        assert error.hint == UNREACHABLE_HINT


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """This process's character type locale set to plain ``C`` (ASCII), as a service account
    without a UTF-8 locale has it, and set back afterwards."""
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


class TestThePasswordFileUnderAnAsciiLocale:
    """The password file is read as UTF-8 even where the locale's own encoding is ASCII."""

    def test_a_password_with_letters_beyond_ascii_is_read_whole(
        self, tmp_path: Path, ascii_locale: None
    ) -> None:
        secret = tmp_path / "secret"
        secret.write_bytes("pässwörd€\n".encode())
        assert store_password({PASSWORD_FILE_ENV: str(secret)}) == "pässwörd€"
