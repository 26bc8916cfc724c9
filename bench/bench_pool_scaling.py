"""Benchmark: the executor on 1, 2 and 4 simulated servers, against the one-by-one baseline.

Both sides prepare the same 200 models (copies of the 24 sample batch parts) on simulators
with the *realistic* latency profile scaled by ``--time-scale``: every operation costs
simulated time spent waiting, not computing, so several servers scale on a 2-core machine.

* **pipeline**: the planner groups the models into builds of at most 10, and the executor runs
  them in parallel, one build per server: create scene, import, auto_support (checkpoint),
  auto_layout, save_form. Once more on the most servers with *dense* builds (as many models
  as fit one platform, like the baseline's scenes).
* **baseline** (the vendor example's strategy, one server): import one model, lay out the whole
  scene again, repeat; when the layout no longer fits, take the last model out, finish the
  scene (auto_support, a last layout, save_form) and start a new scene with it.

Reported per server count: wall time of the run (servers already started), the sum of the
time servers were leased to builds ("busy"), parallel efficiency = (busy / servers) / wall,
speed-up over the baseline, layout calls, and the runner's CPU time per model (process CPU,
every thread of the runner included, the servers' own CPU not).

    python bench/bench_pool_scaling.py [--models N] [--time-scale F] [--servers 1,2,4]

Writes bench/results/pool_scaling.json and bench/results/pool_scaling.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_support import bench_settings

from preform_pipeline.api import (
    AutoLayoutOptions,
    AutoSupportOptions,
    ImportOptions,
    ImportUnits,
    PreFormClient,
    SceneSettings,
)
from preform_pipeline.errors import PermanentApiError
from preform_pipeline.executor import NullReporter, Runner, RunOptions
from preform_pipeline.executor.steps import is_layout_overflow
from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes import load_recipe
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import Settings

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODELS = 200
#: 0.02: an auto_support of 10 models (31 s on a desktop PreFormServer, by the profile's
#: prices) takes 0.62 s, so the whole benchmark runs in about two minutes.
DEFAULT_TIME_SCALE = 0.02
DEFAULT_SERVER_COUNTS = (1, 2, 4)
MAX_MODELS_PER_BUILD = 10

RECIPE_TEMPLATE = """\
name: bench
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_support
  - auto_layout:
      allow_overlapping_supports: true
  - save_form
batching:
  max_models_per_build: {per_build}
  keep_cases_together: false
"""
#: Builds of at most 10 models: enough builds to keep every server busy to the end.
RECIPE = RECIPE_TEMPLATE.format(per_build=MAX_MODELS_PER_BUILD)
#: As many models per build as fit, like the baseline's scenes: the same prints, fewer builds.
DENSE_RECIPE = RECIPE_TEMPLATE.format(per_build="null")

SCENE = SceneSettings("FORM-4-0", "FLGPGR05", 0.1, "DEFAULT")
LAYOUT = AutoLayoutOptions(allow_overlapping_supports=True)
IMPORT = ImportOptions(units=ImportUnits.MILLIMETERS)


def _settings(count: int) -> Settings:
    return bench_settings(count, startup_timeout_s=60.0)


def _models(folder: Path, count: int) -> list[Path]:
    sources = sorted((ROOT / "sample_models" / "batch").glob("part_*.stl"))
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / f"model_{i + 1:03d}.stl"
        shutil.copyfile(sources[i % len(sources)], path)
        paths.append(path)
    return paths


def _simulator_args(work: Path, time_scale: float) -> tuple[str, ...]:
    return (
        "--latency", "realistic", "--time-scale", str(time_scale),
        "--fleet-dir", str(work / "fleet"),
        "--log-level", "WARNING",
    )


def run_pipeline(
    recipe_path: Path, models: list[Path], servers: int, work: Path, time_scale: float
) -> dict[str, Any]:
    recipe = load_recipe(recipe_path)
    plan = plan_builds(recipe, read_models(models, import_spec=recipe.import_options))
    with ServerPool(
        _settings(servers).pool, simulator_args=_simulator_args(work, time_scale)
    ) as pool:
        runner = Runner(
            plan,
            pool,
            options=RunOptions(output_root=work / f"out-{servers}"),
            reporter=NullReporter(),
        )
        cpu_before = time.process_time()
        started = time.perf_counter()
        result = runner.run()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    if not result.ok:
        bad = [(o.name, o.status.value, o.reason) for o in result.outcomes if not o.ok]
        raise SystemExit(f"pipeline run on {servers} servers failed: {bad}")
    busy = result.busy_s
    return {
        "servers": servers,
        "builds": len(result.outcomes),
        "models": plan.model_count,
        "wall_s": round(wall, 3),
        "busy_s": round(busy, 3),
        "parallel_efficiency": round((busy / servers) / wall, 3),
        "layout_calls": result.layout_calls,
        "runner_cpu_s": round(cpu, 3),
        "runner_cpu_ms_per_model": round(cpu * 1000.0 / plan.model_count, 3),
    }


def run_baseline(models: list[Path], work: Path, time_scale: float) -> dict[str, Any]:
    """The vendor example's loop on one server: import one, lay out everything, repeat."""
    layout_calls = 0
    scenes = 0
    out = work / "out-baseline"
    out.mkdir(parents=True)
    with ServerPool(_settings(1).pool, simulator_args=_simulator_args(work, time_scale)) as pool:
        lease = pool.lease(timeout=60)
        client = PreFormClient(
            lease.server.url, path_mapper=lease.server.path_mapper.to_server,
            verify_imports=False,
        )

        def finish(scene_id: str) -> None:
            nonlocal layout_calls, scenes
            client.auto_support(scene_id, AutoSupportOptions())
            layout_calls += 1
            client.auto_layout(scene_id, LAYOUT)
            scenes += 1
            client.save_form(scene_id, out / f"scene-{scenes:03d}.form")

        cpu_before = time.process_time()
        started = time.perf_counter()
        scene = client.create_scene(SCENE).id
        count_in_scene = 0
        assert scene is not None
        for path in models:
            model = client.import_model(scene, path, IMPORT)
            count_in_scene += 1
            layout_calls += 1
            try:
                client.auto_layout(scene, LAYOUT)
                continue
            except PermanentApiError as exc:
                if not is_layout_overflow(exc) or count_in_scene == 1:
                    raise
            client.delete_model(scene, model.id)
            finish(scene)
            scene = client.create_scene(SCENE).id
            assert scene is not None
            client.import_model(scene, path, IMPORT)
            count_in_scene = 1
            layout_calls += 1
            client.auto_layout(scene, LAYOUT)
        finish(scene)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        client.close()
        lease.release()
    return {
        "servers": 1,
        "scenes": scenes,
        "models": len(models),
        "wall_s": round(wall, 3),
        "layout_calls": layout_calls,
        "runner_cpu_ms_per_model": round(cpu * 1000.0 / len(models), 3),
    }


def _markdown(data: dict[str, Any]) -> str:
    base = data["baseline"]
    lines = [
        "# Pool scaling: the executor on 1, 2 and 4 simulated servers",
        "",
        f"{data['models']} models (copies of the 24 sample batch parts), builds of at most "
        f"{MAX_MODELS_PER_BUILD}; simulator latency `realistic` at time scale "
        f"{data['time_scale']}. Machine: {data['machine']['cpu_count']} cores, "
        f"{data['machine']['platform']}, Python {data['machine']['python']}.",
        "",
        "| servers | builds | wall s | busy s | parallel efficiency | speed-up vs baseline "
        "| layout calls | runner CPU ms/model |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in data["pipeline"]:
        lines.append(
            f"| {run['servers']} | {run['builds']} | {run['wall_s']:.2f} | {run['busy_s']:.2f} "
            f"| {run['parallel_efficiency']:.3f} | {base['wall_s'] / run['wall_s']:.1f}x "
            f"| {run['layout_calls']} | {run['runner_cpu_ms_per_model']:.2f} |"
        )
    dense = data["pipeline_dense"]
    lines.append(
        f"| {dense['servers']}, dense builds | {dense['builds']} | {dense['wall_s']:.2f} "
        f"| {dense['busy_s']:.2f} | {dense['parallel_efficiency']:.3f} "
        f"| {base['wall_s'] / dense['wall_s']:.1f}x | {dense['layout_calls']} "
        f"| {dense['runner_cpu_ms_per_model']:.2f} |"
    )
    lines += [
        f"| baseline (1) | {base['scenes']} scenes | {base['wall_s']:.2f} | - | - | 1.0x "
        f"| {base['layout_calls']} | {base['runner_cpu_ms_per_model']:.2f} |",
        "",
        "Targets: parallel efficiency >= 0.90 at 4 servers; >= 4x faster than the baseline at "
        "4 servers with fewer layout calls; runner CPU < 5 ms per model.",
        "",
        f"Results at 4 servers: efficiency {data['summary']['efficiency_at_4']}, speed-up "
        f"{data['summary']['speedup_at_4']}x, layout calls {data['summary']['layout_calls_at_4']}"
        f" vs {base['layout_calls']}, runner CPU "
        f"{data['summary']['max_runner_cpu_ms_per_model']} ms/model at most.",
        "",
        "The rows with builds of at most 10 models make enough builds to keep 4 servers busy "
        "to the end. The baseline fills each scene as far as the layout allows, so it makes "
        "fewer, fuller prints; the *dense builds* row lets the planner do the same (as many "
        "models per build as fit the platform) for a like-for-like comparison: fewer builds "
        "than rounds of 4 servers leave servers idle at the end, which is what its lower "
        "efficiency shows.",
        "",
        "Busy time is the time servers were leased to builds (from the lease to the release, "
        "polling slack included); wall time starts when the servers are up. Speed-up over 1 "
        "server: " + ", ".join(
            f"{r['servers']} servers {data['pipeline'][0]['wall_s'] / r['wall_s']:.2f}x"
            for r in data["pipeline"]
        ) + ".",
        "",
        "Reproduce: `python bench/bench_pool_scaling.py`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=DEFAULT_MODELS)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument(
        "--servers", default=",".join(map(str, DEFAULT_SERVER_COUNTS)),
        help="comma-separated server counts",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the baseline (no .md is written)"
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.servers.split(",") if c]

    work = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    try:
        # Logged as the command line logs: JSON lines to a file, warnings on the console.
        configure_logging(level="INFO", json_file=work / "bench.jsonl", console=sys.stderr)
        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)
        models = _models(work / "models", args.models)
        recipe = work / "recipe.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        pipeline = []
        for count in counts:
            print(f"pipeline on {count} server(s)...", file=sys.stderr, flush=True)
            pipeline.append(run_pipeline(recipe, models, count, work, args.time_scale))
            print(f"  {pipeline[-1]}", file=sys.stderr, flush=True)
        dense_recipe = work / "dense.yaml"
        dense_recipe.write_text(DENSE_RECIPE, encoding="utf-8")
        print(f"pipeline, dense builds, on {max(counts)} servers...", file=sys.stderr, flush=True)
        dense = run_pipeline(dense_recipe, models, max(counts), work / "dense", args.time_scale)
        print(f"  {dense}", file=sys.stderr, flush=True)
        baseline: dict[str, Any] = {}
        if not args.no_baseline:
            print("baseline on 1 server...", file=sys.stderr, flush=True)
            baseline = run_baseline(models, work, args.time_scale)
            print(f"  {baseline}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    at_4 = next((r for r in pipeline if r["servers"] == 4), pipeline[-1])
    data: dict[str, Any] = {
        "benchmark": "pool_scaling",
        "models": args.models,
        "time_scale": args.time_scale,
        "latency": "realistic",
        "max_models_per_build": MAX_MODELS_PER_BUILD,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "pipeline": pipeline,
        "pipeline_dense": dense,
        "baseline": baseline,
        "summary": {
            "efficiency_at_4": at_4["parallel_efficiency"],
            "speedup_at_4": round(baseline["wall_s"] / at_4["wall_s"], 2) if baseline else None,
            "speedup_dense": round(baseline["wall_s"] / dense["wall_s"], 2) if baseline else None,
            "layout_calls_at_4": at_4["layout_calls"],
            "max_runner_cpu_ms_per_model": max(r["runner_cpu_ms_per_model"] for r in pipeline),
            "targets_met": {
                "efficiency_at_4_ge_0_90": at_4["parallel_efficiency"] >= 0.90,
                "speedup_at_4_ge_4x": bool(baseline) and baseline["wall_s"] / at_4["wall_s"] >= 4,
                "fewer_layout_calls": bool(baseline)
                and at_4["layout_calls"] < baseline["layout_calls"],
                "runner_cpu_lt_5_ms_per_model": all(
                    r["runner_cpu_ms_per_model"] < 5.0 for r in pipeline
                ),
            },
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pool_scaling.json").write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    if baseline:
        (RESULTS / "pool_scaling.md").write_text(_markdown(data), encoding="utf-8")
    print(json.dumps(data["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
