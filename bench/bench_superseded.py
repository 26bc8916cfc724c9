"""Benchmark: the superseded check (store/superseded.py) on 300 and 3,000 failed jobs,
SQLite and PostgreSQL.

Every refresh of Failed cases, of the queue and History showing Failed, and every scrape of
``/metrics`` asks :func:`~preform_pipeline.store.superseded.superseded` which of the failed
jobs read a later job of the same recipe and file printed. Until session 35 it asked the
store once per distinct (file digest, recipe): 300 failed jobs of 300 files were 300 round
trips. This fills a store with N failed jobs of N distinct files (every third one printed
later by a job of its own, as a killed run's next run does), reads the failed jobs once, and
times the check alone, counting the statements it runs through the stores' ``on_statement``
seam:

- a SQLite job store (a file in a temporary folder);
- PostgreSQL as the test clusters run it (``tests/pg_cluster.py``), over loopback TCP.

    python bench/bench_superseded.py [--repeat 10] [--output superseded]

Writes bench/results/<output>.json and .md. To measure the code before a change, run it with
the package's change reverted in the work tree and another ``--output``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_support import pg_store, run_facts, run_line, timed_run_args, write_results
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.store.superseded import superseded

__all__ = ["check_table", "fill", "main", "measure"]

SIZES = (300, 3000)
DEFAULT_REPEAT = 10
S = JobState


def fill(store: JobStore, failed: int) -> int:
    """``failed`` failed jobs of as many files; every third file printed later (done).
    Returns how many of the failed jobs a later one put right."""
    put_right = 0
    for n in range(failed):
        job = store.create_job(recipe="crowns", source_path=f"/models/m{n}.stl",
                               content_hash=f"digest-{n}", state=S.PROCESSING)
        store.transition(job.id, S.FAILED, "its run died before printing it")
    for n in range(0, failed, 3):
        job = store.create_job(recipe="crowns", source_path=f"/models/m{n}.stl",
                               content_hash=f"digest-{n}", state=S.PROCESSING)
        build = store.create_build(recipe="crowns", job_ids=[job.id])
        for step in (S.PREPARING, S.PREPARED, S.DONE):
            store.transition_build(build.id, step, "bench")
        put_right += 1
    return put_right


def measure(store: JobStore, statements: list[str], repeat: int) -> dict[str, Any]:
    failed = store.list_jobs(state=frozenset({S.FAILED}))
    superseded(store, failed)  # untimed: the first answer
    times: list[float] = []
    counts: set[int] = set()
    found = 0
    for _ in range(repeat):
        statements.clear()
        began = time.perf_counter()
        found = len(superseded(store, failed))
        times.append(time.perf_counter() - began)
        counts.add(sum(1 for s in statements if s.lstrip().upper().startswith("SELECT")))
    ordered = sorted(times)
    return {"failed": len(failed), "superseded": found,
            "mean_ms": round(statistics.fmean(times) * 1000, 2),
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
            "min_ms": round(ordered[0] * 1000, 2),
            "selects": sorted(counts)}


def main(argv: list[str] | None = None) -> int:
    args = timed_run_args(argv, __doc__ or "", "superseded", DEFAULT_REPEAT)
    facts = run_facts()
    rows = []
    for size in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            statements: list[str] = []
            with SqliteJobStore(Path(folder) / "jobs.sqlite3",
                                on_statement=statements.append) as sqlite:
                fill(sqlite, size)
                rows.append({"store": "SQLite (local file)",
                             **measure(sqlite, statements, args.repeat)})
        statements = []
        with pg_store(f"superseded{size}", on_statement=statements.append) as pg:
            fill(pg, size)
            rows.append({"store": "PostgreSQL, loopback, test cluster",
                         **measure(pg, statements, args.repeat)})
    result = {
        **facts,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_after": round(os.getloadavg()[0], 2),
        "repeat": args.repeat,
        "rows": rows,
    }
    write_results(args.output, result, [
        "# The superseded check on 300 and 3,000 failed jobs",
        "",
        run_line(result, f"python bench/bench_superseded.py --output {args.output}"),
        "",
        f"{args.repeat} timed calls of `superseded(store, failed)` on the failed jobs read "
        "once (N files, every third printed later), after one untimed. Times in ms.",
        "",
        *check_table(rows),
    ])
    return 0


def check_table(rows: list[dict[str, Any]], leading: tuple[str, ...] = ("store",)
                ) -> list[str]:
    """The Markdown table of :func:`measure`'s rows, after the columns ``leading`` names."""
    columns = (*leading, "failed", "superseded", "mean_ms", "p50_ms", "min_ms", "selects")
    heads = {"mean_ms": "mean", "p50_ms": "p50", "min_ms": "min", "selects": "SELECTs a check"}
    return [
        "| " + " | ".join(heads.get(c, c) for c in columns) + " |",
        "|" + "---|" * len(leading) + "---:|" * 5 + "---|",
        *("| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
