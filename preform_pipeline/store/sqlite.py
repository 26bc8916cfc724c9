"""The SQLite job store: one file, WAL, every transition in one transaction with its audit row.

Why these settings:

- **WAL** lets the ``jobs`` command (and any number of readers) read while the daemon writes:
  readers see the last committed state and never block the writer.
- **busy_timeout** makes a second writer wait for the first instead of failing with
  "database is locked"; only a lock held longer than the timeout becomes a StoreError.
- **synchronous=FULL**: a committed transition survives a power cut. "Durable before acting"
  needs exactly that: a PRINT_SENDING row lost after the print went out would send it twice.
- **BEGIN IMMEDIATE** for every write takes the write lock before reading the current state,
  so the compare-and-set cannot be overtaken between its read and its write.
- **Migrations** are numbered from 1; ``PRAGMA user_version`` holds the applied version. Each
  runs in its own transaction with the version bump, so a crash mid-migration leaves the old
  version intact. A store newer than this code is refused rather than guessed at.

One :class:`SqliteJobStore` holds one connection, shared by the threads of a process under a
lock; separate processes open their own store on the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import (
    InvalidTransitionError,
    StoreConflictError,
    StoreError,
)
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

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SqliteJobStore",
]

log = get_logger(__name__)

#: A writer waits this long for another writer's transaction before giving up. Transitions
#: take milliseconds; ten seconds covers a slow disk or a migration by another process.
DEFAULT_BUSY_TIMEOUT_S: Final = 10.0
#: New keys drawn before giving up on a (practically impossible) run of collisions.
_KEY_ATTEMPTS: Final = 5

_JOB_KEY_COLUMN_HINT: Final = "job_key"


# --- migrations ------------------------------------------------------------------------------
# Never edit a released migration: stores in the field were created by it. Add a new one.

_V1_STATEMENTS: Final = (
    """CREATE TABLE builds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_key TEXT NOT NULL UNIQUE,
        recipe TEXT NOT NULL,
        state TEXT NOT NULL,
        server TEXT,
        form_path TEXT,
        print_job_id TEXT,
        printer TEXT,
        job_name TEXT,
        verified_status TEXT,
        verified_message TEXT,
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        print_sent_at TEXT
    )""",
    "CREATE INDEX builds_state ON builds(state)",
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_key TEXT NOT NULL UNIQUE,
        recipe TEXT NOT NULL,
        source_path TEXT NOT NULL,
        original_name TEXT NOT NULL,
        content_hash TEXT,
        case_id TEXT,
        priority INTEGER NOT NULL DEFAULT 0,
        fields TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        build_id INTEGER REFERENCES builds(id),
        reason TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        print_job_id TEXT,
        printer TEXT,
        verified_status TEXT,
        verified_message TEXT
    )""",
    "CREATE INDEX jobs_state ON jobs(state)",
    "CREATE INDEX jobs_updated_at ON jobs(updated_at)",
    "CREATE INDEX jobs_source_path ON jobs(source_path)",
    "CREATE INDEX jobs_build ON jobs(build_id)",
    """CREATE TABLE build_jobs (
        build_id INTEGER NOT NULL REFERENCES builds(id),
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (build_id, job_id)
    )""",
    """CREATE TABLE transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER REFERENCES jobs(id),
        build_id INTEGER REFERENCES builds(id),
        from_state TEXT,
        to_state TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL,
        CHECK (job_id IS NOT NULL OR build_id IS NOT NULL)
    )""",
    "CREATE INDEX transitions_job ON transitions(job_id, id)",
    "CREATE INDEX transitions_build ON transitions(build_id, id)",
)

# v2: when a print's final status was seen (the verifier reports it, and `jobs show` prints
# it), and duplicate detection by content hash without a table scan.
_V2_STATEMENTS: Final = (
    "ALTER TABLE jobs ADD COLUMN verified_at TEXT",
    "ALTER TABLE builds ADD COLUMN verified_at TEXT",
    "CREATE INDEX jobs_content_hash ON jobs(content_hash)",
)

# v3: who held a print's send (server pid and start time, or a remote server), so recovery can
# prove that nothing can still send an interrupted print before it concludes "not printed".
_V3_STATEMENTS: Final = ("ALTER TABLE builds ADD COLUMN send_holder TEXT",)

# v4: builds waiting for a free printer (dispatch): where they may print, since when, their
# priority, and whether the "waiting too long" notification went out.
_V4_STATEMENTS: Final = (
    "ALTER TABLE builds ADD COLUMN print_target TEXT",
    "ALTER TABLE builds ADD COLUMN waiting_since TEXT",
    "ALTER TABLE builds ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE builds ADD COLUMN wait_notified_at TEXT",
)


@dataclass(frozen=True)
class Migration:
    """One schema step: applied inside a transaction that also sets ``user_version``."""

    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _statements(statements: Sequence[str]) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        # One execute per statement: executescript() would commit the open transaction.
        for statement in statements:
            conn.execute(statement)

    return apply


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "jobs, builds, build membership, audit trail", _statements(_V1_STATEMENTS)),
    Migration(2, "verified_at on jobs and builds; index on content hash",
              _statements(_V2_STATEMENTS)),
    Migration(3, "who held a print's send, on builds", _statements(_V3_STATEMENTS)),
    Migration(4, "builds waiting for a printer: target, since, priority",
              _statements(_V4_STATEMENTS)),
)
#: The schema version this code writes; a store with a higher one is refused.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version


# --- value conversion ------------------------------------------------------------------------


def _ts(moment: datetime) -> str:
    # Fixed width, UTC, microseconds: text order is time order, so `since` is a string compare.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


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


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        job_key=row["job_key"],
        recipe=row["recipe"],
        source_path=Path(row["source_path"]),
        original_name=row["original_name"],
        state=JobState(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        content_hash=row["content_hash"],
        case_id=row["case_id"],
        priority=row["priority"],
        fields=json.loads(row["fields"]),
        build_id=row["build_id"],
        reason=row["reason"],
        attempts=row["attempts"],
        print_job_id=row["print_job_id"],
        printer=row["printer"],
        verified_status=row["verified_status"],
        verified_message=row["verified_message"],
        verified_at=_dt(row["verified_at"]),
    )


def _build_from_row(row: sqlite3.Row, job_ids: Sequence[int]) -> Build:
    return Build(
        id=row["id"],
        job_key=row["job_key"],
        recipe=row["recipe"],
        state=JobState(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
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
        send_holder=json.loads(row["send_holder"]) if row["send_holder"] else None,
        print_target=json.loads(row["print_target"]) if row["print_target"] else None,
        waiting_since=_dt(row["waiting_since"]),
        priority=row["priority"],
        wait_notified_at=_dt(row["wait_notified_at"]),
    )


def _transition_from_row(row: sqlite3.Row) -> Transition:
    return Transition(
        id=row["id"],
        job_id=row["job_id"],
        build_id=row["build_id"],
        from_state=JobState(row["from_state"]) if row["from_state"] is not None else None,
        to_state=JobState(row["to_state"]),
        at=datetime.fromisoformat(row["at"]),
        reason=row["reason"],
    )


def _allowed_hint(table: Mapping[JobState, frozenset[JobState]], state: JobState) -> str:
    targets = sorted(s.value for s in table[state])
    if not targets:
        return f"{state} is final: nothing leaves it"
    return f"from {state} it may go to: {', '.join(targets)}"


# --- the store -------------------------------------------------------------------------------


class SqliteJobStore:
    """A :class:`~preform_pipeline.store.protocol.JobStore` in one SQLite file.

    Opening creates the file and its folder (unless ``create=False``), switches it to WAL and
    applies pending migrations. Every failure is a :class:`StoreError` naming the file and what
    to do: a locked store, a damaged or foreign file, a store written by a newer version.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(create)

    # --- opening and migrating ---------------------------------------------------------------

    def _open(self, create: bool) -> sqlite3.Connection:
        if not self.path.exists():
            if not create:
                raise StoreError(
                    f"{self.path}: no job store here",
                    hint="check --store, store.path or PREFORM_PIPELINE_STORE_PATH; the hot "
                    "folder creates the store when it first starts",
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"{self.path}: cannot create the store's folder: {exc}",
                    hint="choose a writable folder (store.path or PREFORM_PIPELINE_STORE_PATH)",
                ) from exc
        with self._errors("opening"):
            conn = sqlite3.connect(
                str(self.path),
                timeout=self.busy_timeout_s,
                isolation_level=None,  # transactions are begun and ended explicitly
                check_same_thread=False,  # shared by this process's threads, under _lock
            )
        try:
            with self._errors("opening"):
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                # The first read of the file: a damaged or foreign file fails here.
                version = self._user_version(conn)
                self._refuse_newer(version)
                if version == 0:
                    self._refuse_foreign(conn)
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    # Some network file systems cannot do WAL; it still works, readers wait.
                    log.warning("store_not_wal", path=str(self.path), journal_mode=mode)
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the job store has schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this preform-pipeline knows",
                hint="upgrade preform-pipeline (a newer version wrote this store), or point "
                "--store / PREFORM_PIPELINE_STORE_PATH at another file",
            )

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        if tables:
            raise StoreError(
                f"{self.path}: not a preform-pipeline job store (it has tables "
                f"{', '.join(tables)} but no schema version)",
                hint="point --store / PREFORM_PIPELINE_STORE_PATH at another file",
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        for migration in MIGRATIONS:
            with self._errors(f"migrating to schema version {migration.version}"):
                if self._user_version(conn) >= migration.version:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Read again under the write lock: another process may have migrated.
                    current = self._user_version(conn)
                    self._refuse_newer(current)
                    if current >= migration.version:
                        conn.execute("COMMIT")
                        continue
                    migration.apply(conn)
                    conn.execute(f"PRAGMA user_version = {migration.version}")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            log.info(
                "store_migrated",
                path=str(self.path),
                version=migration.version,
                description=migration.description,
            )

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn sqlite3 errors into StoreErrors that name the file and say what to do."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreError(
                    f"{self.path}: the job store stayed locked for more than "
                    f"{self.busy_timeout_s:g} s while {action}",
                    hint="another process holds a long write; if none runs, the file may sit "
                    "on a network share that cannot lock: keep the store on a local disk",
                ) from exc
            if "unable to open" in text:
                raise StoreError(
                    f"{self.path}: cannot open the job store ({text})",
                    hint="check that the folder exists and is writable, or choose another "
                    "path (--store, store.path, PREFORM_PIPELINE_STORE_PATH)",
                ) from exc
            raise StoreError(
                f"{self.path}: the job store failed while {action}: {text}",
                hint="check free disk space and permissions; see docs/jobs.md",
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a usable job store ({exc}) while {action}",
                hint="the file is damaged or is not a job store: move it aside (keep it for "
                "diagnosis) and restore a backup, or start afresh; a new store is created on "
                "the next start, without the old job history",
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the job store is closed")
        return self._conn

    @contextmanager
    def _transaction(self, action: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(action):
            conn = self._connection()
            # IMMEDIATE takes the write lock before the first read (see the module docstring);
            # a plain BEGIN gives readers one consistent snapshot across several queries.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _now(self) -> str:
        moment = self._clock.now()
        if moment.tzinfo is None:
            raise StoreError("the store's clock returned a time without a time zone")
        return _ts(moment)

    @staticmethod
    def _update(
        conn: sqlite3.Connection, table: str, row_id: int, values: Mapping[str, Any]
    ) -> None:
        # Column names come from the fixed allow-lists, never from callers' text.
        assignments = ", ".join(f"{column} = ?" for column in values)
        conn.execute(
            f"UPDATE {table} SET {assignments} WHERE id = ?", (*values.values(), row_id)
        )

    @staticmethod
    def _audit(
        conn: sqlite3.Connection,
        *,
        job_id: int | None,
        build_id: int | None,
        from_state: JobState | None,
        to_state: JobState,
        at: str,
        reason: str,
    ) -> None:
        conn.execute(
            "INSERT INTO transitions (job_id, build_id, from_state, to_state, at, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, build_id, from_state.value if from_state else None, to_state.value, at,
             reason),
        )

    def _job_row(self, conn: sqlite3.Connection, job_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise StoreError(
                f"{self.path}: no job {job_id}", hint="`preform-pipeline jobs` lists the jobs"
            )
        return row

    def _build_row(self, conn: sqlite3.Connection, build_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM builds WHERE id = ?", (build_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no build {build_id}")
        return row

    def _build(self, conn: sqlite3.Connection, row: sqlite3.Row) -> Build:
        job_ids = [
            r[0]
            for r in conn.execute(
                "SELECT job_id FROM build_jobs WHERE build_id = ? ORDER BY position", (row["id"],)
            )
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
        self, conn: sqlite3.Connection, sql: str, values: Sequence[Any]
    ) -> tuple[int, str]:
        """Insert a row whose first parameter is a new key; returns (row id, key)."""
        for _ in range(_KEY_ATTEMPTS):
            key = new_key()
            try:
                cursor = conn.execute(sql, (key, *values))
            except sqlite3.IntegrityError as exc:
                if _JOB_KEY_COLUMN_HINT in str(exc):
                    continue  # a collision: the failed statement alone was undone; draw again
                raise
            assert cursor.lastrowid is not None
            return cursor.lastrowid, key
        raise StoreError(f"{self.path}: could not draw an unused job key")

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
        self, conn: sqlite3.Connection, values: tuple[Any, ...], state: JobState, reason: str
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

    def find_by_path(self, source_path: Path | str) -> Job | None:
        with self._transaction("looking up a path", write=False) as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE source_path = ? ORDER BY id DESC LIMIT 1",
                (str(Path(source_path)),),
            ).fetchone()
            return _job_from_row(row) if row is not None else None

    @staticmethod
    def _where(
        *,
        state: StateFilter | None,
        recipe: str | None,
        since: datetime | None,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
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
            params.append(_ts(since))
        for column, value in (extra or {}).items():
            clauses.append(f"{column} = ?")
            params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    @staticmethod
    def _limited(table: str, where: str, limit: int | None) -> str:
        if limit is None:
            return f"SELECT * FROM {table}{where} ORDER BY id"
        if limit < 1:
            raise ValueError(f"limit must be 1 or more (or None for all), got {limit}")
        # The most recent N, handed back in creation order.
        return (
            f"SELECT * FROM (SELECT * FROM {table}{where} ORDER BY id DESC LIMIT {int(limit)}) "
            "ORDER BY id"
        )

    def list_jobs(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        since: datetime | None = None,
        build_id: int | None = None,
        limit: int | None = None,
    ) -> tuple[Job, ...]:
        extra = {"build_id": build_id} if build_id is not None else None
        where, params = self._where(state=state, recipe=recipe, since=since, extra=extra)
        with self._transaction("listing jobs", write=False) as conn:
            rows = conn.execute(self._limited("jobs", where, limit), params).fetchall()
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
        self, conn: sqlite3.Connection, build_id: int, job_id: int, now: str
    ) -> None:
        """A job left a build whose scene already holds its model: prepare the build again.

        The daemon's next compare-and-set on the build (PREPARED → PRINT_SENDING) then fails,
        so the cancelled model is never printed.
        """
        build = self._build_row(conn, build_id)
        state = JobState(build["state"])
        # A waiting build's .form holds the model too: it must never be dispatched as it is.
        if state not in (JobState.PREPARING, JobState.PREPARED, JobState.WAITING_FOR_PRINTER):
            return
        reason = f"job {job_id} was cancelled: prepare the build again without it"
        self._update(conn, "builds", build_id,
                     {"state": JobState.PROCESSING.value, "reason": reason, "updated_at": now})
        self._audit(conn, job_id=None, build_id=build_id, from_state=state,
                    to_state=JobState.PROCESSING, at=now, reason=reason)
        for (member,) in conn.execute(
            "SELECT id FROM jobs WHERE build_id = ? AND state = ? ORDER BY id",
            (build_id, state.value),
        ).fetchall():
            self._update(conn, "jobs", member, {"state": JobState.PROCESSING.value,
                                                "reason": reason, "updated_at": now})
            self._audit(conn, job_id=member, build_id=build_id, from_state=state,
                        to_state=JobState.PROCESSING, at=now, reason=reason)
        log.info("build_transition", build_id=build_id, from_state=state.value,
                 to_state=JobState.PROCESSING.value, reason=reason)

    def update_job(self, job_id: int, **fields: Any) -> Job:
        updates = _check_fields(JOB_FIELDS, fields, f"job {job_id}")
        with self._transaction(f"updating job {job_id}", write=True) as conn:
            self._job_row(conn, job_id)
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
            for job_id in ids:
                row = self._job_row(conn, job_id)
                if row["state"] != JobState.PROCESSING.value or row["build_id"] is not None:
                    where = f" in build {row['build_id']}" if row["build_id"] is not None else ""
                    raise StoreError(
                        f"job {job_id} is {row['state']}{where}: only processing jobs without "
                        "a build can be batched",
                        hint="re-read the jobs; another process may have moved them",
                    )
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
            build = self._build(conn, self._build_row(conn, build_id))
        log.info("build_created", build_id=build_id, job_key=key, recipe=recipe, jobs=ids)
        return build

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
        limit: int | None = None,
    ) -> tuple[Build, ...]:
        where, params = self._where(state=state, recipe=recipe, since=since)
        with self._transaction("listing builds", write=False) as conn:
            rows = conn.execute(self._limited("builds", where, limit), params).fetchall()
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
        to_state = JobState(to_state)
        updates = _check_fields(BUILD_FIELDS, fields, f"build {build_id}")
        what = f"build {build_id}"
        with self._transaction(f"moving build {build_id} to {to_state}", write=True) as conn:
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
        updates = _check_fields(BUILD_FIELDS, fields, f"build {build_id}")
        with self._transaction(f"updating build {build_id}", write=True) as conn:
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
                "ORDER BY print_sent_at, id",
                states,
            ).fetchall()
            return tuple(self._build(conn, r) for r in rows)

    def interrupted_builds(self) -> tuple[Build, ...]:
        return self.list_builds(state=INTERRUPTED_STATES)

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with self._errors("closing"):
                    conn.close()

    def __enter__(self) -> SqliteJobStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SqliteJobStore({str(self.path)!r}, {state})"
