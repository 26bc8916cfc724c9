"""Benchmark: the superseded check (store/superseded.py) of a page of failed case jobs in a
store of 50,000 jobs, with and without the index on a job's case (``jobs_case_id``: SQLite
schema version 11, PostgreSQL 13, session 48), SQLite and PostgreSQL.

The check asks the store for every later job of the failed jobs' cases
(``find_by_cases``: ``case_id IN (...)`` in some states). Without an index of the case the
database reads the jobs of those states (nearly all of them: most jobs end ``done``) or the
whole table. This fills a store made by this code with 50,000 jobs of 10,000 cases of five
files each, 300 of them failed and every third failed one printed again later (a new export:
another digest, the same case and file), reads the failed jobs once, and times the check
(``bench_superseded.measure``) with the index, then with it dropped:

- a SQLite job store (a file in a temporary folder);
- PostgreSQL as the test clusters run it (``tests/pg_cluster.py``), over loopback TCP
  (``ANALYZE`` run after the fill and after the drop, as autovacuum would).

    python bench/bench_case_lookup.py [--repeat 10] [--output case_lookup]

Writes bench/results/<output>.json and .md.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_superseded import check_table, measure
from bench.bench_support import pg_store, run_facts, run_line, timed_run_args, write_results
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.store.superseded import SUPERSEDING_STATES

__all__ = ["main"]

JOBS = 50_000
#: One job in this many failed: 302 of 50,000.
FAILED_EVERY = 166
DEFAULT_REPEAT = 10

#: The jobs, in one statement both databases run (``?``: the moment they were made).
_FILL = (
    "INSERT INTO jobs (job_key, recipe, source_path, original_name, content_hash, case_id, "
    "state, created_at, updated_at) "
    "SELECT 'k' || n, 'crowns', '/in/C-' || (n / 5) || '/m' || (n % 5) || '.stl', "
    "'m' || (n % 5) || '.stl', 'd-' || n, 'C-' || (n / 5), "
    f"CASE WHEN n % {FAILED_EVERY} = 0 THEN 'failed' ELSE 'done' END, ?, ? FROM numbers"
)
#: Every third failed job's file exported again and printed, later (a larger id).
_AGAIN = (
    "INSERT INTO jobs (job_key, recipe, source_path, original_name, content_hash, case_id, "
    "state, created_at, updated_at) "
    "SELECT job_key || '-again', recipe, source_path, original_name, content_hash || '-again', "
    "case_id, 'done', created_at, updated_at FROM jobs WHERE state = 'failed' AND id % 3 = 1"
)
_NUMBERS = {
    "sqlite": f"WITH RECURSIVE numbers(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM numbers "
              f"WHERE n < {JOBS - 1}) ",
    "postgresql": f"WITH numbers(n) AS (SELECT generate_series(0, {JOBS - 1})) ",
}
_AT = "2026-12-07T10:00:00+00:00"


def fill_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(_FILL.replace("SELECT 'k'", _NUMBERS["sqlite"] + "SELECT 'k'", 1),
                     (_AT, _AT))
        conn.execute(_AGAIN)


def fill_postgres(url: str, password: str) -> Callable[[str], None]:
    """Fills the database; returns a way to run one more statement (and ANALYZE) there."""
    import psycopg

    with psycopg.connect(url, password=password, autocommit=True) as conn:
        conn.execute(_FILL.replace("%", "%%").replace("?", "%s").replace(
            "SELECT 'k'", _NUMBERS["postgresql"] + "SELECT 'k'", 1), (_AT, _AT))
        conn.execute(_AGAIN)
        conn.execute("ANALYZE jobs")

    def run(statement: str) -> None:
        with psycopg.connect(url, password=password, autocommit=True) as conn:
            conn.execute(statement)
            conn.execute("ANALYZE jobs")

    return run


def lookup(store: JobStore) -> tuple[str, list[str]]:
    """The statement ``find_by_cases`` sends for the failed jobs' cases (its first part, of
    at most 200 cases, with the values written in: both databases plan it alike) ."""
    cases = sorted({job.case_id for job in store.list_jobs(state=frozenset({JobState.FAILED}))
                    if job.case_id})[:200]
    states = sorted(state.value for state in SUPERSEDING_STATES)
    listed = ", ".join
    return (f"SELECT * FROM jobs WHERE state IN ({listed(repr(s) for s in states)}) "
            f"AND case_id IN ({listed(repr(c) for c in cases)})", cases)


def timed_sql(execute: Callable[[str], list[Any]], sql: str, repeat: int) -> dict[str, Any]:
    """The statement alone, ``repeat`` times after one untimed: the database's part."""
    rows = execute(sql)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        execute(sql)
        times.append(time.perf_counter() - began)
    return {"sql_rows": len(rows), "sql_p50_ms": round(statistics.median(times) * 1000, 2),
            "plan": " / ".join(_node(str(row[-1])) for row in execute(f"EXPLAIN {sql}")
                               if "SCAN" in str(row[-1]).upper()
                               or "SEARCH" in str(row[-1]))}


def _node(line: str) -> str:
    """A plan's line without its costs (PostgreSQL's ``(cost=...)``)."""
    return line.split("  (cost=")[0].strip().removeprefix("->  ")


def both(store: JobStore, statements: list[str], repeat: int, drop: Callable[[], None],
         execute: Callable[[str], list[Any]]) -> list[dict[str, Any]]:
    """The check, and its lookup's statement alone, with the index, then without it."""
    sql, _ = lookup(store)
    rows = [{"index": "jobs_case_id", **measure(store, statements, repeat),
             **timed_sql(execute, sql, repeat)}]
    drop()
    rows.append({"index": "none (before session 48)", **measure(store, statements, repeat),
                 **timed_sql(execute, sql, repeat)})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = timed_run_args(argv, __doc__ or "", "case_lookup", DEFAULT_REPEAT)
    facts = run_facts()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "jobs.sqlite3"
        SqliteJobStore(path).close()  # the schema this code makes
        fill_sqlite(path)
        statements: list[str] = []
        with SqliteJobStore(path, on_statement=statements.append) as sqlite:

            def drop_sqlite() -> None:
                with closing(sqlite3.connect(path)) as conn:
                    conn.execute("DROP INDEX jobs_case_id")

            def execute_sqlite(sql: str) -> list[Any]:
                with closing(sqlite3.connect(path)) as conn:
                    return conn.execute(sql.replace("EXPLAIN ", "EXPLAIN QUERY PLAN ")
                                        ).fetchall()

            rows += [{"store": "SQLite (local file)", **row}
                     for row in both(sqlite, statements, args.repeat, drop_sqlite,
                                     execute_sqlite)]
    from tests.pg_cluster import PG_PASSWORD

    statements = []
    with pg_store("case_lookup", on_statement=statements.append) as pg:
        run = fill_postgres(pg.url, PG_PASSWORD)
        import psycopg

        with psycopg.connect(pg.url, password=PG_PASSWORD, autocommit=True) as conn:

            def execute_pg(sql: str) -> list[Any]:
                return conn.execute(sql.replace("%", "%%")).fetchall()

            rows += [{"store": "PostgreSQL, loopback, test cluster", **row}
                     for row in both(pg, statements, args.repeat,
                                     lambda: run("DROP INDEX jobs_case_id"), execute_pg)]
    result = {
        **facts,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_after": round(os.getloadavg()[0], 2),
        "cpu_s": round(sum(os.times()[:2]), 2),
        "repeat": args.repeat,
        "jobs": JOBS,
        "rows": rows,
    }
    write_results(args.output, result, [
        f"# The superseded check of a page of failed case jobs among {JOBS:,} jobs",
        "",
        run_line(result, f"python bench/bench_case_lookup.py --output {args.output}"),
        "",
        f"{args.repeat} timed calls of `superseded(store, failed)` on the failed jobs read "
        "once, after one untimed, with the index on a job's case and after it was dropped. "
        "Times in ms.",
        "",
        *check_table(rows, ("store", "index")),
        "",
        "The lookup's statement alone (its first part: 200 cases), p50 in ms, and the plan:",
        "",
        "| store | index | rows | p50 | plan |",
        "|---|---|---:|---:|---|",
        *(f"| {row['store']} | {row['index']} | {row['sql_rows']} | {row['sql_p50_ms']} | "
          f"{row['plan']} |" for row in rows),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
