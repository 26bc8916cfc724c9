"""The job store's rules written once over SQL: shared by the SQLite and PostgreSQL stores.

:class:`SqlStoreCore` holds every rule of :class:`~preform_pipeline.store.protocol.JobStore`
(compare-and-set, the state tables of :mod:`preform_pipeline.store.model`, the audit trail,
job keys, the duplicates check of ``claim_job``) as SQL that both databases run alike. A
subclass supplies the plumbing: opening and migrating, transactions (each write transaction
excludes every other writer, so a compare-and-set is never overtaken between its read and its
write), how a time is stored, how a new row's id comes back, and how driver errors read.

Statements use ``?`` placeholders; the PostgreSQL connection translates them.
"""

from __future__ import annotations

import functools
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any, Concatenate, Final, ParamSpec, Protocol, TypeVar

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import (
    InvalidTransitionError,
    NotBatchableError,
    StoreConflictError,
    StoreError,
    StoreNotFoundError,
)
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.logging import get_logger
from preform_pipeline.store.keys import new_key, normalize_key
from preform_pipeline.store.model import (
    ALLOWED_TRANSITIONS,
    BUILD_ALLOWED_TRANSITIONS,
    BUILD_DRIVEN_STATES,
    INITIAL_STATES,
    INTERRUPTED_STATES,
    PRINT_PENDING_STATES,
    RETRYABLE_STATES,
    VERIFIED_STATES,
    Build,
    CaseKey,
    Job,
    JobState,
    Transition,
)
from preform_pipeline.store.protocol import (
    BUILD_FIELDS,
    BUILD_MIRRORED_FIELDS,
    JOB_FIELDS,
    StateFilter,
)

__all__ = ["BUILD_TEXT_COLUMNS", "HISTORIES_PER_STATEMENT", "JOB_TEXT_COLUMNS", "Connection",
           "Cursor", "Row", "SqlStoreCore", "iso_utc"]

log = get_logger(__name__)

#: New keys drawn before giving up on a (practically impossible) run of collisions.
_KEY_ATTEMPTS: Final = 5
#: Row ids are 64-bit in both databases: a larger id (typed into a dashboard URL, say) names
#: no row, and the drivers refuse to send it (OverflowError, DataError) rather than say so.
_MAX_ROW_ID: Final = 2**63 - 1

#: What a text search of the queue looks in: a job's case, file name and key; a build's key,
#: print name and printer (the dashboard's search box, docs/web.md).
JOB_TEXT_COLUMNS: Final = ("case_id", "original_name", "job_key")
BUILD_TEXT_COLUMNS: Final = ("job_key", "job_name", "printer")
#: Jobs whose trails one statement of ``histories`` reads (and digests one statement of
#: ``find_by_hashes`` asks for): SQLite before 3.32 takes at most 999 parameters in a
#: statement.
HISTORIES_PER_STATEMENT: Final = 900
#: The LIKE escape character, and what it escapes in a searched text.
_LIKE_ESCAPE: Final = "\\"
_LIKE_SPECIAL: Final = ("\\", "%", "_")

#: A result row: read by column name (``sqlite3.Row`` or a psycopg dict row).
Row = Any


class Cursor(Protocol):
    """What the rules read back from a statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Row: ...

    def fetchall(self) -> list[Row]: ...


class Connection(Protocol):
    """What the rules need of a connection inside a transaction."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


_Store = TypeVar("_Store", bound="SqlStoreCore")
_P = ParamSpec("_P")
_Read = TypeVar("_Read")
_UNREADABLE_ROW_HINT: Final = (
    "changed outside preform-pipeline, by a newer one (run that) or damaged; the row is "
    "kept as it was: set that column right by hand (docs/jobs.md)"
)


# --- value conversion ------------------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    # Fixed width, UTC, microseconds: text order is time order, so `since` is a string compare.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _aware(value: str | datetime) -> datetime:
    """A stored time (ISO text from SQLite, a datetime from PostgreSQL) as an aware datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _holder_ended(holder: str) -> bool:
    """True when a printer claim's holder certainly died: a holder names its process first
    (``host:pid:start:instance[:ticks]:tag``,
    :class:`~preform_pipeline.verify.tracking.PrinterClaims`),
    and that process ran on this host, in this instance (boot and pid namespace), and runs no
    more (one rule: liveness.py). A holder on another host or in another instance (another
    container of the same host name), or one that names no process (a holder of an earlier
    version, ``host:pid:start:tag``), is left to its lease."""
    process = ProcessIdentity.from_tagged(holder)
    return process is not None and process.has_ended()


def _dt(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _required_dt(value: str | datetime) -> datetime:
    moment = _dt(value)
    assert moment is not None
    return moment


def _json(value: str | Mapping[str, Any] | None) -> Any:
    # SQLite hands back the text; PostgreSQL's jsonb comes back already parsed.
    return json.loads(value) if isinstance(value, str) else value

def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):  # YAML sidecars give dates for 2024-05-01
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not storable")


def _fields_json(fields: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(fields), default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"job fields cannot be stored: {exc}",
            hint="sidecar fields must be text, numbers, booleans, dates, lists or mappings",
        ) from exc


def _states(value: StateFilter) -> tuple[JobState, ...]:
    if isinstance(value, JobState):
        return (value,)
    if isinstance(value, str):
        return (JobState(value),)
    return tuple(JobState(v) for v in value)


def _contains(text: str) -> str:
    """The LIKE pattern of "holds ``text``", in lower case (the columns are compared lowered),
    with LIKE's own characters escaped so that a typed ``%`` or ``_`` matches only itself."""
    needle = text.lower()
    for special in _LIKE_SPECIAL:
        needle = needle.replace(special, _LIKE_ESCAPE + special)
    return f"%{needle}%"


def _check_fields(
    allowed: Mapping[str, tuple[type, ...]], fields: Mapping[str, Any], what: str
) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, value in fields.items():
        types = allowed.get(name)
        if types is None:
            known = ", ".join(sorted(allowed))
            raise TypeError(f"{what} has no settable field {name!r}; settable: {known}")
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise TypeError(f"{what} field {name!r} takes {expected}, got {value!r}")
        if isinstance(value, PurePath):
            value = str(value)
        elif isinstance(value, Mapping):
            value = _fields_json(value)
        columns[name] = value
    return columns


class _Taken:
    """A row that keeps the name of the column read from it last."""

    __slots__ = ("column", "row")

    def __init__(self, row: Row) -> None:
        self.row = row
        self.column: str | None = None

    def __getitem__(self, column: str) -> Any:
        self.column = column
        return self.row[column]


def _readable(
    what: str,
) -> Callable[[Callable[Concatenate[Row, _P], _Read]], Callable[Concatenate[Row, _P], _Read]]:
    """A row reader whose row it cannot read (a state this code does not know, a time or
    JSON that does not parse) raises a StoreError naming the row: the row was written by
    something else, and every command that met it (``jobs list`` too) ended in a crash."""

    def wrap(
        read: Callable[Concatenate[Row, _P], _Read],
    ) -> Callable[Concatenate[Row, _P], _Read]:
        @functools.wraps(read)
        def reading(row: Row, /, *args: _P.args, **kwargs: _P.kwargs) -> _Read:
            # SQLite keeps bytes in a text column too: read as text, they failed far later,
            # wherever the value was first shown. keys(): a sqlite3.Row iterates its values.
            blob = next((k for k in row.keys() if isinstance(row[k], bytes)), None)  # noqa: SIM118
            if blob is not None:
                raise StoreError(f"{what} {row['id']} in the job store cannot be read: its "
                                 f"{blob} holds bytes, not text", hint=_UNREADABLE_ROW_HINT)
            # A reader converts each value as it takes it: the column taken last is the one
            # that failed, which the person mending the row must be told (review rv45-fuzz).
            taken = _Taken(row)
            try:
                return read(taken, *args, **kwargs)
            except (ValueError, TypeError) as exc:
                raise StoreError(f"{what} {row['id']} in the job store cannot be read: its "
                                 f"{taken.column}: {exc}", hint=_UNREADABLE_ROW_HINT) from exc

        return reading

    return wrap


@_readable("job")
def _job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        job_key=row["job_key"],
        recipe=row["recipe"],
        source_path=Path(row["source_path"]),
        original_name=row["original_name"],
        state=JobState(row["state"]),
        created_at=_required_dt(row["created_at"]),
        updated_at=_required_dt(row["updated_at"]),
        content_hash=row["content_hash"],
        case_id=row["case_id"],
        priority=row["priority"],
        fields=_json(row["fields"]),
        build_id=row["build_id"],
        reason=row["reason"],
        attempts=row["attempts"],
        print_job_id=row["print_job_id"],
        printer=row["printer"],
        verified_status=row["verified_status"],
        verified_message=row["verified_message"],
        verified_at=_dt(row["verified_at"]),
    )


@_readable("build")
def _build_from_row(row: Row, job_ids: Sequence[int]) -> Build:
    return Build(
        id=row["id"],
        job_key=row["job_key"],
        recipe=row["recipe"],
        state=JobState(row["state"]),
        created_at=_required_dt(row["created_at"]),
        updated_at=_required_dt(row["updated_at"]),
        job_ids=tuple(job_ids),
        server=row["server"],
        form_path=Path(row["form_path"]) if row["form_path"] is not None else None,
        print_job_id=row["print_job_id"],
        printer=row["printer"],
        job_name=row["job_name"],
        verified_status=row["verified_status"],
        verified_message=row["verified_message"],
        reason=row["reason"],
        print_sent_at=_dt(row["print_sent_at"]),
        verified_at=_dt(row["verified_at"]),
        send_holder=_json(row["send_holder"]) or None,
        print_target=_json(row["print_target"]) or None,
        waiting_since=_dt(row["waiting_since"]),
        priority=row["priority"],
        wait_notified_at=_dt(row["wait_notified_at"]),
        approval=_json(row["approval"]) or None,
        full_disk=Path(row["full_disk"]) if row["full_disk"] is not None else None,
    )


@_readable("transition")
def _transition_from_row(row: Row) -> Transition:
    return Transition(
        id=row["id"],
        job_id=row["job_id"],
        build_id=row["build_id"],
        from_state=JobState(row["from_state"]) if row["from_state"] is not None else None,
        to_state=JobState(row["to_state"]),
        at=_required_dt(row["at"]),
        reason=row["reason"],
    )


def _rows_in_parts(
    conn: Connection, table: str, where: str, params: Sequence[Any], column: str,
    values: Sequence[Any], *, order: str = "",
) -> list[Row]:
    """The rows of ``table`` matching ``where`` (``_where``'s clause and ``params``, or none)
    whose ``column`` is any of ``values``: one statement for up to
    :data:`HISTORIES_PER_STATEMENT` values, a longer list read in parts, below the databases'
    limit on parameters (``histories``, ``find_by_hashes``). ``order`` orders each part."""
    rows: list[Row] = []
    for start in range(0, len(values), HISTORIES_PER_STATEMENT):
        part = values[start:start + HISTORIES_PER_STATEMENT]
        matches = f"{column} IN ({', '.join('?' for _ in part)})"
        sql = (f"SELECT * FROM {table}{where} AND {matches}{order}" if where
               else f"SELECT * FROM {table} WHERE {matches}{order}")
        rows.extend(conn.execute(sql, [*params, *part]).fetchall())
    return rows


def _allowed_hint(table: Mapping[JobState, frozenset[JobState]], state: JobState) -> str:
    targets = sorted(s.value for s in table[state])
    if not targets:
        return f"{state} is final: nothing leaves it"
    return f"from {state} it may go to: {', '.join(targets)}"




# --- the rules -------------------------------------------------------------------------------


class SqlStoreCore(ABC):
    """The JobStore rules; a subclass opens the database and runs the transactions."""

    #: Where the store is, for messages (a file path, or a URL without its password).
    location: str
    #: True for a store on this machine's own disk (SQLite; docs/jobs.md: keep it on a local
    #: disk), which only this machine's processes write: a process it names of this host name
    #: and another boot can only be this machine's before it restarted. PostgreSQL's store is
    #: shared by machines, which may share a host name.
    kept_on_this_machine: bool = False

    def __init__(self, *, clock: Clock | None) -> None:
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        #: ``conn``: the read transaction of this thread's :meth:`snapshot`, while one is open.
        self._held = threading.local()

    # --- what a database supplies ------------------------------------------------------------

    @abstractmethod
    def _own_transaction(
        self, action: str, *, write: bool
    ) -> AbstractContextManager[Connection]:
        """A transaction; a write one excludes other writers from its first statement on; a
        read one sees one state of the store across its statements."""

    @abstractmethod
    def _errors(self, action: str) -> AbstractContextManager[None]:
        """The database's errors as StoreErrors that name the store, ``action`` and a fix."""

    @abstractmethod
    def _stamp(self, moment: datetime) -> Any:
        """How a (timezone-aware) time is passed to the database."""

    @abstractmethod
    def _insert_id(self, conn: Connection, sql: str, values: Sequence[Any]) -> int | None:
        """Run an INSERT into a table with a unique ``job_key``: the new row's id, or None
        when the key was taken (and nothing was written)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; further calls raise StoreError. Closing twice is fine."""

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """See :meth:`JobStore.snapshot`: this thread's reads inside the block are one read
        transaction (the store's own read one: SQLite's BEGIN in WAL mode, PostgreSQL's
        REPEATABLE READ READ ONLY). Nested, the outer one's."""
        if self._snapshot_connection() is not None:
            yield
            return
        with self._own_transaction("reading one state of the store", write=False) as conn:
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None

    def _snapshot_connection(self) -> Connection | None:
        conn: Connection | None = getattr(self._held, "conn", None)
        return conn

    def _transaction(self, action: str, *, write: bool) -> AbstractContextManager[Connection]:
        """A transaction of its own, or, inside this thread's :meth:`snapshot`, its reads."""
        held = self._snapshot_connection()
        if held is None:
            return self._own_transaction(action, write=write)
        if write:
            raise StoreError(
                f"{self.location}: {action} was asked inside a read of one state of the store",
                hint="a fault in preform-pipeline: a snapshot only reads (please report it)",
            )
        return self._in_snapshot(action, held)

    @contextmanager
    def _in_snapshot(self, action: str, held: Connection) -> Iterator[Connection]:
        with self._errors(action):
            yield held

    def _now(self) -> Any:
        return self._stamp(self._moment())

    def _shared_now(self, conn: Connection) -> datetime:
        """The clock that every process using this store goes by, for what expires by time
        between processes (printer claims): on SQLite this machine's, the only one its
        processes have; PostgreSQL's store answers the database's (nodes' clocks differ)."""
        return self._moment()

    def _moment(self) -> datetime:
        moment = self._clock.now()
        if moment.tzinfo is None:
            raise StoreError("the store's clock returned a time without a time zone")
        return moment

    @staticmethod
    def _update(
        conn: Connection, table: str, row_id: int, values: Mapping[str, Any]
    ) -> None:
        # Column names come from the fixed allow-lists, never from callers' text.
        assignments = ", ".join(f"{column} = ?" for column in values)
        conn.execute(
            f"UPDATE {table} SET {assignments} WHERE id = ?", (*values.values(), row_id)
        )

    @staticmethod
    def _audit(
        conn: Connection,
        *,
        job_id: int | None,
        build_id: int | None,
        from_state: JobState | None,
        to_state: JobState,
        at: Any,
        reason: str,
    ) -> None:
        conn.execute(
            "INSERT INTO transitions (job_id, build_id, from_state, to_state, at, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, build_id, from_state.value if from_state else None, to_state.value, at,
             reason),
        )

    def _job_row(self, conn: Connection, job_id: int) -> Row:
        row: Row | None = None if abs(job_id) > _MAX_ROW_ID else conn.execute(
            "SELECT * FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise StoreNotFoundError(f"no job {job_id}", location=self.location,
                                     hint="`preform-pipeline jobs` lists the jobs")
        return row

    def _build_row(self, conn: Connection, build_id: int) -> Row:
        row: Row | None = None if abs(build_id) > _MAX_ROW_ID else conn.execute(
            "SELECT * FROM builds WHERE id = ?", (build_id,)
        ).fetchone()
        if row is None:
            raise StoreNotFoundError(f"no build {build_id}", location=self.location)
        return row

    def _build(self, conn: Connection, row: Row) -> Build:
        job_ids = [
            r["job_id"]
            for r in conn.execute(
                "SELECT job_id FROM build_jobs WHERE build_id = ? ORDER BY position", (row["id"],)
            ).fetchall()
        ]
        return _build_from_row(row, job_ids)

    @staticmethod
    def _check_expect(what: str, current: JobState, expect: StateFilter | None) -> None:
        if expect is None:
            return
        expected = _states(expect)
        if current not in expected:
            raise StoreConflictError(what, [s.value for s in expected], current.value)

    def _insert_with_key(
        self, conn: Connection, sql: str, values: Sequence[Any]
    ) -> tuple[int, str]:
        """Insert a row whose first parameter is a new key; returns (row id, key)."""
        for _ in range(_KEY_ATTEMPTS):
            key = new_key()
            row_id = self._insert_id(conn, sql, (key, *values))
            if row_id is not None:
                return row_id, key
        raise StoreError(f"{self.location}: could not draw an unused job key")

    # --- jobs --------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        recipe: str,
        source_path: Path | str,
        original_name: str | None = None,
        content_hash: str | None = None,
        case_id: str | None = None,
        priority: int = 0,
        fields: Mapping[str, Any] | None = None,
        state: JobState = JobState.DISCOVERED,
        reason: str = "created",
    ) -> Job:
        state = JobState(state)
        if state not in INITIAL_STATES:
            raise InvalidTransitionError(
                "new job", "(new)", state.value,
                hint=f"jobs start as one of {', '.join(sorted(s.value for s in INITIAL_STATES))}",
            )
        path = Path(source_path)
        name = original_name if original_name is not None else path.name
        fields_text = _fields_json(fields or {})
        with self._transaction("creating a job", write=True) as conn:
            job = self._insert_job(conn, (recipe, str(path), name, content_hash, case_id,
                                          priority, fields_text), state, reason)
        log.info("job_created", job_id=job.id, job_key=job.job_key, recipe=recipe,
                 state=state.value, source_path=str(path))
        return job

    def _insert_job(
        self, conn: Connection, values: tuple[Any, ...], state: JobState, reason: str
    ) -> Job:
        """Insert a job (``values``: recipe, source path, original name, content hash, case,
        priority, fields JSON) with its first audit row, inside the caller's transaction."""
        now = self._now()
        job_id, _ = self._insert_with_key(
            conn,
            "INSERT INTO jobs (job_key, recipe, source_path, original_name, content_hash, "
            "case_id, priority, fields, state, reason, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, state.value, reason, now, now),
        )
        self._audit(conn, job_id=job_id, build_id=None, from_state=None, to_state=state,
                    at=now, reason=reason)
        return _job_from_row(self._job_row(conn, job_id))

    def claim_job(
        self,
        *,
        recipe: str,
        source_path: Path | str,
        content_hash: str,
        taken: Collection[JobState],
        reason: str = "claimed",
        fields: Mapping[str, Any] | None = None,
    ) -> tuple[Job | None, Job | None]:
        """Create a PROCESSING job for ``content_hash`` unless a job of ``recipe`` with that
        content is in one of the ``taken`` states: (new job, None) or (None, that job).

        Look and create happen in one write transaction, so two processes that claim the same
        content at once never both get it.
        """
        path = Path(source_path)
        fields_text = _fields_json(fields or {})
        states = sorted(JobState(s).value for s in taken)
        with self._transaction("claiming a job", write=True) as conn:
            marks = ", ".join("?" for _ in states)
            row = conn.execute(
                f"SELECT * FROM jobs WHERE content_hash = ? AND recipe = ? AND state IN ({marks}) "
                "ORDER BY id DESC LIMIT 1",
                (content_hash, recipe, *states),
            ).fetchone() if states else None
            if row is not None:
                return None, _job_from_row(row)
            job = self._insert_job(conn, (recipe, str(path), path.name, content_hash, None, 0,
                                          fields_text), JobState.PROCESSING, reason)
        log.info("job_claimed", job_id=job.id, job_key=job.job_key, recipe=recipe,
                 source_path=str(path))
        return job, None

    def get_job(self, job_id: int) -> Job:
        with self._transaction(f"reading job {job_id}", write=False) as conn:
            return _job_from_row(self._job_row(conn, job_id))

    def get_jobs(self, job_ids: Collection[int]) -> tuple[Job, ...]:
        # Ids past a column's range are no job (``_job_row``'s rule), not a driver error.
        wanted = sorted({i for i in job_ids if abs(i) <= _MAX_ROW_ID})
        if not wanted:
            return ()
        with self._transaction("reading jobs", write=False) as conn:
            rows = _rows_in_parts(conn, "jobs", "", [], "id", wanted)
            found = [_job_from_row(r) for r in rows]
        return tuple(sorted(found, key=lambda job: job.id))

    def find_by_key(self, job_key: str) -> Job | None:
        key = normalize_key(job_key)
        if key is None:
            return None
        with self._transaction("looking up a job key", write=False) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE job_key = ?", (key,)).fetchone()
            return _job_from_row(row) if row is not None else None

    def find_by_hash(self, content_hash: str, *, recipe: str | None = None) -> tuple[Job, ...]:
        sql = "SELECT * FROM jobs WHERE content_hash = ?"
        params: list[Any] = [content_hash]
        if recipe is not None:
            sql += " AND recipe = ?"
            params.append(recipe)
        with self._transaction("looking up a content hash", write=False) as conn:
            rows = conn.execute(sql + " ORDER BY id DESC", params).fetchall()
            return tuple(_job_from_row(r) for r in rows)

    def find_by_hashes(
        self, content_hashes: Collection[str], *, state: StateFilter | None = None
    ) -> tuple[Job, ...]:
        return self._find_in("content_hash", content_hashes, state, "looking up content hashes")

    def find_by_cases(
        self, case_ids: Collection[str], *, state: StateFilter | None = None
    ) -> tuple[Job, ...]:
        return self._find_in("case_id", case_ids, state, "looking up cases")

    def _find_in(
        self, column: str, values: Collection[str], state: StateFilter | None, what: str
    ) -> tuple[Job, ...]:
        """Every job (in ``state``) whose ``column`` is one of ``values``, by id."""
        wanted = sorted(set(values))
        if not wanted:
            return ()
        where, params = self._where(state=state, recipe=None, since=None)
        with self._transaction(what, write=False) as conn:
            rows = _rows_in_parts(conn, "jobs", where, params, column, wanted)
            found = [_job_from_row(r) for r in rows]
        # Each part's rows come in the order its index gives them: sorted once, here.
        return tuple(sorted(found, key=lambda job: job.id))

    def find_by_path(self, source_path: Path | str) -> Job | None:
        with self._transaction("looking up a path", write=False) as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE source_path = ? ORDER BY id DESC LIMIT 1",
                (str(Path(source_path)),),
            ).fetchone()
            return _job_from_row(row) if row is not None else None

    def _where(
        self,
        *,
        state: StateFilter | None,
        recipe: str | None,
        since: datetime | None,
        extra: Mapping[str, Any] | None = None,
        text: str | None = None,
        text_columns: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if text:
            # Any of the columns holds the text, in any case; a ``%`` or ``_`` typed in a
            # search is that character, not a LIKE wildcard.
            like = f"LIKE ? ESCAPE '{_LIKE_ESCAPE}'"
            clauses.append("(" + " OR ".join(
                f"lower(coalesce({c}, '')) {like}" for c in text_columns) + ")")
            params.extend([_contains(text)] * len(text_columns))
        if state is not None:
            states = _states(state)
            clauses.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        if recipe is not None:
            clauses.append("recipe = ?")
            params.append(recipe)
        if since is not None:
            if since.tzinfo is None:
                raise ValueError("since must be timezone-aware")
            clauses.append("updated_at >= ?")
            params.append(self._stamp(since))
        for column, value in (extra or {}).items():
            clauses.append(f"{column} = ?")
            params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    @staticmethod
    def _check_limit(limit: int | None, offset: int) -> None:
        if limit is None:
            if offset:
                raise ValueError(f"an offset ({offset}) needs a limit: a page has a size")
            return
        if limit < 1:
            raise ValueError(f"limit must be 1 or more (or None for all), got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be 0 or more, got {offset}")

    @staticmethod
    def _limited(table: str, where: str, limit: int | None, offset: int) -> str:
        SqlStoreCore._check_limit(limit, offset)
        if limit is None:
            return f"SELECT * FROM {table}{where} ORDER BY id"
        # The most recent N after skipping the newest ``offset`` (a page further back), handed
        # back in creation order. The database pages, so a page reads only its own rows.
        return (
            f"SELECT * FROM (SELECT * FROM {table}{where} ORDER BY id DESC LIMIT {int(limit)} "
            f"OFFSET {int(offset)}) AS recent ORDER BY id"
        )

    def list_jobs(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        since: datetime | None = None,
        build_id: int | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[Job, ...]:
        extra = {"build_id": build_id} if build_id is not None else None
        where, params = self._where(state=state, recipe=recipe, since=since, extra=extra,
                                    text=text, text_columns=JOB_TEXT_COLUMNS)
        with self._transaction("listing jobs", write=False) as conn:
            rows = conn.execute(self._limited("jobs", where, limit, offset), params).fetchall()
            return tuple(_job_from_row(r) for r in rows)

    def list_case_jobs(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        text: str | None = None,
        limit: int,
        offset: int = 0,
    ) -> tuple[Job, ...]:
        where, params = self._where(state=state, recipe=recipe, since=None, text=text,
                                    text_columns=JOB_TEXT_COLUMNS)
        self._check_limit(limit, offset)
        # A case is its case id, or the job's own key without one; the page holds the cases
        # whose newest kept job is newest, each with every one of its kept jobs.
        sql = (
            f"SELECT * FROM jobs{where}{' AND' if where else ' WHERE'} "
            f"coalesce(case_id, job_key) IN (SELECT ckey FROM ("
            f"SELECT coalesce(case_id, job_key) AS ckey, max(id) AS newest FROM jobs{where} "
            f"GROUP BY coalesce(case_id, job_key) ORDER BY newest DESC LIMIT {int(limit)} "
            f"OFFSET {int(offset)}) AS page) ORDER BY id"
        )
        with self._transaction("listing the jobs of a page of cases", write=False) as conn:
            rows = conn.execute(sql, [*params, *params]).fetchall()
            return tuple(_job_from_row(r) for r in rows)

    def list_history_cases(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        text: str | None = None,
        limit: int,
        offset: int = 0,
        older_than: CaseKey | None = None,
        newer_than: CaseKey | None = None,
    ) -> tuple[Job, ...]:
        self._check_limit(limit, offset)
        if older_than is not None and newer_than is not None:
            raise ValueError("a page of history starts after one key: older_than or "
                             "newer_than, not both")
        # A case is its case id (or a job's own key without one); a skipped duplicate is a
        # case of its own beside it.
        ckey = "coalesce(case_id, job_key)"
        # The state written in, not a parameter: PostgreSQL groups by an expression only when
        # the select list's is the same text, and two parameters are two expressions to it.
        copy = f"CASE WHEN state = '{JobState.DUPLICATE_SKIPPED.value}' THEN job_key ELSE '' END"
        where, params = self._where(state=None, recipe=recipe, since=None)
        kept: list[str] = []
        kept_params: list[Any] = []
        if state is not None:
            # Any one of its jobs in one of the states: what state the case is in is the
            # History page's rule (web/views._placed, superseded failures and all), not SQL's.
            states = _states(state)
            kept.append(f"max(CASE WHEN state IN ({', '.join('?' for _ in states)}) "
                        "THEN 1 ELSE 0 END) = 1")
            kept_params += [s.value for s in states]
        if text:
            # The case's name, or any one of its files, holds the text (any case; a typed
            # ``%`` or ``_`` is that character).
            like = f"LIKE ? ESCAPE '{_LIKE_ESCAPE}'"
            kept.append(f"(lower({ckey}) {like} OR max(CASE WHEN lower(coalesce("
                        f"original_name, '')) {like} THEN 1 ELSE 0 END) = 1)")
            kept_params += [_contains(text)] * 2
        key = older_than or newer_than
        if key is not None:
            # Keyset paging: the page starts after the case it follows, by (last change,
            # newest job id), so it reads only its own cases however deep it is, and a case
            # that changed meanwhile is not counted into its offset.
            than = "<" if older_than is not None else ">"
            kept.append(f"(max(updated_at) {than} ? OR "
                        f"(max(updated_at) = ? AND max(id) {than} ?))")
            kept_params += [self._stamp(key.changed), self._stamp(key.changed), key.newest_id]
        order = "ASC" if newer_than is not None else "DESC"  # the nearest cases first
        having = f" HAVING {' AND '.join(kept)}" if kept else ""
        sql = (
            f"SELECT jobs.* FROM jobs JOIN (SELECT {ckey} AS ckey, {copy} AS ccopy FROM jobs"
            f"{where} GROUP BY {ckey}, {copy}{having} "
            f"ORDER BY max(updated_at) {order}, max(id) {order} LIMIT {int(limit)} "
            f"OFFSET {int(offset)}) AS page ON {ckey} = page.ckey AND {copy} = page.ccopy"
            f"{where.replace(' WHERE ', ' AND ', 1)} ORDER BY jobs.id"
        )
        values = [*params, *kept_params, *params]
        with self._transaction("listing the jobs of a page of history", write=False) as conn:
            rows = conn.execute(sql, values).fetchall()
            return tuple(_job_from_row(r) for r in rows)

    def transition(
        self,
        job_id: int,
        to_state: JobState,
        reason: str,
        *,
        expect: StateFilter | None = None,
        **fields: Any,
    ) -> Job:
        to_state = JobState(to_state)
        updates = _check_fields(JOB_FIELDS, fields, f"job {job_id}")
        what = f"job {job_id}"
        with self._transaction(f"moving job {job_id} to {to_state}", write=True) as conn:
            row = self._job_row(conn, job_id)
            current = JobState(row["state"])
            self._check_expect(what, current, expect)
            if not current.can_become(to_state):
                raise InvalidTransitionError(
                    what, current.value, to_state.value,
                    hint=_allowed_hint(ALLOWED_TRANSITIONS, current),
                )
            build_id: int | None = row["build_id"]
            if build_id is not None and to_state in BUILD_DRIVEN_STATES:
                raise InvalidTransitionError(
                    f"{what} (in build {build_id})", current.value, to_state.value,
                    hint=f"a batched job follows its build into {to_state}: move build "
                    f"{build_id} with transition_build",
                )
            now = self._now()
            values: dict[str, Any] = {}
            if to_state is JobState.QUEUED and current in RETRYABLE_STATES:
                # A retry starts over: a new build, a new print with a new key.
                values.update(build_id=None, print_job_id=None, printer=None,
                              verified_status=None, verified_message=None, verified_at=None)
            values.update(updates)
            values.update(state=to_state.value, reason=reason, updated_at=now)
            if to_state is JobState.PREPARING:
                values["attempts"] = row["attempts"] + 1
            if to_state in VERIFIED_STATES:
                values["verified_at"] = now
            self._update(conn, "jobs", job_id, values)
            self._audit(conn, job_id=job_id, build_id=None, from_state=current,
                        to_state=to_state, at=now, reason=reason)
            if to_state is JobState.CANCELLED and build_id is not None:
                self._prepare_again_without(conn, build_id, job_id, now)
            job = _job_from_row(self._job_row(conn, job_id))
        log.info("job_transition", job_id=job_id, job_key=job.job_key, from_state=current.value,
                 to_state=to_state.value, reason=reason)
        return job

    def _prepare_again_without(
        self, conn: Connection, build_id: int, job_id: int, now: Any
    ) -> None:
        """A job left a build whose scene already holds its model: prepare the build again.

        The daemon's next compare-and-set on the build (PREPARED or WAITING_FOR_PRINTER →
        PRINT_SENDING) then fails, so the cancelled model is never printed.
        """
        build = self._build_row(conn, build_id)
        state = JobState(build["state"])
        # A waiting (or held) build's .form holds the model too: never dispatch it as it is.
        if state not in (JobState.PREPARING, JobState.PREPARED, JobState.WAITING_FOR_PRINTER,
                         JobState.AWAITING_APPROVAL):
            return
        reason = f"job {job_id} was cancelled: prepare the build again without it"
        self._update(conn, "builds", build_id,
                     {"state": JobState.PROCESSING.value, "reason": reason, "updated_at": now})
        self._audit(conn, job_id=None, build_id=build_id, from_state=state,
                    to_state=JobState.PROCESSING, at=now, reason=reason)
        for row in conn.execute(
            "SELECT id FROM jobs WHERE build_id = ? AND state = ? ORDER BY id",
            (build_id, state.value),
        ).fetchall():
            member = row["id"]
            self._update(conn, "jobs", member, {"state": JobState.PROCESSING.value,
                                                "reason": reason, "updated_at": now})
            self._audit(conn, job_id=member, build_id=build_id, from_state=state,
                        to_state=JobState.PROCESSING, at=now, reason=reason)
        log.info("build_transition", build_id=build_id, from_state=state.value,
                 to_state=JobState.PROCESSING.value, reason=reason)

    def update_job(
        self, job_id: int, *, expect_source: Path | str | None = None,
        expect_fields: Mapping[str, Any] | None = None, **fields: Any
    ) -> Job:
        updates = _check_fields(JOB_FIELDS, fields, f"job {job_id}")
        with self._transaction(f"updating job {job_id}", write=True) as conn:
            row = self._job_row(conn, job_id)
            if expect_source is not None and row["source_path"] != str(expect_source):
                raise StoreConflictError(f"job {job_id}'s file", [str(expect_source)],
                                         str(row["source_path"]),
                                         hint="another process moved it first")
            if expect_fields is not None:
                now = _job_from_row(row).fields
                if now != expect_fields:
                    raise StoreConflictError(f"job {job_id}'s fields", ["as read before"],
                                             "changed", hint="another process changed them first")
            if updates:
                self._update(conn, "jobs", job_id, {**updates, "updated_at": self._now()})
            return _job_from_row(self._job_row(conn, job_id))

    def history(self, job_id: int) -> tuple[Transition, ...]:
        with self._transaction(f"reading the history of job {job_id}", write=False) as conn:
            self._job_row(conn, job_id)
            rows = conn.execute(
                "SELECT * FROM transitions WHERE job_id = ? ORDER BY id", (job_id,)
            ).fetchall()
            return tuple(_transition_from_row(r) for r in rows)

    def histories(self, job_ids: Collection[int]) -> dict[int, tuple[Transition, ...]]:
        wanted = sorted(set(job_ids))
        if not wanted:
            return {}
        trails: dict[int, list[Transition]] = {job_id: [] for job_id in wanted}
        with self._transaction("reading the history of a page of jobs", write=False) as conn:
            # One statement for a page's jobs (a page of History holds a few hundred at most).
            for row in _rows_in_parts(conn, "transitions", "", [], "job_id", wanted,
                                      order=" ORDER BY id"):
                trails[row["job_id"]].append(_transition_from_row(row))
        return {job_id: tuple(trail) for job_id, trail in trails.items()}

    def interrupted_jobs(self) -> tuple[Job, ...]:
        return self.list_jobs(state=INTERRUPTED_STATES)

    # --- builds ------------------------------------------------------------------------------

    def create_build(
        self,
        *,
        recipe: str,
        job_ids: Collection[int] = (),
        server: str | None = None,
        reason: str = "batched",
    ) -> Build:
        ids = list(job_ids)
        if len(set(ids)) != len(ids):
            raise StoreError(f"a build lists a job twice: {ids}")
        with self._transaction("creating a build", write=True) as conn:
            build = self._create_build_in(conn, recipe, ids, server, reason)
        log.info("build_created", build_id=build.id, job_key=build.job_key, recipe=recipe,
                 jobs=ids)
        return build

    def _create_build_in(
        self, conn: Connection, recipe: str, ids: Sequence[int], server: str | None, reason: str
    ) -> Build:
        """``create_build``'s writes, inside the caller's write transaction."""
        for job_id in ids:
            row = self._job_row(conn, job_id)
            if row["state"] != JobState.PROCESSING.value or row["build_id"] is not None:
                raise NotBatchableError(job_id, row["state"], row["build_id"])
        now = self._now()
        build_id, key = self._insert_with_key(
            conn,
            "INSERT INTO builds (job_key, recipe, state, server, reason, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (recipe, JobState.PROCESSING.value, server, reason, now, now),
        )
        self._audit(conn, job_id=None, build_id=build_id, from_state=None,
                    to_state=JobState.PROCESSING, at=now, reason=reason)
        note = f"{reason}: build {build_id} ({key})"
        for position, job_id in enumerate(ids):
            conn.execute(
                "INSERT INTO build_jobs (build_id, job_id, position) VALUES (?, ?, ?)",
                (build_id, job_id, position),
            )
            self._update(conn, "jobs", job_id,
                         {"build_id": build_id, "reason": note, "updated_at": now})
            self._audit(conn, job_id=job_id, build_id=build_id,
                        from_state=JobState.PROCESSING, to_state=JobState.PROCESSING,
                        at=now, reason=note)
        return self._build(conn, self._build_row(conn, build_id))

    def get_build(self, build_id: int) -> Build:
        with self._transaction(f"reading build {build_id}", write=False) as conn:
            return self._build(conn, self._build_row(conn, build_id))

    def find_build_by_key(self, job_key: str) -> Build | None:
        key = normalize_key(job_key)
        if key is None:
            return None
        with self._transaction("looking up a job key", write=False) as conn:
            row = conn.execute("SELECT * FROM builds WHERE job_key = ?", (key,)).fetchone()
            return self._build(conn, row) if row is not None else None

    def list_builds(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        since: datetime | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[Build, ...]:
        where, params = self._where(state=state, recipe=recipe, since=since, text=text,
                                    text_columns=BUILD_TEXT_COLUMNS)
        with self._transaction("listing builds", write=False) as conn:
            rows = conn.execute(self._limited("builds", where, limit, offset),
                                params).fetchall()
            return tuple(self._build(conn, r) for r in rows)

    def transition_build(
        self,
        build_id: int,
        to_state: JobState,
        reason: str,
        *,
        expect: StateFilter | None = None,
        **fields: Any,
    ) -> Build:
        return self._move_build(build_id, to_state, reason, expect, fields, guard=None)

    def _move_build(
        self,
        build_id: int,
        to_state: JobState,
        reason: str,
        expect: StateFilter | None,
        fields: Mapping[str, Any],
        *,
        guard: Callable[[Connection], None] | None,
    ) -> Build:
        """``transition_build``; ``guard`` runs first inside the same write transaction and
        raises to refuse the move (the PostgreSQL store's lease fence)."""
        to_state = JobState(to_state)
        updates = _check_fields(BUILD_FIELDS, fields, f"build {build_id}")
        what = f"build {build_id}"
        with self._transaction(f"moving build {build_id} to {to_state}", write=True) as conn:
            if guard is not None:
                guard(conn)
            row = self._build_row(conn, build_id)
            current = JobState(row["state"])
            self._check_expect(what, current, expect)
            if to_state not in BUILD_ALLOWED_TRANSITIONS.get(current, frozenset()):
                raise InvalidTransitionError(
                    what, current.value, to_state.value,
                    hint=_allowed_hint(BUILD_ALLOWED_TRANSITIONS, current),
                )
            now = self._now()
            values: dict[str, Any] = {**updates, "state": to_state.value, "reason": reason,
                                      "updated_at": now}
            if to_state is JobState.PRINT_SENDING:
                values["print_sent_at"] = now
            if to_state is JobState.WAITING_FOR_PRINTER:
                values["waiting_since"] = now
                values["wait_notified_at"] = None
            if to_state in VERIFIED_STATES:
                values["verified_at"] = now
            self._update(conn, "builds", build_id, values)
            self._audit(conn, job_id=None, build_id=build_id, from_state=current,
                        to_state=to_state, at=now, reason=reason)
            mirrored = {k: v for k, v in updates.items() if k in BUILD_MIRRORED_FIELDS}
            for member in conn.execute(
                "SELECT id, attempts FROM jobs WHERE build_id = ? AND state = ? ORDER BY id",
                (build_id, current.value),
            ).fetchall():
                job_values: dict[str, Any] = {**mirrored, "state": to_state.value,
                                              "reason": reason, "updated_at": now}
                if to_state is JobState.PREPARING:
                    job_values["attempts"] = member["attempts"] + 1
                if to_state in VERIFIED_STATES:
                    job_values["verified_at"] = now
                self._update(conn, "jobs", member["id"], job_values)
                self._audit(conn, job_id=member["id"], build_id=build_id, from_state=current,
                            to_state=to_state, at=now, reason=reason)
            build = self._build(conn, self._build_row(conn, build_id))
        log.info("build_transition", build_id=build_id, job_key=build.job_key,
                 from_state=current.value, to_state=to_state.value, reason=reason)
        return build

    def build_members(self, build_id: int) -> tuple[Job, ...]:
        with self._transaction(f"reading the jobs of build {build_id}", write=False) as conn:
            state = self._build_row(conn, build_id)["state"]
            rows = conn.execute(
                "SELECT jobs.* FROM build_jobs JOIN jobs ON jobs.id = build_jobs.job_id "
                "WHERE build_jobs.build_id = ? AND jobs.build_id = ? AND jobs.state = ? "
                "ORDER BY build_jobs.position",
                (build_id, build_id, state),
            ).fetchall()
            return tuple(_job_from_row(r) for r in rows)

    def update_build(self, build_id: int, **fields: Any) -> Build:
        return self._update_build(build_id, fields, guard=None)

    def _update_build(
        self, build_id: int, fields: Mapping[str, Any], *,
        guard: Callable[[Connection], None] | None,
    ) -> Build:
        """``update_build``; ``guard`` as for :meth:`_move_build`."""
        updates = _check_fields(BUILD_FIELDS, fields, f"build {build_id}")
        with self._transaction(f"updating build {build_id}", write=True) as conn:
            if guard is not None:
                guard(conn)
            self._build_row(conn, build_id)
            if updates:
                self._update(conn, "builds", build_id, {**updates, "updated_at": self._now()})
            return self._build(conn, self._build_row(conn, build_id))

    def build_history(self, build_id: int) -> tuple[Transition, ...]:
        with self._transaction(f"reading the history of build {build_id}", write=False) as conn:
            self._build_row(conn, build_id)
            rows = conn.execute(
                "SELECT * FROM transitions WHERE build_id = ? AND job_id IS NULL ORDER BY id",
                (build_id,),
            ).fetchall()
            return tuple(_transition_from_row(r) for r in rows)

    def pending_prints(self) -> tuple[Build, ...]:
        states = sorted(s.value for s in PRINT_PENDING_STATES)
        with self._transaction("listing pending prints", write=False) as conn:
            rows = conn.execute(
                f"SELECT * FROM builds WHERE state IN ({', '.join('?' for _ in states)}) "
                # NULLs first in both databases (they differ on the default).
                "ORDER BY print_sent_at IS NOT NULL, print_sent_at, id",
                states,
            ).fetchall()
            return tuple(self._build(conn, r) for r in rows)

    def interrupted_builds(self) -> tuple[Build, ...]:
        return self.list_builds(state=INTERRUPTED_STATES)

    # --- notices -----------------------------------------------------------------------------

    def note_notice(self, key: str, about: str) -> bool:
        # Looked up and written in one write transaction: two processes (cron runs, farm
        # nodes) that meet the same thing at once say it once between them.
        with self._transaction("recording a notice", write=True) as conn:
            row = conn.execute("SELECT about FROM notices WHERE key = ?", (key,)).fetchone()
            if row is not None and row["about"] == about:
                return False
            if row is None:
                conn.execute("INSERT INTO notices (key, about, said_at) VALUES (?, ?, ?)",
                             (key, about, self._now()))
            else:
                conn.execute("UPDATE notices SET about = ?, said_at = ? WHERE key = ?",
                             (about, self._now(), key))
        return True

    def notice_about(self, key: str) -> str | None:
        with self._transaction("reading a notice", write=False) as conn:
            row = conn.execute("SELECT about FROM notices WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["about"])

    def notice_keys(self, prefix: str) -> tuple[str, ...]:
        # substr, not LIKE: a path's own "%" and "_" would be wildcards.
        with self._transaction("reading the notices", write=False) as conn:
            rows = conn.execute(
                "SELECT key FROM notices WHERE substr(key, 1, CAST(? AS INTEGER)) = ? ORDER BY key",
                (len(prefix), prefix),
            ).fetchall()
        return tuple(row["key"] for row in rows)

    def forget_notices(self, keys: Collection[str]) -> int:
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        with self._transaction("forgetting notices", write=True) as conn:
            return sum(
                conn.execute("DELETE FROM notices WHERE key = ?", (key,)).rowcount
                for key in wanted
            )

    def keep_notices(self, keys: Collection[str]) -> int:
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        now = self._now()
        with self._transaction("keeping notices", write=True) as conn:
            return sum(
                conn.execute("UPDATE notices SET said_at = ? WHERE key = ?", (now, key)).rowcount
                for key in wanted
            )

    def forget_old_notices(self, prefix: str, *, older_than_s: float) -> tuple[str, ...]:
        cutoff = self._stamp(self._moment() - timedelta(seconds=older_than_s))
        with self._transaction("forgetting old notices", write=True) as conn:
            rows = conn.execute(
                "SELECT key FROM notices WHERE substr(key, 1, CAST(? AS INTEGER)) = ? "
                "AND said_at < ? ORDER BY key",
                (len(prefix), prefix, cutoff),
            ).fetchall()
            keys = tuple(row["key"] for row in rows)
            for key in keys:
                conn.execute("DELETE FROM notices WHERE key = ?", (key,))
        return keys

    # --- the Web API budget ------------------------------------------------------------------

    def spend_web_request(
        self, account: str, *, limit: int, now: datetime, window_s: float
    ) -> tuple[float, str, int]:
        # Counted and recorded in one write transaction: two processes (cron runs, farm nodes)
        # asking at once cannot both take the last request of the hour. ``now`` is the caller's
        # clock (the limiter's), not the store's: the budget has one clock. The count goes back
        # with the answer, so the limiter's low-budget check costs no second round trip.
        with self._transaction("spending a Web API request", write=True) as conn:
            # Every account's requests older than the window: nothing reads them again.
            conn.execute("DELETE FROM web_api_requests WHERE sent_at <= ?",
                         (self._stamp(now - timedelta(seconds=window_s)),))
            spent = int(conn.execute(
                "SELECT count(*) AS n FROM web_api_requests WHERE account = ?", (account,)
            ).fetchone()["n"])
            hold = conn.execute("SELECT until FROM web_api_holds WHERE account = ?",
                                (account,)).fetchone()
            if hold is not None:
                wait = (_aware(hold["until"]) - now).total_seconds()
                if wait > 0:
                    return wait, "retry_after", spent
            if spent >= limit:
                # The request that must leave the window before one more may be sent.
                row = conn.execute(
                    "SELECT sent_at FROM web_api_requests WHERE account = ? "
                    "ORDER BY sent_at LIMIT 1 OFFSET ?", (account, spent - limit)
                ).fetchone()
                frees_at = _aware(row["sent_at"]) + timedelta(seconds=window_s)
                return (frees_at - now).total_seconds(), "hourly_budget", spent
            conn.execute("INSERT INTO web_api_requests (account, sent_at) VALUES (?, ?)",
                         (account, self._stamp(now)))
        return 0.0, "", spent + 1

    def hold_web_requests(self, account: str, until: datetime) -> None:
        with self._transaction("recording a Web API Retry-After", write=True) as conn:
            row = conn.execute("SELECT until FROM web_api_holds WHERE account = ?",
                               (account,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO web_api_holds (account, until) VALUES (?, ?)",
                             (account, self._stamp(until)))
            elif _aware(row["until"]) < until:  # a shorter Retry-After ends no longer one
                conn.execute("UPDATE web_api_holds SET until = ? WHERE account = ?",
                             (self._stamp(until), account))

    def web_requests_spent(self, account: str, *, now: datetime, window_s: float) -> int:
        with self._transaction("reading the Web API budget", write=False) as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM web_api_requests WHERE account = ? AND sent_at > ?",
                (account, self._stamp(now - timedelta(seconds=window_s))),
            ).fetchone()
        return int(row["n"])

    # --- printers chosen and not yet sent to ------------------------------------------------

    def claim_printer(self, printer: str, *, holder: str, build: str, lease_s: float) -> bool:
        # Read and written under the store's write lock (SQLite's, PostgreSQL's advisory one):
        # two holders claiming at once cannot both find the printer free.
        ended: Row | None = None
        with self._transaction("claiming a printer", write=True) as conn:
            now = self._shared_now(conn)
            row = conn.execute("SELECT holder, build, until FROM printer_claims "
                               "WHERE printer = ?", (printer,)).fetchone()
            if row is not None and row["holder"] != holder and _aware(row["until"]) > now:
                if not _holder_ended(row["holder"]):
                    return False
                ended = row  # its process died before it sent: the printer is free now
            until = self._stamp(now + timedelta(seconds=lease_s))
            if row is None:
                conn.execute("INSERT INTO printer_claims (printer, holder, build, until) "
                             "VALUES (?, ?, ?, ?)", (printer, holder, build, until))
            else:  # expired, its holder dead, or this holder's own (a renewal)
                conn.execute("UPDATE printer_claims SET holder = ?, build = ?, until = ? "
                             "WHERE printer = ?", (holder, build, until, printer))
        if ended is not None:
            log.warning("printer_claim_taken_over", printer=printer, build=build, holder=holder,
                        dead_holder=ended["holder"], dead_build=ended["build"])
        return True

    def printers_claimed(self, *, other_than: str) -> frozenset[str]:
        with self._transaction("reading the printers claimed", write=False) as conn:
            rows = conn.execute(
                "SELECT printer, holder FROM printer_claims WHERE holder <> ? AND until > ?",
                (other_than, self._stamp(self._shared_now(conn))),
            ).fetchall()
        return frozenset(row["printer"] for row in rows if not _holder_ended(row["holder"]))

    def release_printers(self, *, holder: str, builds: Collection[str]) -> int:
        released = 0
        with self._transaction("releasing printers", write=True) as conn:
            for build in builds:
                released += conn.execute(
                    "DELETE FROM printer_claims WHERE holder = ? AND build = ?", (holder, build)
                ).rowcount
        return released

    # --- lifetime ----------------------------------------------------------------------------

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

