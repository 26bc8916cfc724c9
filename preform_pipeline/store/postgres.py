"""The PostgreSQL job store: one database shared by several nodes (``store.url: postgresql://…``).

The rules are :mod:`preform_pipeline.store.sqlcore`'s, the same as the SQLite store's; this
module supplies PostgreSQL's plumbing:

- **Writers take one transaction-level advisory lock** before their first read, the
  counterpart of SQLite's ``BEGIN IMMEDIATE``: a compare-and-set is never overtaken between
  its read and its write, and two nodes claiming the same content never both get it.
  Transitions take milliseconds, so writers queue briefly; the lock goes with the transaction
  (a node that dies mid-write frees it with its connection).
- **Readers** use one REPEATABLE READ, READ ONLY snapshot per call: they never block a writer
  and never see half a transition.
- **Durable on return**: COMMIT returns after the WAL is flushed (``synchronous_commit`` on,
  PostgreSQL's default; keep it on for a store).
- **Times** are ``timestamptz``; sidecar fields and send holders are ``jsonb``.
- **Migrations** are the numbered plain-SQL files in ``postgres_sql/``; the table
  ``preform_schema`` holds the applied version. All of them run in one transaction under an
  advisory lock, so two nodes starting at once migrate once. A database newer than this code,
  or one holding other tables, is refused.
- **A node frozen inside a transaction** is cut off by the server after
  ``stall_timeout_s`` (``idle_in_transaction_session_timeout``), releasing its locks.
- **A lost connection** (the server restarted, a network blip) fails the call in flight with
  a StoreError; the next call connects again. The error puts libpq's cause ("password
  authentication failed ...") first and the server it came from after it, so the console's
  cut of a long line (crash.shorten) never takes the words that say what is wrong.

It also keeps the nodes, build claims and fences of several nodes
(:mod:`preform_pipeline.store.leases`).

One :class:`PostgresJobStore` holds one connection, shared by a process's threads under a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.clock import Clock
from preform_pipeline.errors import StoreError, StoreUnavailableError
from preform_pipeline.extras import install_extra_hint
from preform_pipeline.logging import get_logger
from preform_pipeline.store.leases import LeasingStore
from preform_pipeline.store.pgerrors import (
    REFUSED_ENDING,
    TRIES_AGAIN,
    UNREACHABLE_HINT,
    FailureKind,
    connection_failure,
    plain_cause,
)
from preform_pipeline.store.pgurl import (
    check_url,
    hide_url,
    libpq_url,
    redact_url,
    store_password,
)
from preform_pipeline.store.sqlcore import Connection, Cursor

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CANCELLED_HINT",
    "DEAD_LINK_LIMITS",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_STALL_TIMEOUT_S",
    "PG_MIGRATIONS",
    "PG_SCHEMA_VERSION",
    "PgMigration",
    "PostgresJobStore",
    "REFUSED_ENDING",
    "TRIES_AGAIN",
    "UNREACHABLE_HINT",
    "cause_first",
]

log = get_logger(__name__)

#: Seconds to wait for the server when connecting; a store that cannot be reached says so.
DEFAULT_CONNECT_TIMEOUT_S: Final = 10
#: What helps when the server cancelled a statement of the store's.
CANCELLED_HINT: Final = (
    "the database cancelled the statement: a statement_timeout or lock_timeout set for the "
    "store's user or database, or an administrator; the store's writes wait for each "
    "other's, so a timeout shorter than the longest wait cancels them (raise or unset it for "
    f"this user); {TRIES_AGAIN}"
)
#: The first words of a failure's message, by its kind: what happened, before the cause.
_HEADS: Final = {
    FailureKind.AWAY: "cannot reach the PostgreSQL job store",
    FailureKind.OVERLOADED: "the PostgreSQL server has no connection free for the job store",
    FailureKind.REFUSED: "the PostgreSQL server refused the job store's login",
    FailureKind.MISCONFIGURED: "the job store's URL cannot work",
}
#: libpq's preamble before what failed, once per address tried: ``connection to server at
#: "HOST" (ADDR), port N failed: `` or ``connection to server on socket "PATH" failed: ``
#: (psycopg adds ``connection failed: `` or ``connection is bad: `` before it). In another
#: client language the preamble is other words: the text is then left as it is.
_LIBPQ_PREAMBLE: Final = re.compile(
    r'^(?:connection (?:failed|is bad): )?connection to server '
    r'(?:at "(?P<host>[^"]*)"(?P<addr> \([^)]*\))?, port (?P<port>\d+)'
    r'|on socket "(?P<socket>[^"]*)") failed: ')
#: psycopg's line per host when it tried several: ``- host: 'H', port: 'P', hostaddr: 'A': ``.
_ATTEMPT: Final = re.compile(r"^- host: '[^']*', port: '[^']*'(?:, hostaddr: '[^']*')?: ")
#: libpq's severity is followed by two spaces (``FATAL:  password ...``).
_SEVERITY: Final = re.compile(r"^(\w+):  ")
#: A session that sits inside a transaction this long (a node frozen mid-write: a paused VM, a
#: SIGSTOP) is ended by the server, so its locks (the writers' lock included) cannot hold the
#: whole farm up. Transactions here last milliseconds.
DEFAULT_STALL_TIMEOUT_S: Final = 10.0
#: libpq's TCP limits, unless the store's URL gives its own. A link that dies without a word
#: (a host gone, a firewall dropping packets) otherwise holds a store call for as long as the
#: system retransmits (about 15 minutes on Linux) or, on a quiet connection, until its
#: two-hour keepalive: with these the call fails within about a minute, the node says the
#: store is away and reconnects, and a lease lost meanwhile is handed over as for any node.
DEAD_LINK_LIMITS: Final[Mapping[str, str]] = MappingProxyType({
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
})
#: Advisory lock keys (one 64-bit space per database): store writes, schema migrations.
_WRITE_LOCK: Final = 0x70_70_5354_0001
_MIGRATE_LOCK: Final = 0x70_70_5354_0002
_VERSION_TABLE: Final = "preform_schema"
_OWN_TABLES: Final = frozenset(
    {"builds", "jobs", "build_jobs", "transitions", "nodes", "inbox_claims", "notices",
     "web_api_requests", "web_api_holds", "printer_claims", _VERSION_TABLE}
)


@dataclass(frozen=True)
class PgMigration:
    """One schema step: a numbered SQL file of ``postgres_sql/``."""

    version: int
    name: str
    sql: str


def _load_migrations() -> tuple[PgMigration, ...]:
    folder = resources.files("preform_pipeline.store").joinpath("postgres_sql")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(PgMigration(int(number), rest.removesuffix(".sql"),
                                     entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"postgres_sql/ migrations are not numbered 1..n: {found}")
    return tuple(found)


#: Every schema step, oldest first. Never edit a released file: add the next number.
PG_MIGRATIONS: Final = _load_migrations()
#: The schema version this code writes; a database with a higher one is refused.
PG_SCHEMA_VERSION: Final = PG_MIGRATIONS[-1].version


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        # Not "store.url": the URL may come from --store or `store migrate --to` too (session
        # 41: a newcomer's `store migrate --to` was told of a store.url never written).
        raise StoreError(
            "a PostgreSQL job store (postgresql://...) needs psycopg, which is not installed",
            hint=install_extra_hint("postgresql"),
        ) from exc
    return psycopg


class _Connection:
    """A psycopg connection that reads the rules' ``?`` placeholders as ``%s`` (and tells
    ``on_statement`` each statement it sends)."""

    def __init__(
        self, raw: psycopg.Connection[Any], on_statement: Callable[[str], None] | None = None
    ) -> None:
        self.raw = raw
        self.on_statement = on_statement

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        # The rules' SQL holds no literal '?' or '%': placeholders are the only ones.
        statement = sql.replace("?", "%s")
        if self.on_statement is not None:
            self.on_statement(statement)
        cursor: Cursor = self.raw.execute(statement, tuple(parameters))
        return cursor


class PostgresJobStore(LeasingStore):
    """A :class:`~preform_pipeline.store.protocol.JobStore` in a PostgreSQL database.

    ``url`` is a libpq URL (``postgresql://user@host:5432/db``); the password comes from
    ``password``, else :func:`~preform_pipeline.store.pgurl.store_password`, else libpq's own
    sources. Opening connects and applies pending migrations; every failure is a StoreError
    naming the URL (without its password) and what to do. ``on_statement`` is called with each
    SQL statement the store sends (``BEGIN`` and ``COMMIT`` too): a seam to count a caller's
    queries.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        password: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
        on_statement: Callable[[str], None] | None = None,
        running: bool = False,
    ) -> None:
        super().__init__(clock=clock)
        self._aim(url, password, connect_timeout_s, stall_timeout_s, on_statement,
                  running=running)
        self._lock = threading.RLock()
        self._closed = False
        self._conn: _Connection | None = None
        with self._lock:
            self._conn = self._connect()
            try:
                self._migrate(self._conn)
            except BaseException:
                # The caller gets no store to close, and the error's traceback holds this
                # one: without this the refused session stayed open as long as the error.
                self._closed = True
                self._conn.raw.close()
                self._conn = None
                raise

    @classmethod
    def check(
        cls, url: str, *, password: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        """Raise the StoreError opening the store at ``url`` would raise, by the open's own
        rules, and nothing where that open would succeed, with nothing created, written or
        migrated (a dry run's look at the store its real run would open): the connection's
        refusals (no server answering, the login refused, no such database: classified as
        the open's are, store/pgerrors.py), a database holding other tables, and a schema
        newer than this version knows, read in a READ ONLY transaction. An empty or older
        store passes: the open would create or migrate it. Whether the URL's user may
        create tables there is not asked (only creating them would tell for sure)."""
        store = cls.__new__(cls)
        # A dry run is a command that exits: its hints do not speak of a service's retries.
        store._aim(url, password, connect_timeout_s, DEFAULT_STALL_TIMEOUT_S, None,
                   running=False)
        conn = store._connect()
        try:
            with store._errors("reading the schema version"):
                conn.execute("BEGIN READ ONLY")
                try:
                    version = store._found_version(conn)
                    if version is not None:
                        store._refuse_newer(version)
                finally:
                    store._rollback(conn)
        finally:
            conn.raw.close()

    # --- connecting and migrating ------------------------------------------------------------

    def _aim(
        self, url: str, password: str | None, connect_timeout_s: float,
        stall_timeout_s: float, on_statement: Callable[[str], None] | None, *,
        running: bool,
    ) -> None:
        """What a connection to ``url`` is made with (the open's and :meth:`check`'s), and
        how its errors are said."""
        #: Whether a running watch or serve holds the store (its errors' hints say that it
        #: keeps trying: PgFailure.hint_for), or a command that exits. Set here, not in
        #: __init__, because :meth:`check`'s store is made without it (session 48: the two
        #: branches met in a dry run's AttributeError).
        self.running = running
        self._on_statement = on_statement
        self.stall_timeout_s = stall_timeout_s
        self.url = libpq_url(url)
        self.location = redact_url(url)
        check_url(url)
        self.connect_timeout_s = connect_timeout_s
        self._password = password if password is not None else store_password()
        self._psycopg = _psycopg()

    def _connect(self) -> _Connection:
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.rows import dict_row

        with self._errors("connecting"):
            given = conninfo_to_dict(self.url)
            extra: dict[str, Any] = {
                key: value for key, value in DEAD_LINK_LIMITS.items() if key not in given
            }
            if self._password is not None:
                extra["password"] = self._password
            raw = self._psycopg.connect(
                self.url,
                autocommit=True,  # transactions are begun and ended explicitly
                row_factory=dict_row,
                connect_timeout=max(1, int(self.connect_timeout_s)),
                options="-c TimeZone=UTC -c idle_in_transaction_session_timeout="
                f"{max(1, int(self.stall_timeout_s * 1000))}",
                application_name="preform-pipeline",
                # A database made under a C locale is SQL_ASCII, whose default client
                # encoding makes psycopg send only ASCII and return text as bytes.
                client_encoding="UTF8",
                **extra,
            )
        return _Connection(raw, self._on_statement)

    def _migrate(self, conn: _Connection) -> None:
        with self._errors("migrating the schema"):
            conn.execute("BEGIN")
            try:
                conn.execute(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})")
                version = self._schema_version(conn)
                self._refuse_newer(version)
                applied = [m for m in PG_MIGRATIONS if m.version > version]
                for migration in applied:
                    conn.raw.execute(migration.sql)
                if applied:
                    conn.execute(f"UPDATE {_VERSION_TABLE} SET version = ?",
                                 (PG_SCHEMA_VERSION,))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        for migration in applied:
            log.info("store_migrated", store=self.location, version=migration.version,
                     description=migration.name)

    def _refuse_newer(self, version: int) -> None:
        if version > PG_SCHEMA_VERSION:
            raise StoreError(
                f"{self.location}: the job store has schema version {version}, newer "
                f"than the {PG_SCHEMA_VERSION} this preform-pipeline knows",
                hint="upgrade preform-pipeline on this node: a newer one migrated "
                "the shared store",
            )

    def _schema_version(self, conn: _Connection) -> int:
        """The store's schema version; an empty database is made a store of version 0."""
        version = self._found_version(conn)
        if version is not None:
            return version
        conn.execute(f"CREATE TABLE {_VERSION_TABLE} (version INTEGER NOT NULL)")
        conn.execute(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (0)")
        return 0

    def _found_version(self, conn: _Connection) -> int | None:
        """The store's schema version; None for an empty database. A database holding other
        tables is refused."""
        tables = {
            row["table_name"]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
        }
        if _VERSION_TABLE in tables:
            return int(conn.execute(f"SELECT version FROM {_VERSION_TABLE}").fetchone()["version"])
        if tables:
            raise StoreError(
                f"{self.location}: not a preform-pipeline job store (it has tables "
                f"{', '.join(sorted(tables))} but no schema version)",
                hint="give the job store a database (or schema) of its own",
            )
        return None

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn psycopg errors into StoreErrors that name the store and say what to do."""
        psycopg = self._psycopg
        try:
            yield
        except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
            # An OperationalError to the driver, but the server was reached: a timeout set
            # for the user or database (a lock_timeout's is 55P03, not 57014), or an
            # administrator, ended the statement.
            raise StoreError(
                f"{self.location}: the job store failed while {action}: {self._said(exc)}",
                hint=CANCELLED_HINT,
            ) from exc
        except psycopg.Error as exc:
            cause = plain_cause(cause_first(self._said(exc, whole=True)))
            failure = connection_failure(
                cause, exc.sqlstate, operational=isinstance(exc, psycopg.OperationalError))
            if failure is None:
                raise StoreError(
                    f"{self.location}: the job store failed while {action}: {self._said(exc)}",
                    hint="see docs/multi-node.md; the database log has the details",
                ) from exc
            raise StoreUnavailableError(
                f"{self.location}: {_HEADS[failure.kind]} while {action}: {cause}",
                hint=failure.hint_for(running=self.running), kind=failure.kind.value,
                waits=failure.waits,
            ) from exc

    def _said(self, exc: BaseException, *, whole: bool = False) -> str:
        """The driver's first line (``whole``: all of it, for :func:`cause_first`) without
        the URL's password: libpq quotes a URL it cannot parse whole (``in URI:
        "postgresql://u:secret@[::1/db"``) and a password's bad encoding (``invalid
        percent-encoded token: "secr%ZZet"``)."""
        text = (str(exc).strip() or type(exc).__name__) if whole else _first_line(exc)
        return hide_url(text, self.url)

    def _connection(self) -> _Connection:
        if self._closed:
            raise StoreError(f"{self.location}: the job store is closed")
        conn = self._conn
        if conn is None or conn.raw.closed or conn.raw.broken:
            if conn is not None:
                log.warning("store_reconnecting", store=self.location)
                conn.raw.close()
            self._conn = conn = self._connect()
        return conn

    def _rollback(self, conn: _Connection) -> None:
        if not conn.raw.closed and not conn.raw.broken:
            try:
                conn.raw.execute("ROLLBACK")
            except self._psycopg.Error:
                conn.raw.close()  # unusable: the next call connects again

    def _own_transaction(
        self, action: str, *, write: bool
    ) -> AbstractContextManager[_Connection]:
        if write:
            return self._begun(action, "BEGIN", f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
        return self._begun(action, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _claim_transaction(self, action: str) -> AbstractContextManager[Connection]:
        held = self._snapshot_connection()
        if held is not None:
            # A read of the nodes within a page's snapshot (hotfolder.whereabouts): its
            # transaction is READ ONLY, so a claim's write there fails, and says so.
            return self._in_snapshot(action, held)
        return self._begun(action, "BEGIN")

    @contextmanager
    def _begun(self, action: str, *opening: str) -> Iterator[_Connection]:
        """A transaction opened with ``opening``, committed on success, else rolled back."""
        with self._lock, self._errors(action):
            conn = self._connection()
            try:
                # The opening too: a lock wait cancelled (a statement_timeout) leaves the
                # transaction begun and aborted, and every later call on it would fail.
                for statement in opening:
                    conn.execute(statement)
                yield conn
            except BaseException:
                self._rollback(conn)
                raise
            conn.execute("COMMIT")

    def _stamp(self, moment: datetime) -> datetime:
        return moment

    def _insert_id(self, conn: Connection, sql: str, values: Sequence[Any]) -> int | None:
        row = conn.execute(f"{sql} ON CONFLICT (job_key) DO NOTHING RETURNING id",
                           values).fetchone()
        return None if row is None else int(row["id"])

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with self._errors("closing"):
                    conn.raw.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"PostgresJobStore({self.location!r}, {state})"


def cause_first(said: str) -> str:
    """libpq's ``said`` (the driver's whole message) with what failed first: ``connection
    failed: connection to server at "db1" (10.0.0.5), port 5432 failed: FATAL:  password
    authentication failed for user "u"`` becomes ``FATAL: password authentication failed for
    user "u" (server "db1" (10.0.0.5), port 5432)``. The preamble is a long, fixed text before
    the cause; a console line cut to its length kept the preamble and cut the cause.

    Each try has its line: psycopg's, one per host when it tried several (its first line is
    then only the last one's failure), and libpq's, one per way it tried a server (with SSL,
    then without). Each is said, joined by ``; ``, the last one tried first (what psycopg puts
    first, and what the console's cut keeps), then the ones before it. Text in another shape
    is its first line, unchanged."""
    lines = said.strip().splitlines()
    if not lines or _LIBPQ_PREAMBLE.match(lines[0]) is None:
        return lines[0] if lines else said
    listed = next((i for i, line in enumerate(lines) if _ATTEMPT.match(line)), None)
    if listed is not None:
        # psycopg puts its last try's whole message before the list of tries, and that try is
        # in the list too: read from the list on, or a last try of several lines (SSL, then
        # without) has its later lines said twice.
        lines = [_ATTEMPT.sub("", line, count=1) for line in lines[listed:]]
    tries = [line for line in lines if _LIBPQ_PREAMBLE.match(line)]
    return "; ".join(_one_cause_first(line) for line in reversed(tries))


def _one_cause_first(line: str) -> str:
    found = _LIBPQ_PREAMBLE.match(line)
    if found is None:
        return line
    cause = _SEVERITY.sub(r"\1: ", line[found.end():].strip(), count=1)
    if found["socket"] is not None:
        return f'{cause} (server socket "{found["socket"]}")'
    return f'{cause} (server "{found["host"]}"{found["addr"] or ""}, port {found["port"]})'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
