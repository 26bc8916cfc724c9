"""Move a SQLite job store into a PostgreSQL one, with its full history and audit trail.

The SQLite file is first brought to its newest schema (by opening it as a store), then read
table by table; every row goes into the (empty) PostgreSQL store in ONE transaction with its
own id, so job ids, build ids, job keys and the order of the audit trail are kept: a print
whose name carries a job key is still found afterwards. A failure leaves the target empty.
Afterwards the id sequences continue after the copied rows and the row counts are compared.

The Web API budget goes with it, in the same transaction: the requests of the last hour
(``web_api_requests``, sent after ``now`` less :data:`BUDGET_WINDOW_S`) and the holds that
have not ended (``web_api_holds``, a longer hold already in the target kept). A migration in
a busy hour then does not hand the new store's users a fresh 1,500 requests, nor let them
send before a Retry-After met on the old one. Older rows are not copied: nothing reads them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from preform_pipeline.errors import StoreError
from preform_pipeline.logging import get_logger
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.sqlcore import Connection, iso_utc
from preform_pipeline.store.sqlite import SqliteJobStore
from preform_pipeline.wording import counted

__all__ = ["BUDGET_WINDOW_S", "MigrationReport", "migrate_sqlite_to_postgres"]

log = get_logger(__name__)

#: Tables in the order their references need; each with the columns both schemas share.
_TABLES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("builds", ("id", "job_key", "recipe", "state", "server", "form_path", "print_job_id",
                "printer", "job_name", "verified_status", "verified_message", "reason",
                "created_at", "updated_at", "print_sent_at", "verified_at", "send_holder",
                "print_target", "waiting_since", "priority", "wait_notified_at",
                "approval", "full_disk")),
    ("jobs", ("id", "job_key", "recipe", "source_path", "original_name", "content_hash",
              "case_id", "priority", "fields", "state", "build_id", "reason", "attempts",
              "created_at", "updated_at", "print_job_id", "printer", "verified_status",
              "verified_message", "verified_at")),
    ("build_jobs", ("build_id", "job_id", "position")),
    ("transitions", ("id", "job_id", "build_id", "from_state", "to_state", "at", "reason")),
)
_WITH_IDS: Final = ("builds", "jobs", "transitions")
#: The Web API's budget window (an hour: 1,500 requests an hour per user, the limiter's
#: ``HOURLY_WINDOW_S``): requests older than that no longer count, so they are not copied.
BUDGET_WINDOW_S: Final = 3600.0


@dataclass(frozen=True)
class MigrationReport:
    """Rows copied per table (and found again in the target)."""

    source: Path
    target: str
    rows: Mapping[str, int]


def migrate_sqlite_to_postgres(
    source: Path, target: PostgresJobStore, *, now: datetime | None = None
) -> MigrationReport:
    """Copy every row of the SQLite store at ``source`` into the empty store ``target``, and
    the Web API budget still live at ``now`` (default: the target's clock)."""
    now = now if now is not None else target._clock.now()
    SqliteJobStore(source, create=False).close()  # brings the file to the newest schema
    try:
        # The path percent-encoded: read raw, a '#', '?' or '%' in a folder name would cut the
        # URI short (and open, or create, another file) or name a file that is not there.
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{source}: cannot read the store to migrate ({exc})") from exc
    reader.row_factory = sqlite3.Row
    counts: dict[str, int] = {}
    try:
        with target._transaction("migrating a SQLite store in", write=True) as conn:
            for table, _ in _TABLES:
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    raise StoreError(
                        f"{target.location}: the target store is not empty ({table} has rows)",
                        hint="migrate into a new, empty database; nothing was copied",
                    )
            for table, columns in _TABLES:
                marks = ", ".join("?" for _ in columns)
                insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                rows = reader.execute(
                    f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"
                ).fetchall()
                for row in rows:
                    conn.execute(insert, tuple(row))
                counts[table] = len(rows)
            for table in _WITH_IDS:
                # The next id continues after the copied ones (identity sequences do not).
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
            for table, _ in _TABLES:
                found = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]
                if found != counts[table]:
                    raise StoreError(f"{target.location}: {table} holds "
                                     f"{counted(found, 'row')} after the copy, expected "
                                     f"{counts[table]}; nothing was kept")
            counts |= _copy_budget(reader, conn, now)
    except sqlite3.Error as exc:
        raise StoreError(f"{source}: reading the store to migrate failed: {exc}") from exc
    finally:
        reader.close()
    log.info("store_copied", source=str(source), target=target.location, **counts)
    return MigrationReport(source=source, target=target.location, rows=counts)


def _copy_budget(reader: sqlite3.Connection, conn: Connection, now: datetime) -> dict[str, int]:
    """Copy the Web API requests of the window before ``now`` and the holds not ended at
    ``now``; how many of each. SQLite keeps these times as ISO text in UTC (one format),
    so they compare as text."""
    since = iso_utc(now - timedelta(seconds=BUDGET_WINDOW_S))
    requests = reader.execute(
        "SELECT account, sent_at FROM web_api_requests WHERE sent_at > ? ORDER BY id", (since,)
    ).fetchall()
    for row in requests:
        conn.execute("INSERT INTO web_api_requests (account, sent_at) VALUES (?, ?)",
                     (row["account"], datetime.fromisoformat(row["sent_at"])))
    holds = reader.execute(
        "SELECT account, until FROM web_api_holds WHERE until > ? ORDER BY account",
        (iso_utc(now),),
    ).fetchall()
    for row in holds:
        # A node already spending on the target may hold longer: the longer hold stays.
        conn.execute(
            "INSERT INTO web_api_holds (account, until) VALUES (?, ?) ON CONFLICT (account) "
            "DO UPDATE SET until = GREATEST(web_api_holds.until, excluded.until)",
            (row["account"], datetime.fromisoformat(row["until"])),
        )
    return {"web_api_requests": len(requests), "web_api_holds": len(holds)}
