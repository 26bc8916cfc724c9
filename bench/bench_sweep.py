"""Benchmark: the daemon's start-up sweep of temporaries over a large done/ folder.

At each start the hot-folder daemon runs ``sweep_temporaries`` over processing/, done/ and
failed/ of every inbox, and done/ grows with every file ever printed. This measures one
sweep over a done/ holding ``--files`` finished files (a model and its ``.report.json``
each, in case folders of ``--per-folder`` models), with one leftover temporary of a dead
writer among them that the sweep must remove, on the machine's own disk (tmp dir).

    python bench/bench_sweep.py [--files 100000] [--per-folder 20] [--repeat 3]

Writes bench/results/sweep.json and bench/results/sweep.md (with the 1-minute load before and
after, and each run's time; the figure to read is the median).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from preform_pipeline.hotfolder.files import sweep_temporaries, temporary_path

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
#: A pid no process has (above the kernel's default pid_max of 4,194,304).
DEAD_PID = 4_999_999


def _fill(done: Path, files: int, per_folder: int) -> Path:
    """``files`` models with their reports in case folders; one dead writer's temporary."""
    for n in range(files):
        folder = done / f"case-{n // per_folder:06d}"
        if n % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"part-{n:06d}.stl").write_bytes(b"")
        (folder / f"part-{n:06d}.stl.report.json").write_bytes(b"{}")
    live = temporary_path(done / "case-000000" / "part-000000.stl.report.json", "tmp")
    dead = live.with_name(live.name.replace(f".{os.getpid()}-", f".{DEAD_PID}-"))
    dead.write_bytes(b"")
    return dead


def _load() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-folder", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    load_before = _load()
    runs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        done = Path(tmp) / "done"
        started = time.perf_counter()
        dead = _fill(done, args.files, args.per_folder)
        fill_s = time.perf_counter() - started
        for _ in range(args.repeat):
            if not dead.exists():
                dead.write_bytes(b"")
            started = time.perf_counter()
            removed = sweep_temporaries([done])
            runs.append(time.perf_counter() - started)
            assert removed == (dead,), removed
    result: dict[str, Any] = {
        "files": args.files, "entries": 2 * args.files + 1, "per_folder": args.per_folder,
        "fill_s": round(fill_s, 2), "sweep_s": [round(r, 3) for r in runs],
        "median_s": round(statistics.median(runs), 3),
        "load_1min_before": round(load_before, 2), "load_1min_after": round(_load(), 2),
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "sweep.md").write_text(
        "# Start-up sweep of temporaries over done/\n\n"
        f"`python bench/bench_sweep.py --files {args.files} --per-folder {args.per_folder} "
        f"--repeat {args.repeat}`: {result['entries']:,} entries in done/ "
        f"({args.files:,} models and their reports, {args.per_folder} per case folder).\n\n"
        f"Sweep times: {', '.join(f'{r:.2f} s' for r in runs)}; median "
        f"{result['median_s']:.2f} s. 1-minute load {result['load_1min_before']} before, "
        f"{result['load_1min_after']} after, {result['cpus']} CPUs.\n",
        encoding="utf-8",
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
