"""Benchmark: what a native inbox's watch costs while the daemon's own work goes on in its
outcome folders (hotfolder/watcher.py).

A native :class:`InboxWatcher` watches an inbox holding ``processing/``, ``done/`` and
``failed/``. N files are moved in at once (a drop); once all are reported, each is handled the
way the daemon handles a file it takes and settles, with no daemon: read three times (its
completeness, its hash), moved into ``processing/<key>/``, then into ``done/`` beside a report
written as :func:`~preform_pipeline.hotfolder.files.write_text_atomic` writes one. Then one
more file is dropped, and the run ends when it is reported (watchdog hands events over in
order). Recorded: the events watchdog hands the watcher's handlers, the process's CPU (every
thread: watchdog's reader, emitter and dispatcher are most of it) and the wall time, from the
drop to the last file reported.

The inbox is watched recursively, outcome folders included; since session 45 the watch asks
watchdog only for the kinds of event the handler reports (``event_filter``), so the daemon's
reads cost no event and its moves in the outcome folders fewer.

    python bench/bench_watch_events.py [--repeat 3] [--files 1000] [--output watch_events]

Results: bench/results/<output>.json and .md. The numbers before the change came from the same
script run on the package with watcher.py as it was (``git show``), with another ``--output``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_support import run_facts, run_line, timed_run_args, write_results
from preform_pipeline.hotfolder import watcher as watcher_module
from preform_pipeline.hotfolder.files import write_text_atomic
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, wait_for
from preform_pipeline.hotfolder.watcher import InboxWatcher, WatchRoot

__all__ = ["main"]

DEFAULT_FILES = 1000
DEFAULT_REPEAT = 3
OUTCOME_FOLDERS = frozenset({"processing", "done", "failed"})
WAIT_S = 300.0


class Reported:
    """The paths reported to the daemon's seam, and the events handed to the handlers."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.events = 0
        self.lock = threading.Lock()

    def __call__(self, path: Path) -> None:
        with self.lock:
            self.paths.add(path)

    def has_all(self, paths: list[Path]) -> bool:
        with self.lock:
            return self.paths.issuperset(paths)


def one_run(folder: Path, files: int) -> dict[str, float]:
    inbox, staging = folder / "inbox", folder / "staging"
    for name in OUTCOME_FOLDERS:
        (inbox / name).mkdir(parents=True)
    staging.mkdir()
    names = [f"p{n:04d}.stl" for n in range(files)]
    for n, name in enumerate(names):
        (staging / name).write_bytes(tetra_stl_bytes(n))
    reported = Reported()
    dispatch = watcher_module._Handler.dispatch

    def counted(handler: Any, event: Any) -> None:
        with reported.lock:
            reported.events += 1
        dispatch(handler, event)

    watcher_module._Handler.dispatch = counted  # type: ignore[method-assign]
    watcher = InboxWatcher([WatchRoot(inbox, "native", reserved=OUTCOME_FOLDERS)], reported)
    watcher.start()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for name in names:
            (staging / name).rename(inbox / name)
        wait_for(lambda: reported.has_all([inbox / n for n in names]), WAIT_S,
                 what="every drop reported")
        for n, name in enumerate(names):
            for _ in range(3):
                (inbox / name).read_bytes()
            taken = inbox / "processing" / f"job-{n:04d}" / name
            taken.parent.mkdir()
            (inbox / name).rename(taken)
            taken.rename(inbox / "done" / name)
            taken.parent.rmdir()
            write_text_atomic(inbox / "done" / f"{name}.report.json", "{}\n")
        last = inbox / "last.stl"
        last.write_bytes(tetra_stl_bytes())
        wait_for(lambda: reported.has_all([last]), WAIT_S, what="the last drop reported")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        watcher.stop()
        watcher_module._Handler.dispatch = dispatch  # type: ignore[method-assign]
    return {"events": reported.events, "cpu_s": cpu, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    args = timed_run_args(argv, __doc__ or "", "watch_events", DEFAULT_REPEAT,
                          files=DEFAULT_FILES)
    files: int = args.files
    result: dict[str, Any] = {**run_facts(), "files": files, "runs": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="pp-bench-watch-") as folder:
            result["runs"].append(one_run(Path(folder), files))
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["load_after"] = round(os.getloadavg()[0], 2)
    runs = result["runs"]
    lines = [
        f"# A native inbox's watch while {files} files are taken and settled",
        "",
        run_line(result, f"python bench/bench_watch_events.py --repeat {args.repeat} "
                         f"--files {files}"),
        "",
        "| run | events to the handlers | events a file | CPU (all threads) | wall |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {i + 1} | {r['events']} | {r['events'] / files:.1f} | "
          f"{r['cpu_s']:.2f} s | {r['wall_s']:.2f} s |" for i, r in enumerate(runs)),
        f"| median | {statistics.median(r['events'] for r in runs):.0f} | | "
        f"{statistics.median(r['cpu_s'] for r in runs):.2f} s | "
        f"{statistics.median(r['wall_s'] for r in runs):.2f} s |",
    ]
    write_results(args.output, result, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
