"""Where the final build's time goes on several servers: its wait and the run's critical path.

Runs the benchmark's pipeline (``bench_builds.run_pipeline``: the same recipe, simulators and
latency) on one set with the runner's structured events kept, then reads them back and
prints, per server, its builds in the order they ran (start, layout request, layout end, end,
in seconds from the run's start), the final build's wait (``final_build_waited``: where it
waited, for how long, what it took in), and the critical path: the server that ended last,
the gaps between its builds, and how far the run's wall exceeds the replay of the run's own
build times through dispatch (the final build's wait taken off).

    python bench/final_wait.py [--set arches64] [--servers 4] [--runs 1] [--output STEM|PATH]

``--output`` also writes ``bench/results/STEM.json``, or the path given (every run's timeline
and summary).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_builds
from bench_builds import RECIPE, run_pipeline
from bench_support import results_path

from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes import load_recipe

__all__ = ["main", "timeline"]

#: The runner's events this report reads (everything else in the log is left alone).
_EVENTS = frozenset({"run_started", "build_started", "step_started", "step_finished",
                     "final_build_waited", "build_finished", "overflow_taken_in"})


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def timeline(log: Path, run_id: str) -> dict[str, Any]:
    """Per build: server, start, layout request and end, end, waits (seconds from the run's
    start event); and the summary this script prints."""
    events = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("run_id") == run_id and event.get("event") in _EVENTS:
            events.append(event)
    origin = min(_seconds(e["timestamp"]) for e in events if e["event"] == "run_started")
    builds: dict[str, dict[str, Any]] = defaultdict(dict)
    for event in events:
        name, at = event.get("build"), round(_seconds(event["timestamp"]) - origin, 3)
        if name is None:
            continue
        row = builds[str(name)]
        kind = event.get("kind")
        if event["event"] == "build_started":
            row["start"] = at
        elif event["event"] == "step_started" and kind == "auto_layout":
            row.setdefault("layouts", []).append(at)
        elif event["event"] == "step_finished" and kind == "auto_layout":
            row.setdefault("laid_out", []).append(at)
        elif event["event"] == "final_build_waited":
            row["waited_s"] = event.get("waited_s")
            row["wait_ended"] = at
            row["taken"] = event.get("taken")
        elif event["event"] == "build_finished":
            row["end"] = at
            row["server"] = event.get("server")
    servers: dict[str, list[str]] = defaultdict(list)
    for name, row in sorted(builds.items(), key=lambda item: item[1].get("start", 0.0)):
        servers[str(row.get("server"))].append(name)
    ends = {server: builds[names[-1]].get("end", 0.0) for server, names in servers.items()}
    last = max(ends, key=lambda server: ends[server])
    final = next((name for name, row in builds.items() if "waited_s" in row), None)
    gaps = [
        round(builds[later]["start"] - builds[earlier]["end"], 3)
        for earlier, later in zip(servers[last], servers[last][1:], strict=False)
    ]
    others_laid_out = [
        row["laid_out"][-1] for name, row in builds.items()
        if name != final and row.get("laid_out")
    ]
    return {
        "builds": dict(builds),
        "servers": dict(servers),
        "server_ends": ends,
        "last_server": last,
        "final": final,
        "final_wait_s": builds[final].get("waited_s") if final else None,
        "final_on_last_server": final in servers[last] if final else None,
        "gaps_on_last_server": gaps,
        "others_last_layout_end": max(others_laid_out, default=math.nan),
    }


def _report(run: dict[str, Any], line: dict[str, Any]) -> None:
    print(f"wall {run['wall_s']} s, busy {run['busy_s']} s, efficiency "
          f"{run['parallel_efficiency']}, load {run['load']}, replay "
          f"{run['dispatch_replayed']}", flush=True)
    for server, names in sorted(line["servers"].items()):
        cells = []
        for name in names:
            row = line["builds"][name]
            layouts = "/".join(f"{t:.2f}" for t in row.get("layouts", []))
            laid = "/".join(f"{t:.2f}" for t in row.get("laid_out", []))
            wait = f" waited {row['waited_s']} s" if "waited_s" in row else ""
            cells.append(f"{name} [{row.get('start', 0):.2f} L{layouts}-{laid} "
                         f"{row.get('end', 0):.2f}{wait}]")
        print(f"  {server}: " + "  ".join(cells), flush=True)
    replay = run["dispatch_replayed"] or {}
    print(f"  final {line['final']} waited {line['final_wait_s']} s; on the last server: "
          f"{line['final_on_last_server']}; last server's gaps {line['gaps_on_last_server']}; "
          f"the others' last layout ended at {line['others_last_layout_end']:.2f}; "
          f"wall - replay {run['wall_s'] - replay.get('run_order', math.nan):.3f} s",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="arches64")
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--time-scale", type=float, default=bench_builds.DEFAULT_TIME_SCALE)
    parser.add_argument(
        "--output", default=None, help="results file (JSON): a stem under bench/results/, or a path"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-final-wait-"))
    saved = []
    try:
        log = work / "bench.jsonl"
        configure_logging(level="INFO", json_file=log, console=sys.stderr)
        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.ERROR)
        recipe_path = work / "recipe.yaml"
        recipe_path.write_text(RECIPE.format(raft_type="FULL_RAFT"), encoding="utf-8")
        recipe = load_recipe(recipe_path)
        models = read_models(bench_builds._models(args.set, work / "models"),
                             import_spec=recipe.import_options)
        plan = plan_builds(recipe, models, servers=args.servers)  # as the run plans it
        infos = {str(m.path): m for m in models}
        print(f"{args.set}: {len(models)} models, {len(plan.builds)} builds, "
              f"{args.servers} servers", flush=True)
        for number in range(1, args.runs + 1):
            before = {line for line in log.read_text(encoding="utf-8").splitlines()} \
                if log.exists() else set()
            run = run_pipeline(plan, infos, args.servers, work / f"run{number}",
                               args.time_scale, log)
            run_ids = {json.loads(line).get("run_id")
                       for line in log.read_text(encoding="utf-8").splitlines()
                       if line not in before and '"run_started"' in line}
            (run_id,) = run_ids
            line = timeline(log, str(run_id))
            _report(run, line)
            saved.append({"run": run, "timeline": line})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.output:
        results_path(args.output, ".json").write_text(
            json.dumps({"set": args.set, "servers": args.servers, "runs": saved}, indent=2)
            + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
