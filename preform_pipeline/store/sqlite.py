"""The SQLite job store: one file, WAL, every transition in one transaction with its audit row.

Why these settings:

- **WAL** lets the ``jobs`` command (and any number of readers) read while the daemon writes:
  readers see the last committed state and never block the writer.
- **busy_timeout** makes a second writer wait for the first instead of failing with
  "database is locked"; only a lock held longer than the timeout becomes a StoreError.
- **synchronous=FULL**: a committed transition survives a power cut. "Durable before acting"
  needs exactly that: a PRINT_SENDING row lost after the print went out would send it twice.
- **A bounded WAL**: SQLite checkpoints its ``-wal`` file only once it holds 1,000 pages
  (about 4 MB) and, by default, never gives the file's room back afterwards. The store
  checkpoints every :data:`WAL_CHECKPOINT_PAGES` pages and has SQLite truncate the WAL to
  :data:`WAL_SIZE_LIMIT_BYTES` each time it starts it afresh, so the store's disk holds the
  file plus at most about 1 MiB beside it, also after an outage (a full disk, a reader that
  held a checkpoint back) made the WAL grow for a while.
- **BEGIN IMMEDIATE** for every write takes the write lock before reading the current state,
  so the compare-and-set cannot be overtaken between its read and its write.
- **Migrations** are numbered from 1; ``PRAGMA user_version`` holds the applied version. Each
  runs in its own transaction with the version bump, so a crash mid-migration leaves the old
  version intact. A store newer than this code is refused rather than guessed at.

The rules themselves (compare-and-set, the state tables, the audit trail) are in
:mod:`preform_pipeline.store.sqlcore`, shared with the PostgreSQL store; this module opens the
file and runs the transactions.

One :class:`SqliteJobStore` holds one connection, shared by the threads of a process under a
lock; separate processes open their own store on the same file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from preform_pipeline.atomicfile import NAME_MAX_BYTES
from preform_pipeline.clock import Clock
from preform_pipeline.diskspace import disk_is_full
from preform_pipeline.errors import StoreError
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.store import DEFAULT_STORE_FILENAME
from preform_pipeline.store.sqlcore import Connection, SqlStoreCore, iso_utc

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "MAX_STORE_NAME_BYTES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "WAL_CHECKPOINT_PAGES",
    "WAL_SIZE_LIMIT_BYTES",
    "WAL_SWITCH_TRIES",
    "Migration",
    "SqliteJobStore",
    "store_file_there",
]

log = get_logger(__name__)

#: A writer waits this long for another writer's transaction before giving up. Transitions
#: take milliseconds; ten seconds covers a slow disk or a migration by another process.
DEFAULT_BUSY_TIMEOUT_S: Final = 10.0

#: The WAL is checkpointed into the store's file once it holds this many pages (1 MiB at
#: SQLite's 4 KiB page): a few hundred transitions, a checkpoint of milliseconds.
WAL_CHECKPOINT_PAGES: Final = 256

#: How often opening tries to switch a store to WAL while another process holds its write
#: lock (see :meth:`SqliteJobStore._switch_to_wal`): after one wait the other has switched the
#: file, and the next try writes nothing; a few more cover several processes starting at once.
WAL_SWITCH_TRIES: Final = 5

#: What SQLite cuts the WAL back to when a checkpoint has emptied it (``journal_size_limit``):
#: without it the file keeps the largest size it ever reached, for as long as a writer runs.
WAL_SIZE_LIMIT_BYTES: Final = 1024 * 1024

_JOB_KEY_COLUMN_HINT: Final = "job_key"

_TO_WAL: Final = "PRAGMA journal_mode = WAL"

#: The longest store file name, in bytes: SQLite writes ``<name>-journal`` beside the file
#: (and ``-wal``, ``-shm``), and file systems take names up to 255 bytes.
MAX_STORE_NAME_BYTES: Final = NAME_MAX_BYTES - len("-journal")


def _lower(value: object) -> str | None:
    """SQL ``lower()`` on this store's connections: its argument as text in lower case (as
    SQLite's own, which folds ASCII letters only), NULL as NULL."""
    return None if value is None else str(value).lower()


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

# v5: builds held for approval (the recipe's ``print: {approval: required}``): who approved or
# rejected one, when and why (JSON), read by the web dashboard and ``jobs``.
_V5_STATEMENTS: Final = ("ALTER TABLE builds ADD COLUMN approval TEXT",)


# v6: notices said about things the store holds no job for (a name too long to take), so a
# run from cron does not say them again (``note_notice``).
_V6_STATEMENTS: Final = (
    """CREATE TABLE notices (
        key TEXT PRIMARY KEY,
        about TEXT NOT NULL,
        said_at TEXT NOT NULL
    )""",
)


# v7: the Web API requests spent in the last hour and the server's last Retry-After, per Web
# API account, so every process on this machine keeps one hourly budget (``spend_web_request``).
_V7_STATEMENTS: Final = (
    """CREATE TABLE web_api_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        sent_at TEXT NOT NULL
    )""",
    "CREATE INDEX web_api_requests_account ON web_api_requests(account, sent_at)",
    "CREATE INDEX web_api_requests_sent_at ON web_api_requests(sent_at)",
    """CREATE TABLE web_api_holds (
        account TEXT PRIMARY KEY,
        until TEXT NOT NULL
    )""",
)


# v8: printers chosen for a build whose print is not sent yet, so a ``run`` and a ``watch`` on
# one store do not both choose one printer while its status still says it is free
# (``claim_printer``); each claim ends at ``until`` by itself if its holder dies.
_V8_STATEMENTS: Final = (
    """CREATE TABLE printer_claims (
        printer TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        build TEXT NOT NULL,
        until TEXT NOT NULL
    )""",
)


# v9: a print's send holder (``send_holder``, and a `run`'s claim in ``jobs.fields``) names its
# process's instance (boot and pid namespace), inside the JSON it already is: no column
# changes. The version is the point: an earlier version would read such a holder by its host
# name and pid alone (two containers of one host name share pids) and could conclude another
# container's live server gone, printing twice; it refuses a store of a newer version. Holders
# written before stay as they are, read as naming no instance: never proven gone.
_V9_STATEMENTS: Final[tuple[str, ...]] = ()


# v10: the folder whose disk was full when a build failed (the runner tells it by the refused
# write's errno), kept with the failure: a note written after a restart, when the run's
# outcome is gone, still says to free space there rather than to fix the model.
_V10_STATEMENTS: Final = ("ALTER TABLE builds ADD COLUMN full_disk TEXT",)


# v11: jobs found by their case without a table scan: the superseded-case rule
# (store/superseded.py) looks up every case of a page of failed jobs (``find_by_cases``),
# in some states. With the state in the index SQLite takes it over ``jobs_state`` (which it
# took over an index of the case alone, without statistics: most jobs share a few states).
_V11_STATEMENTS: Final = ("CREATE INDEX jobs_case_id ON jobs(case_id, state)",)


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
    Migration(5, "approval of held builds: who decided, when, why",
              _statements(_V5_STATEMENTS)),
    Migration(6, "notices said once", _statements(_V6_STATEMENTS)),
    Migration(7, "the Web API budget shared by every process",
              _statements(_V7_STATEMENTS)),
    Migration(8, "printers chosen and not yet sent to", _statements(_V8_STATEMENTS)),
    Migration(9, "send holders name their process's instance",
              _statements(_V9_STATEMENTS)),
    Migration(10, "the folder whose full disk failed a build",
              _statements(_V10_STATEMENTS)),
    Migration(11, "index on a job's case", _statements(_V11_STATEMENTS)),
)
#: The schema version this code writes; a store with a higher one is refused.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version
_DAMAGED_HINT: Final = (
    "the file is damaged or is not a job store: move it aside (keep it for diagnosis) and "
    "restore a backup, or start afresh; a new store is created on the next start, without "
    "the old job history"
)


#: The first 16 bytes of every SQLite database file (its header's "magic string").
_SQLITE_HEADER: Final = b"SQLite format 3\x00"


def _cannot_share(exc: sqlite3.OperationalError) -> bool:
    """SQLite's refusal to make a WAL store's shared-memory file."""
    return "readonly" in str(exc) or "unable to open" in str(exc)


#: SQLite's names of the errors a full disk gives: a page that cannot be written, or (only
#: "disk I/O error") a shared-memory or journal file that cannot grow.
_FULL_DISK_ERRORS: Final = frozenset({"SQLITE_FULL", "SQLITE_IOERR_SHMSIZE",
                                      "SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC",
                                      "SQLITE_IOERR_TRUNCATE"})


def _disk_full(exc: sqlite3.Error, path: Path) -> bool:
    """Whether SQLite failed because the store's disk is full (its error alone cannot say:
    SQLITE_FULL is also a store at its page limit, the I/O errors a failing disk)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in _FULL_DISK_ERRORS and disk_is_full(path.parent)


def _refused_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for another connection's lock: the plain SQLITE_BUSY (not
    ``_RECOVERY`` or ``_SNAPSHOT``). Python 3.10 names no error code: there, SQLite's text."""
    name = getattr(exc, "sqlite_errorname", None)
    return str(exc) == "database is locked" if name is None else name == "SQLITE_BUSY"


def store_file_there(path: Path) -> bool:
    """Whether anything is at ``path`` (False: nothing has made the store yet). A path this
    account may not follow, a folder on it that it may not search, is a StoreError: to
    ``os.path.exists`` it was no file, and ``jobs`` said "no job store yet" of a store that
    was there (session 46)."""
    try:
        os.stat(path)
    except PermissionError as exc:
        folder = next((f for f in reversed(path.parents) if not os.access(f, os.X_OK)),
                      path.parent)
        which = "its folder" if folder == path.parent else f"the folder {folder}"
        raise StoreError(
            f"{path}: cannot reach the job store: this account may not open {which} "
            f"({exc.strerror})",
            hint="give it permission to open the folders on the path, or run this as the user "
            "the hot folder runs as",
        ) from exc
    except (OSError, ValueError):
        return False  # not there, or a name no file can have (refused when opened)
    return True


def _unreadable(path: Path) -> str | None:
    """Why the file at ``path`` cannot be read (None: it can, or it is not there)."""
    try:
        with open(path, "rb"):
            return None
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _unwritable_error(path: Path, action: str) -> StoreError:
    return StoreError(
        f"{path}: this account cannot write to the job store (while {action})",
        hint="give it permission to write the file and its folder (SQLite writes a journal "
        "beside the file), or run this as the user the hot folder runs as",
    )


def _folder_error(path: Path, exc: OSError) -> StoreError:
    return StoreError(
        f"{path}: cannot create the store's folder: {exc}",
        hint="choose a writable folder (store.path or PREFORM_PIPELINE_STORE_PATH)",
    )


def _cannot_open_error(path: Path, text: str) -> StoreError:
    return StoreError(
        f"{path}: cannot open the job store ({text})",
        hint="check that the folder exists and is writable, or choose another "
        "path (--store, store.path, PREFORM_PIPELINE_STORE_PATH)",
    )


def _unreadable_error(path: Path, reason: str) -> StoreError:
    return StoreError(
        f"{path}: cannot read the job store file ({reason})",
        hint="give this account permission to read the file (and to write it and its "
        "folder, to change jobs), or run this as the user the hot folder runs as",
    )


# --- the store -------------------------------------------------------------------------------


class SqliteJobStore(SqlStoreCore):
    """A :class:`~preform_pipeline.store.protocol.JobStore` in one SQLite file.

    Opening creates the file and its folder (unless ``create=False``), switches it to WAL and
    applies pending migrations. Every failure is a :class:`StoreError` naming the file and what
    to do: a locked store, a damaged or foreign file, a store written by a newer version.
    ``on_statement`` is called with each SQL statement the store runs once it is open (SQLite's
    own trace: ``BEGIN`` and ``COMMIT`` too): a seam to count a caller's queries.
    """

    kept_on_this_machine = True

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        create: bool = True,
        read_only: bool = False,
        on_statement: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.path = Path(path)
        self.location = str(self.path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(create, read_only)
        if on_statement is not None:
            self._conn.set_trace_callback(on_statement)

    @classmethod
    def check(cls, path: Path | str, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        """Raise the StoreError opening the store at ``path`` to record would raise, and
        nothing where that open would succeed, without creating, writing or migrating anything:
        the open's own refusals (a name too long, a folder it may not open, a folder, device or
        someone's file at the path, a file it may not read, a damaged or foreign one, a newer
        version), read through a connection that never writes; and a file or folder it may not
        write, which the real run's open or its first claim refuses. A file not there yet is
        refused only when its folder could not be made or written (the open would create
        both). A dry run checks so the store its real run would open: opening an older store
        migrates it, for good (review rv47-loose: a second rule had let a dry run pass what
        the open refuses).
        """
        store = cls.__new__(cls)
        store.path = Path(path)
        store.busy_timeout_s = busy_timeout_s
        store._conn = None
        if not store._refuse_unopenable(create=True):
            store._refuse_uncreatable()
            return
        with store._errors("opening"):
            conn = store._connect_reading()
        try:
            with store._errors("opening"):
                store._read_version(conn)
        finally:
            conn.close()
        # The real run writes the file, and SQLite its journal beside it: the open refuses a
        # folder it may not write (WAL's -shm), the first claim a file it may only read.
        if not (os.access(store.path, os.W_OK)
                and os.access(store.path.parent, os.W_OK | os.X_OK)):
            raise _unwritable_error(store.path, "opening")

    # --- opening and migrating ---------------------------------------------------------------

    def _refuse_unopenable(self, *, create: bool) -> bool:
        """The refusals made before SQLite is asked; whether a file is there."""
        self._refuse_long_name()
        if not store_file_there(self.path):
            if not create:
                raise StoreError(
                    f"{self.path}: no job store here",
                    hint="check --store, store.path or PREFORM_PIPELINE_STORE_PATH; the hot "
                    "folder creates the store when it first starts",
                )
            return False
        self._refuse_not_a_file()
        self._refuse_not_sqlite()
        return True

    def _refuse_uncreatable(self) -> None:
        """For a store not there yet, what making its folder (``mkdir -p``) or creating its
        file there would raise, found without making either."""
        missing = None
        folder = self.path.parent
        while not os.path.lexists(folder) and folder != folder.parent:
            folder, missing = folder.parent, folder
        if missing is None:
            if not folder.is_dir():
                raise _folder_error(self.path, FileExistsError(
                    errno.EEXIST, os.strerror(errno.EEXIST), str(folder)))
            if not os.access(folder, os.W_OK | os.X_OK):
                raise _cannot_open_error(self.path, "unable to open database file")
            return
        if not folder.is_dir():
            raise _folder_error(self.path, NotADirectoryError(
                errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(missing)))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise _folder_error(self.path, PermissionError(
                errno.EACCES, os.strerror(errno.EACCES), str(missing)))

    def _open(self, create: bool, read_only: bool = False) -> sqlite3.Connection:
        if not self._refuse_unopenable(create=create):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _folder_error(self.path, exc) from exc
        read_only = read_only and self.path.exists()
        with self._errors("opening"):
            conn = self._connect_reading() if read_only else self._connect(str(self.path))
        try:
            with self._errors("opening"):
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                # SQLite's own lower() folds ASCII only: a search for "é" missed "É", which
                # PostgreSQL's finds. The text searches compare in Python's lower case.
                conn.create_function("lower", 1, _lower, deterministic=True)
                version = self._read_version(conn)
                if read_only and version < SCHEMA_VERSION:
                    # Migrating writes: a store this code has not opened yet is opened as
                    # any other, and says so if it cannot be written.
                    conn.close()
                    return self._open(create)
                if not read_only:
                    mode = self._switch_to_wal(conn)
                    if str(mode).lower() != "wal":
                        # Some network file systems cannot do WAL; it works, readers wait.
                        log.warning("store_not_wal", path=str(self.path), journal_mode=mode)
                    conn.execute("PRAGMA synchronous = FULL")
                    # Both are the connection's own, not the file's: set on every open.
                    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
                    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
                conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _read_version(self, conn: sqlite3.Connection) -> int:
        """The store's schema version, refused when newer or when the file is someone
        else's database: the first read of the file (a damaged or foreign one fails here).
        The version and the table list are read in one snapshot: another process may be
        creating the store right now, and its tables must not be seen without its version."""
        conn.execute("BEGIN")
        try:
            version = self._user_version(conn)
            self._refuse_newer(version)
            if version == 0:
                self._refuse_foreign(conn)
        finally:
            if conn.in_transaction:  # a failed read may have ended it already
                conn.execute("ROLLBACK")  # nothing was written
        return version

    def _switch_to_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, waiting for another process's write as a write does;
        the journal mode the file has afterwards.

        Switching writes the file's header: SQLite reads it (a shared lock), then asks for the
        write lock. While another process holds that lock (it is switching this same new store
        this very moment: two processes opening a store one of them has just created), SQLite
        refuses at once with SQLITE_BUSY and never calls the busy handler, because this
        connection holds its read lock while it asks and waiting could deadlock: the store would
        fail to open in a millisecond, saying it stayed locked for the whole busy timeout.
        ``BEGIN IMMEDIATE`` holds nothing while it waits for the write lock, so it waits
        (busy_timeout) until the other's switch has committed; the next try finds the file in
        WAL already and writes nothing. Tries stop once the busy timeout has passed since the
        first, on the real clock (SQLite waits real time, whatever clock the store was handed):
        a refusal after SQLite's own wait is the long-held lock a write reports too. A switch
        refused ``WAL_SWITCH_TRIES`` times before that (other processes writing the file one
        after another) says how long it was tried, not that the busy timeout passed.
        """
        started = time.monotonic()
        tries = 1
        while True:
            try:
                return str(conn.execute(_TO_WAL).fetchone()[0])
            except sqlite3.OperationalError as exc:
                tried_s = time.monotonic() - started
                if not _refused_busy(exc) or tried_s >= self.busy_timeout_s:
                    raise
                if tries == WAL_SWITCH_TRIES:
                    raise StoreError(
                        f"{self.path}: other processes kept the job store locked while "
                        f"opening ({tries} writes in a row refused its switch to WAL in "
                        f"{tried_s:.1f} s)",
                        hint="several processes were writing a store not yet in WAL mode: "
                        "start this one again; if it recurs, the file may sit on a network "
                        "share that cannot lock: keep the store on a local disk",
                    ) from exc
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            tries += 1

    def _connect(self, database: str, *, uri: bool = False) -> sqlite3.Connection:
        return sqlite3.connect(
            database,
            timeout=self.busy_timeout_s,
            isolation_level=None,  # transactions are begun and ended explicitly
            check_same_thread=False,  # shared by this process's threads, under _lock
            uri=uri,
        )

    def _connect_reading(self) -> sqlite3.Connection:
        """A connection that never writes the file: a read (``jobs``) works on a store this
        account may only read. SQLite reads a WAL store through a shared-memory file beside
        it (``-shm``), which a folder the account may not write cannot take."""
        uri = self.path.resolve().as_uri()
        conn = self._connect(f"{uri}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA user_version")
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if not _cannot_share(exc) or os.path.lexists(f"{self.path}-wal"):
                raise
        # No -wal beside it: no process has the store open to write (a WAL writer keeps its
        # -wal while it is open), so the file is read as it stands, without a -shm.
        return self._connect(f"{uri}?mode=ro&immutable=1", uri=True)

    def _refuse_long_name(self) -> None:
        """A name SQLite cannot put its journal beside: it would say only "unable to open
        database file" (after creating the file), or a raw "File name too long"."""
        size = len(os.fsencode(self.path.name))
        if size > MAX_STORE_NAME_BYTES:
            raise StoreError(
                f"{self.path}: the store's file name is {size} bytes long; SQLite keeps its "
                f"journal beside it as <name>-journal, so a store's name can be at most "
                f"{MAX_STORE_NAME_BYTES} bytes",
                hint="choose a shorter file name (--store, store.path or "
                "PREFORM_PIPELINE_STORE_PATH)",
            )

    def _refuse_not_a_file(self) -> None:
        """A folder, a device or a pipe is no job store; SQLite would call it a disk I/O error
        (or "unable to open"), and the advice that goes with those would not help."""
        where = "(--store, store.path or PREFORM_PIPELINE_STORE_PATH)"
        if self.path.is_dir():
            raise StoreError(
                f"{self.path}: is a folder, not a job store",
                hint=f"name the store's file itself {where}, e.g. "
                f"{self.path / DEFAULT_STORE_FILENAME}",
            )
        if not self.path.is_file():
            raise StoreError(
                f"{self.path}: is not a job store: not a regular file (a device, pipe or socket)",
                hint=f"name the job store's file {where}",
            )

    def _refuse_not_sqlite(self) -> None:
        """A file of other bytes is someone's file, not a store. SQLite reads one shorter than
        its 100-byte header as an empty database, and the open migrated it into a new store
        over those bytes (session 45's fuzzer); a longer one it calls "file is not a
        database" only once read. An empty file is left to become a store: nothing is in it
        to lose, and a store being created by another process is one for a moment."""
        try:
            with self.path.open("rb") as file:
                start = file.read(len(_SQLITE_HEADER))
        except OSError:
            return  # one this account may not read: SQLite's open says why
        if start and start != _SQLITE_HEADER:
            raise StoreError(
                f"{self.path}: is not a job store: it is not a SQLite database",
                hint="name the store's file (--store, store.path or "
                "PREFORM_PIPELINE_STORE_PATH); if this was the store, it is damaged: move it "
                "aside and restore a backup",
            )

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, version: int) -> None:
        if version < 0:
            # No version of this code writes one below 0: read as "older than every
            # migration", it had each applied again over the tables it has ("table builds
            # already exists", and a hint about disk space).
            raise StoreError(
                f"{self.path}: the job store has schema version {version}, which no "
                "preform-pipeline writes",
                hint=_DAMAGED_HINT,
            )
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
            if _disk_full(exc, self.path):
                raise StoreError(
                    f"{self.path}: the disk holding the job store is full (SQLite said "
                    f"{text!r} while {action})",
                    hint="free some space on that disk (SQLite needs room beside the file "
                    "for its journal), then try again; the store keeps what it had",
                ) from exc
            if "readonly" in text:
                raise _unwritable_error(self.path, action) from exc
            if "unable to open" in text and (unreadable := _unreadable(self.path)):
                raise _unreadable_error(self.path, unreadable) from exc
            if "unable to open" in text:
                raise _cannot_open_error(self.path, text) from exc
            raise StoreError(
                f"{self.path}: the job store failed while {action}: {text}",
                hint="check free disk space and permissions; see docs/jobs.md",
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a usable job store ({exc}) while {action}",
                hint=_DAMAGED_HINT,
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the job store is closed")
        return self._conn

    @contextmanager
    def _own_transaction(self, action: str, *, write: bool) -> Iterator[sqlite3.Connection]:
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

    def _stamp(self, moment: datetime) -> str:
        return iso_utc(moment)

    def _insert_id(self, conn: Connection, sql: str, values: Sequence[Any]) -> int | None:
        try:
            cursor = conn.execute(sql, values)
        except sqlite3.IntegrityError as exc:
            if _JOB_KEY_COLUMN_HINT in str(exc):
                return None  # a collision: the failed statement alone was undone
            raise
        assert isinstance(cursor, sqlite3.Cursor) and cursor.lastrowid is not None
        return cursor.lastrowid

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with self._errors("closing"):
                    conn.close()


    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SqliteJobStore({str(self.path)!r}, {state})"
