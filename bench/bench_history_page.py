"""Benchmark: the dashboard's History page on a store of 300 cases, SQLite and PostgreSQL.

The page shows 60 cases with each job's audit trail. Until session 30 it read the trails
with one store call per job (two statements and a transaction each); it now reads a page's
trails in one statement (``JobStore.histories``). This serves the real dashboard
(:class:`~preform_pipeline.web.WebServer`, uvicorn on 127.0.0.1) on a store filled with 300
cases (one to three files each, four to seven transitions per job), and times ``GET /history``
as a viewer (the first request untimed), counting the statements each page runs through the
stores' ``on_statement`` seam:

- a SQLite job store (a file in a temporary folder);
- PostgreSQL as the test clusters run it (``tests/pg_cluster.py``), over loopback TCP.

    python bench/bench_history_page.py [--pages 40] [--cases 300] [--query state=failed]
                                       [--follow 19] [--output history_page]

``--follow N`` times the page reached by following the Older link N times from the query's
page (untimed), as a person paging back does: since session 36 that link carries the key of
the case it follows, and the page reads only its own cases.

Every file has its own content (a digest), and every seventh case's failures were put right
by a later job of the same case (``done``, the same file and recipe): superseded failures
(store/superseded.py), which a filtered page leaves out (session 35).

Writes bench/results/<output>.json and .md. To measure the code before a change, run it with
the package's change reverted in the work tree and another ``--output``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.bench_support import pg_store, results_path
from preform_pipeline.logging import configure_logging
from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.web import WebServer

__all__ = ["main"]

CASES = 300
DEFAULT_PAGES = 40
SECRET = "bench-history-secret"
AUTH = {"Authorization": f"Bearer viewer:{SECRET}"}
S = JobState


def fill(store: JobStore, cases: int = CASES) -> int:
    """``cases`` cases of one to three files; each job queued, taken (every fifth case's jobs
    failed, retried and taken again), then failed or cancelled; every seventh case's failed
    jobs then put right by a later job of the case (superseded). Returns the number of jobs."""
    jobs = 0
    for n in range(cases):
        for f in range(1 + n % 3):
            job = store.create_job(recipe="crowns", source_path=f"/hot/inbox/C-{n}/{f}.stl",
                                   content_hash=f"d-{n}-{f}", case_id=f"C-{n}")
            store.transition(job.id, S.QUEUED, "stable")
            store.transition(job.id, S.PROCESSING, "taken")
            if n % 5 == 0:
                store.transition(job.id, S.FAILED, "server lost")
                store.transition(job.id, S.QUEUED, "retried")
                store.transition(job.id, S.PROCESSING, "taken again")
            store.transition(job.id, S.FAILED if n % 2 else S.CANCELLED, "done with it")
            jobs += 1
            if n % 7 == 0 and n % 2:
                again = store.create_job(recipe="crowns", source_path=job.source_path,
                                         content_hash=job.content_hash, case_id=job.case_id,
                                         state=S.PROCESSING)
                for step in (S.PREPARING, S.PREPARED, S.DONE):
                    store.transition(again.id, step, "prepared again")
                jobs += 1
    return jobs


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
    }


def _followed(client: httpx.Client, path: str, follow: int) -> str:
    """The page ``follow`` Older links from ``path``."""
    for _ in range(follow):
        page = client.get(path).text
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        assert found, f"no Older link on {path}"
        path = html.unescape(found.group(1))
    return path


def measure(store: JobStore, statements: list[str], pages: int, path: str = "/history",
            follow: int = 0) -> dict[str, Any]:
    users = (WebUser("viewer", "viewer", hash_secret(SECRET)),)
    server = WebServer(store, WebSettings(port=0, users=users))
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60.0) as client:
            path = _followed(client, path, follow)
            assert client.get(path).status_code == 200  # untimed: the first answer
            times: list[float] = []
            counts: list[int] = []
            for _ in range(pages):
                statements.clear()
                began = time.perf_counter()
                answer = client.get(path)
                times.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.text[-300:]
                counts.append(len(statements))
    finally:
        server.stop()
    return {**_ms(times), "statements_per_page": sorted(set(counts)),
            "transactions_per_page": sum(1 for s in statements if s.upper().startswith("BEGIN"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES)
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--query", default="", help="the page's query, e.g. state=failed")
    parser.add_argument("--follow", type=int, default=0,
                        help="time the page this many Older links on")
    parser.add_argument("--output", default="history_page")
    args = parser.parse_args(argv)
    path = f"/history?{args.query}" if args.query else "/history"
    configure_logging(level="WARNING")
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False, cwd=Path(__file__).parent).stdout.strip()
    load_before = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        statements: list[str] = []
        with SqliteJobStore(Path(folder) / "jobs.sqlite3",
                            on_statement=statements.append) as sqlite:
            jobs = fill(sqlite, args.cases)
            rows.append({"store": "SQLite (local file)", "jobs": jobs,
                         **measure(sqlite, statements, args.pages, path, args.follow)})
    statements = []
    with pg_store("history", on_statement=statements.append) as pg:
        jobs = fill(pg, args.cases)
        rows.append({"store": "PostgreSQL, loopback, test cluster", "jobs": jobs,
                     **measure(pg, statements, args.pages, path, args.follow)})
    result = {
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "cases": args.cases,
        "path": path,
        "follow": args.follow,
        "pages": args.pages,
        "rows": rows,
    }
    results_path(args.output, ".json").write_text(json.dumps(result, indent=2) + "\n",
                                                  encoding="utf-8")
    lines = [
        f"# The History page on a store of {args.cases} cases: `GET {path}`",
        "",
        f"{started} to {result['finished']} UTC, `{commit}`, {result['machine']}, 1-minute "
        f"load {result['load_1min'][0]} before, {result['load_1min'][1]} after; Python "
        f"{result['python']}. `python bench/bench_history_page.py --cases {args.cases}"
        f"{f' --query {args.query}' if args.query else ''}"
        f"{f' --follow {args.follow}' if args.follow else ''} --output {args.output}`.",
        "",
        f"{args.pages} timed `GET {path}`"
        f"{f' then {args.follow} Older links on' if args.follow else ''} (60 cases a page) "
        "by a viewer over HTTP on 127.0.0.1, after one untimed. Times in ms.",
        "",
        "| store | jobs | mean | p50 | p90 | min | statements a page | transactions a page |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['store']} | {row['jobs']} | {row['mean_ms']} | {row['p50_ms']} | "
                     f"{row['p90_ms']} | {row['min_ms']} | {row['statements_per_page']} | "
                     f"{row['transactions_per_page']} |")
    lines.append("")
    results_path(args.output, ".md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
