"""Benchmark: what the shared Web API budget's store write adds to each Web API request.

Since session 28 every Web API request is counted in the job store before it is sent
(``spend_web_request``: one write transaction, the advisory write lock on PostgreSQL), so that
every process and node using the store spends one hourly budget. This measures that write
where a farm has it: on PostgreSQL over loopback TCP.

An hour's worth of requests, 1,200 (the default 80 % share of the account's 1,500 an hour),
is sent by a real :class:`~preform_pipeline.cloud.WebApiClient` (made as ``make_web_client``
makes it) to the Dashboard simulator over real HTTP on 127.0.0.1 (``GET /printers/``), once
per ledger:

- none (the process's own budget, as before session 28);
- a SQLite job store (a file in a temporary folder);
- PostgreSQL as the test clusters run it (``tests/pg_cluster.py``: fsync, full page writes
  and synchronous commit off);
- PostgreSQL with the durability a production server has (fsync, full page writes and
  synchronous commit on; the same machine and disk).

Each run times every request (``perf_counter``, the client's whole call) and, on a fresh
account, 1,200 calls of ``spend_web_request`` alone (the store write, without HTTP). The
limiter's clock is a :class:`ManualClock`, so its per-second pacing costs no real time: the
figures are the work, not the waits.

    python bench/bench_web_budget_store.py [--requests 1200] [--output web_budget_store]

Writes bench/results/web_budget_store.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_support import results_path
from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.cloud.ratelimit import HOURLY_WINDOW_S, RequestLedger
from preform_pipeline.logging import configure_logging
from preform_pipeline.settings import CloudSettings
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster

__all__ = ["main"]

DEFAULT_REQUESTS = 1200
SECRET = "bench-budget-secret"
#: The whole account's hour, so the 1,200 requests never wait for the budget itself.
SHARE = 1.0


class DurableCluster(PgCluster):
    """The test cluster with a production server's durability: every commit flushed."""

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c fsync=on "
                   "-c full_page_writes=on -c synchronous_commit=on -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
                  "-t", "60", "-w", "start")


@dataclass(frozen=True)
class Ledger:
    name: str
    open: Callable[[], Any]


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3)

    return {"mean_ms": round(statistics.fmean(values) * 1000, 3), "p50_ms": at(0.50),
            "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 3),
            "total_s": round(sum(values), 3)}


def _client_run(folder: Path, ledger: RequestLedger | None, requests: int) -> dict[str, Any]:
    """``requests`` real requests through a client with ``ledger``; each one timed."""
    clock = ManualClock()
    fleet = folder / "fleet"
    fleet.mkdir(exist_ok=True)
    with dashboard_server(fleet, clock=clock, credentials=Credentials(TEST_CLIENT_ID, SECRET),
                          hourly_limit=requests * 10, per_second_limit=requests * 10) as dash:
        cloud = CloudSettings(base_url=dash.url, hourly_budget_share=SHARE)
        with make_web_client(cloud, Credentials(TEST_CLIENT_ID, SECRET), clock=clock,
                             sleep=clock.sleep, ledger=ledger) as client:
            client.list_printers()  # the token, and the connection, before the timing
            times: list[float] = []
            for _ in range(requests - 1):
                started = time.perf_counter()
                client.list_printers()
                times.append(time.perf_counter() - started)
                clock.advance(0.05)  # the limiter's per-second pacing, without the wait
            spent = client.budget().spent
        dash.check()
    return {**_ms(times), "requests_timed": len(times), "budget_spent": spent}


def _write_run(ledger: RequestLedger, requests: int) -> dict[str, Any]:
    """``spend_web_request`` alone, ``requests`` times on a fresh account."""
    clock = ManualClock()
    times: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        wait, _why, _spent = ledger.spend_web_request("bench:writes", limit=requests,
                                                      now=clock.now(),
                                                      window_s=HOURLY_WINDOW_S)
        times.append(time.perf_counter() - started)
        assert wait == 0.0
        clock.advance(3600.0 / requests)
    refused = ledger.spend_web_request("bench:writes", limit=requests,
                                       now=clock.now() - timedelta(seconds=1),
                                       window_s=HOURLY_WINDOW_S)
    return {**_ms(times), "writes": len(times), "next_refused": refused[0] > 0}


@contextmanager
def _postgres(cluster_type: type[PgCluster], name: str) -> Iterator[PostgresJobStore]:
    cluster = cluster_type.create()
    try:
        url = cluster.create_database(name)
        with PostgresJobStore(url, password=PG_PASSWORD) as store:
            yield store
    finally:
        cluster.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--output", default="web_budget_store")
    args = parser.parse_args(argv)
    configure_logging(level="ERROR")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-web-budget-") as tmp:
        folder = Path(tmp)
        rows.append({"ledger": "none (the process's own budget)",
                     "client": _client_run(folder, None, args.requests), "write": None})
        with SqliteJobStore(folder / "jobs.sqlite3") as sqlite_store:
            rows.append({"ledger": "SQLite job store (local file)",
                         "client": _client_run(folder, sqlite_store, args.requests),
                         "write": _write_run(sqlite_store, args.requests)})
        for cluster_type, label in (
            (PgCluster, "PostgreSQL, loopback, test cluster (fsync, synchronous_commit off)"),
            (DurableCluster, "PostgreSQL, loopback, durable (fsync, synchronous_commit on)"),
        ):
            with _postgres(cluster_type, "budget") as pg:
                rows.append({"ledger": label,
                             "client": _client_run(folder, pg, args.requests),
                             "write": _write_run(pg, args.requests)})
    base = rows[0]["client"]["mean_ms"]
    for row in rows:
        row["added_mean_ms"] = round(row["client"]["mean_ms"] - base, 3)
    result = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "requests": args.requests,
        "rows": rows,
    }
    json_path = results_path(args.output, ".json")
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# The shared Web API budget's store write, per request",
        "",
        f"{result['started']} to {result['finished']}, {result['machine']}, 1-minute load "
        f"{result['load_1min'][0]} before, {result['load_1min'][1]} after; Python "
        f"{result['python']}. `python bench/bench_web_budget_store.py` (defaults).",
        "",
        f"{args.requests} requests (`GET /printers/`, the first untimed: token and "
        "connection) by a real client to the Dashboard simulator on 127.0.0.1, once per "
        "ledger; then the store write (`spend_web_request`) alone, as many times on a fresh "
        "account. Times in ms.",
        "",
        "| ledger | request mean | p50 | p95 | p99 | added to the mean | write mean | "
        "write p50 | write p95 | write p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        c, w = row["client"], row["write"]
        write = (f"{w['mean_ms']} | {w['p50_ms']} | {w['p95_ms']} | {w['p99_ms']}"
                 if w else "- | - | - | -")
        lines.append(f"| {row['ledger']} | {c['mean_ms']} | {c['p50_ms']} | {c['p95_ms']} | "
                     f"{c['p99_ms']} | {row['added_mean_ms']:+} | {write} |")
    lines += ["", "Each ledger's budget counted every request (`budget_spent` in the JSON), and "
              "the write after the last was refused for the hour (`next_refused`).", ""]
    md_path = results_path(args.output, ".md")
    md_path.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
