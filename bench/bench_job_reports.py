"""Benchmark: settling a prepared build's files into done/, each beside its JSON report, for
builds of 84 and 250 files (hotfolder/outcomes.py).

Each file's report quotes the whole build's outcome (its models, source files, outputs...),
indented, and :mod:`json`'s indented encoder is pure Python. Until session 45 the outcome was
encoded once per report: a build of n files cost n x n. This makes a SQLite job store (a file
in a temporary folder) and an inbox whose processing/ holds a prepared build of N files, then
times :meth:`OutcomeFolders.settle_build` (moves, reports, store writes: all of it), the CPU
of the settling thread and the wall time.

    python bench/bench_job_reports.py [--repeat 3] [--output job_reports]

Results: bench/results/<output>.json and .md. The numbers before the change came from the same
script run on the package with outcomes.py as it was (``git show``), with another ``--output``.
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

from bench.bench_support import run_facts, run_line, timed_run_args, write_results
from preform_pipeline.executor import BuildOutcome, BuildStatus
from preform_pipeline.hotfolder.intake import Intake, JobPlace
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.settings import HotFolderSettings
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Build, JobState, SqliteJobStore
from preform_pipeline.store.fields import HOTFOLDER_FIELD

__all__ = ["main"]

SIZES = (84, 250)
DEFAULT_REPEAT = 3


def prepared(store: SqliteJobStore, inbox: Path, count: int) -> tuple[Build, BuildOutcome]:
    """A prepared build of ``count`` files in ``inbox``'s processing/, and its run's outcome."""
    names = [f"crown-{n:04d}.stl" for n in range(count)]
    job_ids = []
    for name in names:
        job = store.create_job(recipe="crowns", source_path=inbox / name,
                               state=JobState.PROCESSING,
                               fields={HOTFOLDER_FIELD: JobPlace(inbox, name).to_json()})
        path = inbox / "processing" / job.job_key / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"solid crown\nendsolid crown\n")
        store.update_job(job.id, source_path=str(path))
        job_ids.append(job.id)
    build = store.create_build(recipe="crowns", job_ids=job_ids)
    for state in (JobState.PREPARING, JobState.PREPARED, JobState.DONE):
        build = store.transition_build(build.id, state, "bench")
    outcome = BuildOutcome(
        name=build.job_key, index=1, status=BuildStatus.SUCCEEDED,
        models=tuple(Path(n).stem for n in names), source_files=tuple(names),
        steps_done=("import_models", "auto_layout", "save_form"),
        outputs=(inbox.parent / "out" / f"{build.job_key}.form",),
        case_ids=tuple(f"C-{n}" for n in range(count)), units=tuple(names),
    )
    return build, outcome


def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        inbox = InboxSettings(path=Path(folder) / "inbox")
        for kind in ("processing", "done", "failed"):
            inbox.folder(kind).mkdir(parents=True)
        hot = HotFolderSettings(inboxes=(inbox,))
        with SqliteJobStore(Path(folder) / "jobs.sqlite3") as store:
            build, outcome = prepared(store, inbox.path, count)
            outcomes = OutcomeFolders(store, Intake(store, hot.inboxes), hot)
            began, cpu = time.perf_counter(), time.thread_time()
            outcomes.settle_build(build, outcome)
            return {"cpu_s": time.thread_time() - cpu, "wall_s": time.perf_counter() - began}


def main(argv: list[str] | None = None) -> int:
    args = timed_run_args(argv, __doc__ or "", "job_reports", DEFAULT_REPEAT)
    facts = run_facts()
    rows: list[dict[str, Any]] = []
    for size in SIZES:
        runs = [measure(size) for _ in range(args.repeat)]
        cpu_ms = statistics.median(r["cpu_s"] for r in runs) * 1000
        rows.append({"files": size, "cpu_ms_median": round(cpu_ms, 1),
                     "cpu_ms_per_file": round(cpu_ms / size, 2),
                     "wall_ms_median": round(statistics.median(r["wall_s"] for r in runs) * 1000,
                                             1)})
    result = {**facts, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_after": round(os.getloadavg()[0], 2), "repeat": args.repeat, "rows": rows}
    write_results(args.output, result, [
        "# Settling a build's files into done/ with their reports", "",
        run_line(result, f"python bench/bench_job_reports.py --output {args.output}"), "",
        f"Median of {args.repeat} settles of a fresh prepared build (SQLite store, local "
        "disk): the settling thread's CPU and the wall time, in ms.", "",
        "| files | CPU | CPU a file | wall |", "|---:|---:|---:|---:|",
        *(f"| {r['files']} | {r['cpu_ms_median']} | {r['cpu_ms_per_file']} | "
          f"{r['wall_ms_median']} |" for r in rows),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
