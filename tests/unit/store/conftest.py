"""Fixtures for the job store tests: a manual clock, the stores, state drivers.

``store`` is each JobStore implementation in turn (SQLite on a real file, PostgreSQL on a
real server), so the tests that take it are the conformance suite both must pass.

Under mutmut (docs/testing.md, "Mutation testing") each mutant runs in a fresh pytest session,
which would start a new PostgreSQL cluster per mutant. So there the PostgreSQL runs are
deselected (the rules live once in ``sqlcore``: the SQLite runs exercise them), unless
``PREFORM_PIPELINE_MUTATION_PG_PORT`` names a running test cluster
(``python -m tests.unit.store.mutation_cluster``), on which each session gets its own database.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import (
    ALLOWED_TRANSITIONS,
    BUILD_ALLOWED_TRANSITIONS,
    INITIAL_STATES,
    Build,
    Job,
    JobState,
    JobStore,
    SqliteJobStore,
)
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.unit.store.mutation_cluster import MUTATION_PG_ENV, running_cluster

if TYPE_CHECKING:
    import psycopg

_HERE = Path(__file__).resolve().parent

#: ``node(name, **options)``: a registered NodeJobStore of that name on the conformance database.
NodeFactory = Callable[..., NodeJobStore]

#: Where the manual clock starts: a fixed, timezone-aware moment.
CLOCK_START = datetime(2024, 5, 1, 8, 0, 0, tzinfo=timezone.utc)



#: The hint every "cannot reach the database" error of the PostgreSQL store carries.
UNREACHABLE_HINT: Final = (
    "check that the database server runs and this node reaches it, and the user, database "
    "and password (PREFORM_PIPELINE_STORE_PASSWORD or its _FILE); watch tries again by "
    "itself, other commands: run them again once the database is back"
)


def admin_connection(url: str) -> psycopg.Connection[Any]:
    """A superuser's own autocommit connection to the test database ``url``."""
    import psycopg

    return psycopg.connect(url, password=PG_PASSWORD, autocommit=True)


def lock_waiters(url: str, application: str = "preform-pipeline",
                 event: str = "advisory") -> int:
    """How many sessions named ``application`` wait for a lock of kind ``event`` (advisory,
    relation) in the test database ``url``, as pg_stat_activity shows: what a test waits on
    to know another node's write stands at its gate."""
    with admin_connection(url) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s AND wait_event_type = 'Lock' AND wait_event = %s",
            (application, event)).fetchone()
    assert row is not None
    return int(row[0])


def _needs_postgres(item: pytest.Item) -> bool:
    if _HERE not in item.path.resolve().parents:  # the hook sees the whole session's items
        return False
    callspec = getattr(item, "callspec", None)
    # Any fixture parametrized by backend: ``store``, ``class_store``, a file's own.
    on_postgres = callspec is not None and "postgresql" in callspec.params.values()
    return on_postgres or "conformance_db" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut (``MUTANT_UNDER_TEST`` set) without a shared cluster, leave out the
    PostgreSQL runs."""
    if "MUTANT_UNDER_TEST" not in os.environ or MUTATION_PG_ENV in os.environ:
        return
    kept = [item for item in items if not _needs_postgres(item)]
    config.hook.pytest_deselected(items=[item for item in items if _needs_postgres(item)])
    items[:] = kept


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=CLOCK_START)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "jobs.sqlite3"


@pytest.fixture(scope="session")
def conformance_db(request: pytest.FixtureRequest) -> Iterator[tuple[str, Callable[[], None]]]:
    """One database for the conformance runs and a way to empty it after each test (much
    faster than a new database per test). On a shared mutation cluster, a database of this
    session's own, dropped at its end."""
    import psycopg

    shared = running_cluster()
    cluster: PgCluster = shared or request.getfixturevalue("pg_cluster")
    name = f"conformance_{uuid.uuid4().hex[:12]}" if shared else "conformance"
    url = cluster.create_database(name)
    try:
        yield from _emptied(url)
    finally:
        if shared is not None:
            with psycopg.connect(shared.url(), password=PG_PASSWORD, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _emptied(url: str) -> Iterator[tuple[str, Callable[[], None]]]:
    import psycopg

    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as conn:

        def empty() -> None:
            # DELETE, not TRUNCATE: on a few rows it is far cheaper; tests never rely on ids.
            with conn.transaction():
                for table in ("transitions", "build_jobs", "jobs", "builds", "inbox_claims",
                              "nodes", "notices", "web_api_requests", "web_api_holds",
                              "printer_claims"):
                    conn.execute(f"DELETE FROM {table}")

        yield url, empty


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, store_path: Path, clock: ManualClock
) -> Iterator[JobStore]:
    if request.param == "sqlite":
        with SqliteJobStore(store_path, clock=clock) as opened:
            yield opened
        return
    yield request.getfixturevalue("pg_store")


@dataclass(frozen=True)
class ClassStore:
    """A store opened for a whole test class, and every statement it ran (its
    ``on_statement``; a test that counts clears the list first)."""

    store: JobStore
    statements: list[str]


@pytest.fixture(scope="class", params=["sqlite", "postgresql"])
def class_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClassStore]:
    """Each backend's store for a class whose tests only read what one costly setup wrote:
    hundreds of jobs written one by one cost seconds a test on each backend. PostgreSQL's is
    the session's conformance database, emptied when the class ends, so a class that takes
    this fixture must not also take ``store`` (both would use that database at once)."""
    statements: list[str] = []
    clock = ManualClock(wall=CLOCK_START)
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("class_store") / "jobs.sqlite3"
        with SqliteJobStore(path, clock=clock, on_statement=statements.append) as opened:
            yield ClassStore(opened, statements)
        return
    url, empty = request.getfixturevalue("conformance_db")
    with PostgresJobStore(url, clock=clock, password=PG_PASSWORD,
                          on_statement=statements.append) as pg:
        try:
            yield ClassStore(pg, statements)
        finally:
            empty()


@pytest.fixture(scope="class")
def filled(class_store: ClassStore) -> JobStore:
    """``class_store`` holding History's cases: more than two pages of them, their jobs in
    every state (``test_store_history_cases._fill``). The class's tests only read it."""
    # Imported here: that module imports this one (the state drivers).
    from tests.unit.store.test_store_history_cases import _fill

    _fill(class_store.store)
    return class_store.store


@pytest.fixture
def pg_store(
    conformance_db: tuple[str, Callable[[], None]], clock: ManualClock
) -> Iterator[PostgresJobStore]:
    """The PostgreSQL store alone, for what only it does (nodes, claims, fences)."""
    url, empty = conformance_db
    with PostgresJobStore(url, clock=clock, password=PG_PASSWORD) as opened:
        try:
            yield opened
        finally:
            empty()


@pytest.fixture
def pg_url(conformance_db: tuple[str, Callable[[], None]]) -> str:
    """The URL of the database ``pg_store`` uses, for more connections (other nodes)."""
    return conformance_db[0]


@contextmanager
def new_database(server_url: str, prefix: str, options: str = "") -> Iterator[str]:
    """The URL of a new, empty database (``CREATE DATABASE ... options``) on the server of
    ``server_url``, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin_connection(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" {options}'.rstrip())
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin_connection(server_url) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_url(conformance_db: tuple[str, Callable[[], None]]) -> Iterator[str]:
    """The URL of a new, empty database on the conformance server, dropped afterwards."""
    with new_database(conformance_db[0], "plumbing") as url:
        yield url


@pytest.fixture
def node(pg_store: PostgresJobStore, pg_url: str) -> Iterator[NodeFactory]:
    """Opens NodeJobStores on the conformance database (pg_store empties it afterwards)."""
    opened: list[NodeJobStore] = []

    def make(name: str, **options: object) -> NodeJobStore:
        store = NodeJobStore(pg_url, node_id=name, password=PG_PASSWORD,
                             **options)
        store.register_node(NodeInfo(id=name, host=name, version="0.1.0"))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def cut_off_stores(pg_url: str) -> None:
    """End the stores' sessions on the database (``application_name``), as a database restart
    would, and wait (up to 30 s) until they are gone."""
    import psycopg

    with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as admin:
        stores = ("FROM pg_stat_activity WHERE datname = current_database() "
                  "AND application_name = 'preform-pipeline'")
        admin.execute(f"SELECT pg_terminate_backend(pid) {stores}")
        deadline = time.monotonic() + 30
        while admin.execute(f"SELECT count(*) {stores}").fetchone() != (0,):
            assert time.monotonic() < deadline, "sessions still open"
            threading.Event().wait(0.05)


def read_without(store_path: Path, table: str, read: Callable[[JobStore], object]) -> str:
    """What ``read`` of the SQLite store at ``store_path`` says once ``table`` is dropped
    behind its back (another connection): a refused read names the read it was."""
    from preform_pipeline.errors import StoreError

    with SqliteJobStore(store_path) as store:
        other = sqlite3.connect(store_path, isolation_level=None)
        other.execute(f"DROP TABLE {table}")
        other.close()
        with pytest.raises(StoreError) as raised:
            read(store)
    return raised.value.message


def driver_error(store: JobStore, text: str) -> Exception:
    """The error the store's database driver raises for a failing disk, with ``text``."""
    if isinstance(store, SqliteJobStore):
        return sqlite3.OperationalError(text)
    import psycopg

    return psycopg.errors.DiskFull(text)


def _shortest_path(
    table: Mapping[JobState, frozenset[JobState]],
    starts: frozenset[JobState],
    goal: JobState,
) -> list[JobState]:
    """The shortest list of states from one of ``starts`` to ``goal`` through ``table``."""
    queue: deque[list[JobState]] = deque([s] for s in sorted(starts, key=lambda s: s.value))
    seen: set[JobState] = set(starts)
    while queue:
        path = queue.popleft()
        if path[-1] is goal:
            return path
        for nxt in sorted(table[path[-1]], key=lambda s: s.value):
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*path, nxt])
    raise AssertionError(f"{goal} cannot be reached")


def job_in_state(store: JobStore, state: JobState, *, recipe: str = "dental") -> Job:
    """A new job without a build, driven through the job table into ``state``."""
    path = _shortest_path(ALLOWED_TRANSITIONS, INITIAL_STATES, state)
    job = store.create_job(recipe=recipe, source_path=f"/hot/inbox/{state.value}.stl",
                           state=path[0])
    for step in path[1:]:
        job = store.transition(job.id, step, f"to {step}")
    assert job.state is state
    return job


def build_in_state(
    store: JobStore, state: JobState, *, jobs: int = 2, recipe: str = "dental"
) -> Build:
    """A new build of ``jobs`` new PROCESSING jobs, driven through the build table to ``state``."""
    members = [
        store.create_job(recipe=recipe, source_path=f"/hot/processing/m{i}.stl",
                         state=JobState.PROCESSING)
        for i in range(jobs)
    ]
    build = store.create_build(recipe=recipe, job_ids=[j.id for j in members])
    path = _shortest_path(BUILD_ALLOWED_TRANSITIONS, frozenset({JobState.PROCESSING}), state)
    for step in path[1:]:
        build = store.transition_build(build.id, step, f"to {step}")
    assert build.state is state
    return build


# -- a dashboard page's reads: counted, or a write stepped in between them -------------------


class Counted:
    """A store and the statements it ran since :meth:`reset`."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.store: JobStore

    def reset(self) -> None:
        self.statements.clear()

    def reading_trails(self) -> list[str]:
        return [s for s in self.statements if "FROM transitions" in s]

    def begun(self) -> list[str]:
        return [s for s in self.statements if s.upper().startswith("BEGIN")]


@contextmanager
def _stores(request: pytest.FixtureRequest, store_path: Path, clock: ManualClock,
            *watchers: Callable[[str], None] | None) -> Iterator[list[JobStore]]:
    """One store a watcher (its ``on_statement``; None: none), all on one database: the
    SQLite file, or (``request.param`` "postgresql") the conformance database, emptied
    after."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield [stack.enter_context(SqliteJobStore(store_path, clock=clock,
                                                      on_statement=w)) for w in watchers]
            return
        url, empty = request.getfixturevalue("conformance_db")
        stack.callback(empty)
        yield [stack.enter_context(PostgresJobStore(url, clock=clock, password=PG_PASSWORD,
                                                    on_statement=w)) for w in watchers]


@pytest.fixture(params=["sqlite", "postgresql"])
def counted(
    request: pytest.FixtureRequest, store_path: Path, clock: ManualClock
) -> Iterator[Counted]:
    seen = Counted()
    with _stores(request, store_path, clock, seen.statements.append) as (seen.store,):
        yield seen


class Interleaved:
    """A store whose statements a test can step in between (``on_statement``), and a second
    store on the same database (another connection, as another process has) to write with."""

    def __init__(self) -> None:
        self.reader: JobStore
        self.writer: JobStore
        self._seen: dict[str, int] = {}
        self._hooks: list[tuple[str, int, Callable[[], None]]] = []

    def before(self, text: str, nth: int, then: Callable[[], None]) -> None:
        """Run ``then`` as the ``nth`` statement holding ``text`` starts."""
        self._hooks.append((text, nth, then))

    def statement(self, sql: str) -> None:
        for hook in list(self._hooks):
            text, nth, then = hook
            if text in sql:
                self._seen[text] = self._seen.get(text, 0) + 1
                if self._seen[text] == nth:
                    self._hooks.remove(hook)
                    then()


@pytest.fixture(params=["sqlite", "postgresql"])
def interleaved(
    request: pytest.FixtureRequest, store_path: Path, clock: ManualClock
) -> Iterator[Interleaved]:
    both = Interleaved()
    with _stores(request, store_path, clock, both.statement, None) as (both.reader,
                                                                      both.writer):
        yield both


#: A viewer of the dashboard :func:`served_page` serves.
VIEWER_SECRET: Final = "viewer-secret-4567"


def served_page(store: JobStore, page: str) -> str:
    """The dashboard ``page`` (path and query) as a viewer gets it from a dashboard on
    ``store``, served on loopback."""
    # Imported here: the other store tests need no web server.
    import httpx

    from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
    from preform_pipeline.web import WebServer

    users = (WebUser("victor", "viewer", hash_secret(VIEWER_SECRET)),)
    server = WebServer(store, WebSettings(port=0, users=users))
    server.start()
    try:
        answer = httpx.get(f"{server.url}{page}", timeout=30.0,
                           headers={"Authorization": f"Bearer victor:{VIEWER_SECRET}"})
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text[-500:]
    return answer.text


def failed_job(store: JobStore, case_id: str, digest: str) -> Job:
    """A case's one job, of content ``digest``, failed (its run died)."""
    job = store.create_job(recipe="grey", source_path=f"/hot/inbox/{case_id}.stl",
                           content_hash=digest, case_id=case_id, state=JobState.PROCESSING)
    return store.transition(job.id, JobState.FAILED, "its run died")


def put_right(store: JobStore, case_id: str, digest: str) -> None:
    """A later job of the same content that printed: the failure is left out of Failed."""
    job = store.create_job(recipe="grey", source_path=f"/hot/inbox/{case_id}.stl",
                           content_hash=digest, case_id=case_id, state=JobState.PROCESSING)
    build = store.create_build(recipe="grey", job_ids=[job.id])
    for step in (JobState.PREPARING, JobState.PREPARED, JobState.DONE):
        store.transition_build(build.id, step, "printed")
