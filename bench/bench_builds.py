"""Benchmark: planned builds against the vendor's documented batching strategy.

Both sides prepare the same models on simulated PreFormServers with the *realistic* latency
profile (``--time-scale``, 0.02 by default), supports with full rafts, no build-size cap:

* **baseline** (one server; the strategy of Formlabs' batching example, written here with
  this project's own client): import one model; orient and support that model; lay out the
  whole scene; when the layout does not fit, delete that model, save the scene as a build,
  and start the next scene with it (import, orient, support again);
* **pipeline**: plan by predicted footprints and outline nesting (for each server count:
  on several, builds of even work, plan/balance.py), then run the builds on 1
  and 4 servers (the pool right-sized to the builds): create scene, import, auto_orient,
  auto_support (checkpoint), auto_layout (overflow carried on, never halved), save_form.

Sets: ``mixed200`` (copies of the 24 batch parts and the small sample parts), ``arches64``
(64 distinct generated dental arches, half with a palate, written to ``bench/.data/``), and
``mixed800``.

Measures per set: wall time (servers already started) and its ratio to the baseline; builds
against the baseline's and the lower bound ``ceil(sum of hull areas / platform area) + 1``;
mean convex-hull XY density of the builds; the share of server time spent on discarded work
(priced by the simulator's own latency table); Local API requests per model (counted from the
simulators' request logs); the runner's CPU per model while running (planning apart); and
parallel efficiency, busy server time / servers / wall, and beside it the most any order
could reach with the same builds' server times (:func:`best_makespan`).

    python bench/bench_builds.py [--sets mixed200,arches64] [--servers 1,4] [--time-scale F]
        [--repeat N] [--baseline-from bench/results/builds_session10.json] [--output STEM|PATH]
        [--raft-type FULL_RAFT|MINI_RAFT|MINI_RAFTS_ON_BP] [--empty-builds]

``--repeat N`` runs the pipeline N times per set and server count and reports the run of
median runner CPU (CPU time on a shared machine varies from run to run); ``--baseline-from``
reuses the baselines of an earlier results file instead of running them again.
``--raft-type`` sets the raft of both sides' auto_support (full rafts by default; mini rafts,
as the engineering recipe uses, show how much of the density the raft rim takes).
``--empty-builds`` plans with the recipe's ``batching.empty_builds: true`` (the planner also
tries to empty its emptiest builds; docs/planning.md). Every run also records its wall-time
ratio with the planning CPU of the plan it ran added to its wall (the ratio a user waits for:
planning happens before the first server request).

``--vendor-script PATH`` also runs Formlabs' own ``batching-minimal.py`` (from
formlabs-api-python, kept outside this project) unmodified, as a second baseline, with
``--vendor-python`` an interpreter that has its ``formlabs_local_api_minimal`` and
``requests``. The script starts PreFormServer itself from ``./PreFormServer.app`` on macOS;
here that path is a small launcher of the simulator (same latency profile and time scale), and
the script sees ``sys.platform == "darwin"``. It runs ``--auto-orient --auto-support`` (the
server's default raft, full), so only with full rafts. Its wall time is read from the
simulator's own log, first request to last answer (the server's start apart, as for the
other rows); its builds and their models from the ``summary.csv`` it writes.

Density is read two ways, both recorded: the hulls of the models' own shadows (what the
targets were first measured with), and the hulls of the footprints as placed on the platform,
each model's shadow grown by its raft rim (the outline the layout must keep apart). The lower
bound is given for both.

Writes bench/results/builds.json and bench/results/builds.md.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sample_models"))

from bench_support import bench_settings, results_path
from make_samples import write_arches

from preform_pipeline.api import (
    AutoLayoutOptions,
    AutoOrientOptions,
    AutoSupportOptions,
    ImportOptions,
    ImportUnits,
    PreFormClient,
    RaftType,
    SceneSettings,
)
from preform_pipeline.errors import PermanentApiError
from preform_pipeline.executor import NullReporter, Runner, RunOptions
from preform_pipeline.executor.runner import build_work, run_order
from preform_pipeline.executor.state import BuildStatus, RunResult
from preform_pipeline.executor.steps import is_layout_overflow
from preform_pipeline.geometry.projection import convex_hull
from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan, plan_builds, read_models
from preform_pipeline.plan.footprint import raft_border_mm
from preform_pipeline.plan.schedule import balanced_queues, dispatch_makespan
from preform_pipeline.recipes import load_recipe
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import Settings
from preform_pipeline.simulator.latency import REALISTIC_COSTS

__all__ = ["best_makespan", "longest_first", "main", "replayed_dispatch"]

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data"
DEFAULT_TIME_SCALE = 0.02
PLATFORM_MM2 = 200.0 * 125.0

RAFT_TYPES = ("FULL_RAFT", "MINI_RAFT", "MINI_RAFTS_ON_BP")

RECIPE = """\
name: bench
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_orient
  - auto_support:
      raft_type: {raft_type}
  - auto_layout
  - save_form
batching:
  keep_cases_together: false
  margin_mm: 0
  layout_attempts: 1
"""

SCENE = SceneSettings("FORM-4-0", "FLGPGR05", 0.1, "DEFAULT")
IMPORT = ImportOptions(units=ImportUnits.MILLIMETERS)


def _settings(count: int) -> Settings:
    return bench_settings(count, startup_timeout_s=120.0)


def _simulator_args(work: Path, time_scale: float, tag: str) -> Any:
    def args(name: str) -> tuple[str, ...]:
        return (
            "--latency", "realistic", "--time-scale", str(time_scale),
            "--fleet-dir", str(work / "fleet"),
            "--log-file", str(work / "logs" / f"{tag}-{name}.jsonl"), "--log-level", "INFO",
        )

    (work / "logs").mkdir(parents=True, exist_ok=True)
    return args


def _exchanges(work: Path, tag: str) -> Iterator[dict[str, Any]]:
    """The requests the simulators of run ``tag`` answered, as their logs tell them."""
    for path in (work / "logs").glob(f"{tag}-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "http_exchange":
                yield event


def _operations(work: Path, tag: str) -> Counter[str]:
    """Requests the simulators of run ``tag`` answered, by operation (polls included)."""
    return Counter(str(event.get("operation") or "other") for event in _exchanges(work, tag))


# -- data -----------------------------------------------------------------------------------


def _mixed(folder: Path, count: int) -> list[Path]:
    sources = sorted((ROOT / "sample_models" / "batch").glob("part_*.stl")) + [
        ROOT / "sample_models" / "parts" / name
        for name in ("l_bracket.stl", "cube_with_hole.stl", "cylinder_ascii.stl")
    ]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        source = sources[i % len(sources)]
        path = folder / f"model_{i + 1:03d}{source.suffix}"
        shutil.copyfile(source, path)
        paths.append(path)
    return paths


def _models(name: str, work: Path) -> list[Path]:
    if name.startswith("arches"):
        return write_arches(DATA / "arches", int(name.removeprefix("arches")))
    return _mixed(work / name, int(name.removeprefix("mixed")))


# -- pricing --------------------------------------------------------------------------------


def _price(operation: str, models: int, triangles: int, scale: float) -> float:
    cost = REALISTIC_COSTS[operation]
    return (cost.base_s + cost.per_model_s * models + cost.per_mtri_s * triangles / 1e6) * scale


def _prep_price(model: ModelInfo, scale: float) -> float:
    """Import, orient and support of one model, by the latency table."""
    tri = model.triangle_count
    return (
        _price("import_model", 1, tri, scale)
        + _price("auto_orient", 1, tri, scale)
        + _price("auto_support", 1, tri, scale)
    )


def _hull(model: ModelInfo) -> float:
    assert model.shadow is not None
    return model.shadow.flat_hull_mm2


def _rafted_hull(model: ModelInfo, raft_type: str) -> float:
    """The hull of the model's footprint with its raft: the shadow's hull grown by the raft
    rim on every side (a convex polygon grown by r gains its perimeter times r, plus a disc
    of radius r at the corners)."""
    assert model.shadow is not None
    hull = convex_hull(model.shadow.flat)
    perimeter = float(np.sum(np.linalg.norm(np.roll(hull, -1, axis=0) - hull, axis=1)))
    rim = raft_border_mm({"raft_type": raft_type})
    return model.shadow.flat_hull_mm2 + perimeter * rim + math.pi * rim * rim


# -- baseline -------------------------------------------------------------------------------


def run_baseline(
    models: list[ModelInfo], work: Path, scale: float, raft_type: str = "FULL_RAFT"
) -> dict[str, Any]:
    """The vendor example's strategy on one server, with this project's client sending each
    step as one blocking request, as the example does."""
    scenes: list[list[ModelInfo]] = []
    discarded = 0.0
    out = work / "out-baseline"
    out.mkdir(parents=True)
    baseline_args = _simulator_args(work, scale, "baseline")
    with ServerPool(_settings(1).pool, simulator_args=baseline_args) as pool:
        lease = pool.lease(timeout=120)
        # The vendor's script sends each step as one blocking request (no ?async=true, no
        # polls), and so does this rewrite of it: polling would slow the baseline down and
        # flatter every ratio against it.
        client = PreFormClient(lease.server.url, path_mapper=lease.server.path_mapper.to_server,
                               verify_imports=False, async_operations=False)

        def prepare(scene: str, model: ModelInfo) -> str:
            info = client.import_model(scene, model.path.resolve(), IMPORT)
            assert info.id is not None
            client.auto_orient(scene, AutoOrientOptions(models=[info.id]))
            client.auto_support(
                scene, AutoSupportOptions(models=[info.id], raft_type=RaftType(raft_type))
            )
            return info.id

        def finish(scene: str, number: int) -> None:
            client.save_form(scene, out / f"scene-{number:03d}.form")

        load_before = _load()
        started = time.perf_counter()
        scene = client.create_scene(SCENE).id
        assert scene is not None
        current: list[ModelInfo] = []
        for model in models:
            model_id = prepare(scene, model)
            current.append(model)
            try:
                client.auto_layout(scene, AutoLayoutOptions())
                continue
            except PermanentApiError as exc:
                if not is_layout_overflow(exc) or len(current) == 1:
                    raise
            # The failed layout and this model's preparation are thrown away.
            discarded += _price("auto_layout", len(current), sum(
                m.triangle_count for m in current), scale) + _prep_price(model, scale)
            client.delete_model(scene, model_id)
            current.pop()
            finish(scene, len(scenes) + 1)
            scenes.append(current)
            scene = client.create_scene(SCENE).id
            assert scene is not None
            prepare(scene, model)
            current = [model]
            client.auto_layout(scene, AutoLayoutOptions())
        finish(scene, len(scenes) + 1)
        scenes.append(current)
        wall = time.perf_counter() - started
        client.close()
        lease.release()
    requests = sum(_operations(work, "baseline").values())
    return {
        "builds": len(scenes),
        "wall_s": round(wall, 3),
        "server_s": round(wall, 3),
        "discarded_share": round(discarded / wall, 4),
        "density": round(_mean_density(scenes), 4),
        "density_rafted": round(_mean_density(scenes, raft_type), 4),
        "requests_per_model": round(requests / len(models), 2),
        "load": [load_before, _load()],
    }


#: Runs the vendor's script as it is: modules that read the platform are imported first, then
#: the script sees macOS, whose PreFormServer it starts from ``./PreFormServer.app``.
_VENDOR_RUNNER = """\
import runpy, subprocess, sys
import requests
import formlabs_local_api_minimal
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.platform = "darwin"
runpy.run_path(script, run_name="__main__")
"""


def _server_launcher(work: Path, scale: float) -> None:
    """``./PreFormServer.app/Contents/MacOS/PreFormServer``: this checkout's simulator with the
    benchmark's latency, logging to ``logs/vendor-server.jsonl``."""
    macos = work / "PreFormServer.app" / "Contents" / "MacOS"
    macos.mkdir(parents=True)
    args = " ".join(shlex.quote(a) for a in _simulator_args(work, scale, "vendor")("server"))
    launcher = macos / "PreFormServer"
    launcher.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "
        f"-m preform_pipeline.simulator {args} \"$@\"\n",
        encoding="utf-8",
    )
    launcher.chmod(0o755)


def _served_span(work: Path, tag: str) -> float:
    """Seconds from the first request's arrival to the last answer, by the simulator's log."""
    starts, ends = [], []
    for event in _exchanges(work, tag):
        end = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
        ends.append(end.timestamp())
        starts.append(end.timestamp() - float(event.get("elapsed_ms", 0.0)) / 1000.0)
    return max(ends) - min(starts) if ends else 0.0


def run_vendor_script(
    models: list[ModelInfo], work: Path, scale: float, script: Path, python: Path
) -> dict[str, Any]:
    """Formlabs' batching-minimal.py, unmodified, on one simulated server (module docstring)."""
    folder = work / "models"
    folder.mkdir(parents=True)
    by_name: dict[str, ModelInfo] = {}
    for model in models:
        if model.path.suffix.lower() != ".stl" or model.path.name in by_name:
            raise SystemExit(f"the vendor script batches distinct .stl files: {model.path}")
        shutil.copyfile(model.path, folder / model.path.name)
        by_name[model.path.name] = model
    _server_launcher(work, scale)
    runner = work / "run_vendor.py"
    runner.write_text(_VENDOR_RUNNER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_DATA_HOME"] = str(work / "xdg")
    load_before = _load()
    done = subprocess.run(
        [str(python), str(runner), str(script.resolve()), str(folder),
         "--auto-orient", "--auto-support"],
        cwd=work, env=env, capture_output=True, text=True, timeout=4 * 3600, check=False,
    )
    (work / "vendor.out").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"the vendor script exited {done.returncode}:\n{tail}")
    scenes: dict[int, list[ModelInfo]] = {}
    with (folder / "summary.csv").open(newline="", encoding="utf-8") as rows:
        for row in list(csv.reader(rows))[1:]:
            scenes.setdefault(int(row[0]), []).append(by_name[row[2]])
    builds = [scenes[k] for k in sorted(scenes)]
    if sum(len(b) for b in builds) != len(models):
        raise SystemExit(f"the vendor script placed {sum(len(b) for b in builds)} of "
                         f"{len(models)} models")
    # Each build but the last ended on a layout that did not fit with the next build's first
    # model, which was prepared, deleted and prepared again (the script's own strategy).
    discarded = sum(
        _price("auto_layout", len(b) + 1, sum(m.triangle_count for m in b)
               + nxt[0].triangle_count, scale) + _prep_price(nxt[0], scale)
        for b, nxt in itertools.pairwise(builds)
    )
    wall = _served_span(work, "vendor")
    requests = sum(_operations(work, "vendor").values())
    return {
        "builds": len(builds),
        "wall_s": round(wall, 3),
        "discarded_share": round(discarded / max(wall, 1e-9), 4),
        "density": round(_mean_density(builds), 4),
        "density_rafted": round(_mean_density(builds, "FULL_RAFT"), 4),
        "requests_per_model": round(requests / len(models), 2),
        "load": [load_before, _load()],
    }


def _load() -> float:
    """The machine's 1-minute load average (other people's work shares these cores)."""
    return round(os.getloadavg()[0], 2)


def _mean_density(builds: list[list[ModelInfo]], raft_type: str | None = None) -> float:
    """Mean over builds of the hulls' area over the platform's: the models' own hulls, or
    with ``raft_type`` their footprints' with the raft rim."""
    def area(m: ModelInfo) -> float:
        return _hull(m) if raft_type is None else _rafted_hull(m, raft_type)

    return sum(sum(area(m) for m in b) / PLATFORM_MM2 for b in builds) / max(1, len(builds))


# -- pipeline -------------------------------------------------------------------------------


def run_pipeline(
    plan: Plan, infos: dict[str, ModelInfo], servers: int, work: Path, scale: float, log: Path,
    raft_type: str = "FULL_RAFT",
) -> dict[str, Any]:
    tag = f"pipeline{servers}"
    pool_size = min(servers, max(1, len(plan.builds)))
    with ServerPool(_settings(servers).pool, simulator_args=_simulator_args(work, scale, tag),
                    count=pool_size) as pool:
        runner = Runner(plan, pool, options=RunOptions(output_root=work / f"out-{tag}"),
                        reporter=NullReporter())
        load_before = _load()
        cpu_before = time.process_time()
        started = time.perf_counter()
        result = runner.run()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    if not result.ok:
        bad = [(o.name, o.status.value, o.reason) for o in result.outcomes if not o.ok]
        raise SystemExit(f"pipeline run on {servers} servers failed: {bad}")
    done = [o for o in result.outcomes if o.status is BuildStatus.SUCCEEDED]
    builds = [[infos[f] for f in o.source_files] for o in done]
    discarded = _discarded(result, infos, scale, log)
    requests = _operations(work, tag)
    models = plan.model_count
    waited = _waited(log, result.run_id)
    return {
        "servers": servers,
        "pool": pool_size,
        "builds": len(done),
        "carried_builds": sum(1 for o in done if o.parent is not None),
        "wall_s": round(wall, 3),
        "busy_s": round(result.busy_s, 3),
        "parallel_efficiency": round((result.busy_s / pool_size) / wall, 3),
        "parallel_efficiency_vs_configured": round((result.busy_s / servers) / wall, 3),
        "final_build_wait_s": round(waited, 3),
        "parallel_efficiency_useful": round(((result.busy_s - waited) / pool_size) / wall, 3),
        "build_busy_s": [round(o.busy_s, 3) for o in result.outcomes],
        "efficiency_bound": round(
            result.busy_s / pool_size
            / max(best_makespan([o.busy_s for o in result.outcomes], pool_size), 1e-9), 3
        ),
        "start_order": [b.index for b in run_order(plan.builds, pool_size)[0]],
        "dispatch_replayed": replayed_dispatch(plan, result, waited, pool_size),
        "discarded_share": round(discarded / max(result.busy_s, 1e-9), 4),
        "density": round(_mean_density(builds), 4),
        "density_rafted": round(_mean_density(builds, raft_type), 4),
        "layout_calls": result.layout_calls,
        "requests_per_model": round(sum(requests.values()) / models, 2),
        "requests": dict(requests.most_common()),
        "runner_cpu_ms_per_model": round(cpu * 1000.0 / models, 3),
        "load": [load_before, _load()],
    }


def best_makespan(durations: list[float], servers: int, node_limit: int = 2_000_000) -> float:
    """The least time in which ``servers`` could run builds of these ``durations``, each on
    one server, whatever the order: the bound on wall time that no scheduler beats.

    An exact branch and bound, largest first; when it runs out of ``node_limit`` the lower
    bound is returned instead (the mean load, the longest build, and the smallest
    ``ceil(n / servers)`` builds that one server must run), so the result is never above
    the true optimum and the efficiency computed from it is a true upper bound.
    """
    items = sorted(durations, reverse=True)
    if not items:
        return 0.0
    if servers <= 1 or len(items) <= servers:
        return sum(items) if servers <= 1 else items[0]
    per_server = -(-len(items) // servers)
    floor = max(sum(items) / servers, items[0], sum(items[-per_server:]))
    loads = [0.0] * servers
    for item in items:  # longest processing time first: the first answer to beat
        loads[loads.index(min(loads))] += item
    best = max(loads)
    loads = [0.0] * servers
    nodes = 0

    def place(index: int) -> bool:
        """False when the node budget ran out."""
        nonlocal best, nodes
        nodes += 1
        if nodes > node_limit:
            return False
        if index == len(items):
            best = min(best, max(loads))
            return True
        tried: set[float] = set()
        for server in range(servers):
            load = loads[server]
            if load in tried or load + items[index] >= best - 1e-12:
                continue  # servers of equal load are the same choice
            tried.add(load)
            loads[server] = load + items[index]
            finished = place(index + 1)
            loads[server] = load
            if not finished:
                return False
            if best <= floor + 1e-9:
                return True
        return True

    if best > floor + 1e-9 and not place(0):
        return floor
    return best


def longest_first(builds: list[BuildPlan], servers: int, final: str | None) -> list[BuildPlan]:
    """The start order before session 18: longest first by estimated work, the final build
    moved to the front of the last round (what :func:`run_order` compares itself with)."""
    order = sorted(builds, key=lambda b: (-build_work(b), b.index))
    if final is None or servers <= 1 or len(order) <= servers:
        return run_order(builds, servers)[0]
    chosen = next(b for b in order if b.name == final)
    last_round = len(order) - ((len(order) - 1) % servers + 1)
    order.remove(chosen)
    order.insert(last_round, chosen)
    return order


def replayed_dispatch(
    plan: Plan, result: RunResult, waited: float, servers: int
) -> dict[str, float] | None:
    """The run's own build times replayed through dispatch offline (load does not bias
    it): ends of the order the runner used, of longest first, and the least any assignment
    could reach. The final build's wait for the others is taken off its time (it depends on
    the order). None when builds were carried or split (times of builds no order placed).
    """
    times = {o.index: o.busy_s for o in result.outcomes}
    if set(times) != {b.index for b in plan.builds}:
        return None
    order, final = run_order(plan.builds, servers)
    if final is not None:
        index = next(b.index for b in plan.builds if b.name == final)
        times[index] = max(0.0, times[index] - waited)
    return {
        "run_order": round(dispatch_makespan([times[b.index] for b in order], servers), 3),
        "longest_first": round(dispatch_makespan(
            [times[b.index] for b in longest_first(list(plan.builds), servers, final)], servers
        ), 3),
        "best": round(best_makespan(list(times.values()), servers), 3),
    }


def _run_events(log: Path, run_id: str, name: str) -> Iterator[dict[str, Any]]:
    """The runner's ``name`` events of run ``run_id``, from the JSON-lines log."""
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name and event.get("run_id") == run_id:
            yield event


def _carried(log: Path, run_id: str) -> dict[str, list[str]]:
    """Per build, the file names its layout carried on (the runner's ``overflow_carried``
    events; the last one of a build lists them all)."""
    return {
        str(event.get("build")): list(event.get("carried", []))
        for event in _run_events(log, run_id, "overflow_carried")
    }


def _waited(log: Path, run_id: str) -> float:
    """Seconds the final build held its server idle, waiting for other builds' layouts
    (the runner's ``final_build_waited`` event): leased, so in ``busy_s``, but not work."""
    return sum(float(event.get("waited_s") or 0.0)
               for event in _run_events(log, run_id, "final_build_waited"))


def _discarded(
    result: RunResult, infos: dict[str, ModelInfo], scale: float, log: Path
) -> float:
    """Server time thrown away: the carried models' preparation in the build they left, and
    the layout calls that did not fit (priced by the latency table)."""
    total = 0.0
    by_file = {Path(f).name: m for f, m in infos.items()}
    carried = _carried(log, result.run_id)
    for outcome in result.outcomes:
        moved = [by_file[name] for name in carried.get(outcome.name, [])]
        if not moved:
            continue
        total += sum(_prep_price(m, scale) for m in moved)
        everyone = [infos[f] for f in outcome.source_files] + moved
        failed_layouts = max(0, outcome.layout_calls - 1)
        total += failed_layouts * _price(
            "auto_layout", len(everyone), sum(m.triangle_count for m in everyone), scale
        )
    return total


# -- the run --------------------------------------------------------------------------------


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median runner CPU (the lower middle one of an even count), with every run's
    CPU beside it: CPU time on a shared machine varies from run to run."""
    ordered = sorted(runs, key=lambda run: run["runner_cpu_ms_per_model"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runner_cpu_ms_per_model_runs"] = [run["runner_cpu_ms_per_model"] for run in runs]
    return chosen


def bench_set(name: str, counts: list[int], work: Path, scale: float,
              baseline: bool | dict[str, Any], repeat: int = 1,
              raft_type: str = "FULL_RAFT",
              vendor: tuple[Path, Path] | None = None,
              empty_builds: bool = False) -> dict[str, Any]:
    paths = _models(name, work / "models")
    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(
        RECIPE.format(raft_type=raft_type) + ("  empty_builds: true\n" if empty_builds else ""),
        encoding="utf-8")
    recipe = load_recipe(recipe_path)
    cpu = time.process_time()
    models = read_models(paths, import_spec=recipe.import_options)
    read_cpu = time.process_time() - cpu
    cpu = time.process_time()
    plan = plan_builds(recipe, models)
    plan_cpu = time.process_time() - cpu
    infos = {str(m.path): m for m in models}
    bound = math.ceil(sum(_hull(m) for m in models) / PLATFORM_MM2) + 1
    rafted_platforms = sum(_rafted_hull(m, raft_type) for m in models) / PLATFORM_MM2
    data: dict[str, Any] = {
        "set": name,
        "models": len(models),
        "raft_type": raft_type,
        "planned_builds": len(plan.builds),
        "lower_bound_plus_1": bound,
        "rafted_bound_plus_1": math.ceil(rafted_platforms) + 1,
        "planned_density": round(sum(b.fill_ratio for b in plan.builds) / len(plan.builds), 4),
        "read_cpu_ms_per_model": round(read_cpu * 1000 / len(models), 3),
        "plan_cpu_ms_per_model": round(plan_cpu * 1000 / len(models), 3),
        "empty_builds": empty_builds,
        "pipeline": [],
    }
    print(f"{name}: {len(models)} models, {len(plan.builds)} planned builds (bound {bound})",
          file=sys.stderr, flush=True)
    for count in counts:
        # Planned for the servers that run it (plan/balance.py): builds of even work.
        cpu = time.process_time()
        balanced = plan_builds(recipe, models, servers=count) if count > 1 else plan
        # The plan this run ran cost its own planning (on 1 server, the first plan's).
        planned = _planned(plan, balanced, count,
                           time.process_time() - cpu if count > 1 else plan_cpu)
        print(f"  planned for {count}: {planned}", file=sys.stderr, flush=True)
        runs = []
        for number in range(1, repeat + 1):
            run = run_pipeline(balanced, infos, count, work / f"{name}-p{count}-{number}",
                               scale, work / "bench.jsonl", raft_type)
            run["planned"] = planned
            print(f"  pipeline {count} ({number}/{repeat}): {run}", file=sys.stderr, flush=True)
            runs.append(run)
        data["pipeline"].append(_median_run(runs) if repeat > 1 else runs[0])
    if baseline:
        base = (
            dict(baseline) if isinstance(baseline, dict)
            else run_baseline(models, work / f"{name}-base", scale, raft_type)
        )
        # Every model is placed, so the mean density of a reused baseline follows from its
        # build count (the mean of per-build sums is the total over builds x platform).
        base.setdefault("density_rafted", round(rafted_platforms / base["builds"], 4))
        print(f"  baseline: {base}", file=sys.stderr, flush=True)
        data["baseline"] = base
        for run in data["pipeline"]:
            run["speedup"] = round(base["wall_s"] / run["wall_s"], 2)
            run["speedup_with_planning"] = round(
                base["wall_s"] / (run["wall_s"] + run["planned"]["plan_cpu_s"]), 2)
    if vendor is not None:
        script = run_vendor_script(models, work / f"{name}-vendor", scale, *vendor)
        print(f"  vendor script: {script}", file=sys.stderr, flush=True)
        data["vendor_script"] = script
        for run in data["pipeline"]:
            run["speedup_vs_script"] = round(script["wall_s"] / run["wall_s"], 2)
    return data


def _work_span(plan: Plan, servers: int) -> float:
    works = [build_work(b) for b in plan.builds]
    return max(sum(works[i] for i in q) for q in balanced_queues(works, servers))


def _planned(plan: Plan, balanced: Plan, servers: int, cpu_s: float) -> dict[str, Any]:
    """The plan a run on ``servers`` ran: its builds, density, planning CPU, the models it
    placed in another build than the one-server plan did, and its longest queue's work."""
    home = {m.path: b.index for b in plan.builds for m in b.models}
    moved = sum(1 for b in balanced.builds for m in b.models if home.get(m.path) != b.index)
    return {
        "builds": len(balanced.builds),
        "density": round(sum(b.fill_ratio for b in balanced.builds) / len(balanced.builds), 4),
        "plan_cpu_ms_per_model": round(cpu_s * 1000 / max(1, balanced.model_count), 3),
        "plan_cpu_s": round(cpu_s, 3),
        "models_moved": moved,
        "work_span": [round(_work_span(plan, servers), 1), round(_work_span(balanced, servers), 1)],
        "work_mean": round(sum(build_work(b) for b in plan.builds) / servers, 1),
    }


_RAFT_WORDS = {
    "FULL_RAFT": "full rafts (2 mm rim)",
    "MINI_RAFT": "mini rafts (1 mm rim)",
    "MINI_RAFTS_ON_BP": "mini rafts on the platform (0.5 mm rim)",
}


def _bounds(result: dict[str, Any]) -> str:
    rafted = result.get("rafted_bound_plus_1")
    return f"{result['lower_bound_plus_1']}" + (f"; {rafted}" if rafted is not None else "")


def _densities(run: dict[str, Any]) -> str:
    rafted = run.get("density_rafted")
    return f"{run['density']:.0%}" + (f" ({rafted:.0%})" if rafted is not None else "")


def _loads(run: dict[str, Any]) -> str:
    load = run.get("load")
    return f"{load[0]:g} -> {load[1]:g}" if load else "-"


def _markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Builds: planned by predicted footprint against the vendor's batching strategy",
        "",
        f"Simulated servers, latency `realistic` at time scale {meta['time_scale']}, Form 4, "
        f"supports with {_RAFT_WORDS[meta.get('raft_type', 'FULL_RAFT')]}, no build-size cap. "
        "Machine: "
        f"{meta['cpu_count']} cores shared with other work while this ran (wall times are "
        "noisy; builds, density, requests and priced server time are not), "
        f"{meta['platform']}, Python {meta['python']}."
        + (
            f" The baseline rows are reused from `{meta['baseline_from']}` (same sets and "
            "time scale), not run again."
            if meta.get("baseline_from") else ""
        ),
        "",
        "| set | run | builds (bound; with rafts) | density (with rafts) | wall s "
        "| vs baseline | vs vendor script | discarded | requests/model | runner CPU ms/model "
        "| efficiency (useful; best order) | load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        base = r.get("baseline")
        if base:
            lines.append(
                f"| {r['set']} | baseline (1 server) | {base['builds']} ({_bounds(r)}) "
                f"| {_densities(base)} | {base['wall_s']:.1f} "
                f"| 1.0x | - | {base['discarded_share']:.1%} | {base['requests_per_model']} "
                f"| - | - | {_loads(base)} |"
            )
        script = r.get("vendor_script")
        if script:
            lines.append(
                f"| {r['set']} | vendor's batching-minimal.py, unmodified (1 server) "
                f"| {script['builds']} ({_bounds(r)}) | {_densities(script)} "
                f"| {script['wall_s']:.1f} | - | 1.0x | {script['discarded_share']:.1%} "
                f"| {script['requests_per_model']} | - | - | {_loads(script)} |"
            )
        for run in r["pipeline"]:
            versus = run.get("speedup_vs_script")
            speedup = run.get("speedup")
            lines.append(
                f"| {r['set']} | pipeline, {run['servers']} server(s) (pool {run['pool']}) "
                f"| {run['builds']} ({_bounds(r)}) | {_densities(run)} "
                f"| {run['wall_s']:.1f} | {f'{speedup}x' if speedup is not None else '-'} "
                f"| {f'{versus}x' if versus is not None else '-'} "
                f"| {run['discarded_share']:.1%} | {run['requests_per_model']} "
                f"| {run['runner_cpu_ms_per_model']:.2f} | {run['parallel_efficiency']:.2f} "
                f"({run.get('parallel_efficiency_useful', run['parallel_efficiency']):.2f}"
                + (f"; <= {run['efficiency_bound']:.2f}" if "efficiency_bound" in run else "")
                + ") "
                f"| {_loads(run)} |"
            )
    repeated = [
        f"{r['set']} on {run['servers']}: "
        + ", ".join(f"{cpu:.2f}" for cpu in run["runner_cpu_ms_per_model_runs"])
        for r in results for run in r["pipeline"] if "runner_cpu_ms_per_model_runs" in run
    ]
    if repeated:
        lines += [
            "",
            "Each pipeline row is the run of median runner CPU among its repeats (the other "
            "columns are that run's); runner CPU ms/model of every run, in order: "
            + "; ".join(repeated) + ".",
        ]
    replays = [
        f"{r['set']} on {run['servers']}: {d['run_order']:.2f} s (longest first "
        f"{d['longest_first']:.2f}, best {d['best']:.2f}; wall {run['wall_s']:.2f})"
        for r in results for run in r["pipeline"]
        if (d := run.get("dispatch_replayed")) is not None
    ]
    if replays:
        lines += [
            "",
            "Each row's build times replayed offline through dispatch (each build to the "
            "server that frees first; load does not bias this): the run's start order, "
            "longest first, and the best assignment: " + "; ".join(replays) + ".",
        ]
    lines += ["", "Planning (runner process, before the run):", ""]
    for r in results:
        lines.append(
            f"- {r['set']}: reading {r['read_cpu_ms_per_model']:.2f} ms/model, planning "
            f"{r['plan_cpu_ms_per_model']:.2f} ms/model, {r['planned_builds']} planned builds, "
            f"planned density {r['planned_density']:.0%}."
        )
        for run in r["pipeline"]:
            if (p := run.get("planned")) is not None and run["servers"] > 1:
                lines.append(
                    f"  - planned for {run['servers']} servers: {p['plan_cpu_ms_per_model']:.2f} "
                    f"ms/model, {p['builds']} builds, density {p['density']:.0%}, "
                    f"{p['models_moved']} models in another build, longest queue's work "
                    f"{p['work_span'][0]} -> {p['work_span'][1]} (mean {p['work_mean']})."
                )
        with_planning = [
            f"{run['servers']} server(s) {run['speedup_with_planning']}x"
            for run in r["pipeline"] if "speedup_with_planning" in run
        ]
        if with_planning:
            lines.append("  - against the baseline with the plan's planning CPU added to the "
                         "run's wall: " + ", ".join(with_planning) + ".")
        if r.get("empty_builds"):
            lines.append("  - planned with `batching.empty_builds: true`.")
    lines += [
        "",
        "Density is the sum of the convex-hull areas of the models' shadows (as oriented) over "
        "the platform area, averaged over builds; in brackets, the same with each shadow's "
        "hull grown by its raft rim (the footprint as placed). The bound is "
        "ceil(sum of those areas / platform area) + 1, for each reading. Discarded work is "
        "priced by the simulator's "
        "latency table: the carried models' import, orient and support in the build they "
        "left plus the layouts that did not fit (baseline: the failed layout and the removed "
        "model's preparation). Efficiency is busy server time / pool servers / wall time; "
        "busy is the time servers are leased to builds, which includes the final build's wait "
        "for the other builds' carries (after its first layout since session 19, before it "
        "until then), and the useful efficiency in "
        "brackets takes that wait off. The best order's bound (after `<=`) is what any "
        "assignment of these builds, with the server times they took, to the pool's servers "
        "could reach at most: busy time / servers / the least possible makespan (exact, or "
        "its lower bound when the search is cut short), so a shortfall below it is the "
        "scheduler's and the rest is the builds' number and sizes. "
        "Requests count every HTTP exchange with the simulators, polls included. Load is the "
        "machine's 1-minute load average before and after the run (2 cores).",
        "",
        "Reproduce: `nice python bench/bench_builds.py` (see the module docstring for options).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="mixed200,arches64")
    parser.add_argument("--servers", default="1,4")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--output", default="builds", help="results file: a stem under bench/results/, or a path"
    )
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="runs per set and server count; the row is the run of median runner CPU",
    )
    parser.add_argument(
        "--baseline-from", type=Path, default=None,
        help="reuse the baselines of an earlier results JSON (same sets and time scale)",
    )
    parser.add_argument(
        "--raft-type", choices=RAFT_TYPES, default="FULL_RAFT",
        help="the raft of both sides' auto_support (default full rafts)",
    )
    parser.add_argument(
        "--empty-builds", action="store_true",
        help="plan with batching.empty_builds: true (the planner empties its emptiest builds)",
    )
    parser.add_argument(
        "--vendor-script", type=Path, default=None,
        help="Formlabs' batching-minimal.py, run unmodified as a second baseline",
    )
    parser.add_argument(
        "--vendor-python", type=Path, default=Path(sys.executable),
        help="the interpreter for --vendor-script (has formlabs_local_api_minimal, requests)",
    )
    args = parser.parse_args(argv)
    vendor = None
    if args.vendor_script is not None:
        if args.raft_type != "FULL_RAFT":
            parser.error("the vendor script supports with the server's default raft (full): "
                         "--vendor-script needs --raft-type FULL_RAFT")
        if not args.vendor_script.is_file():
            parser.error(f"--vendor-script {args.vendor_script}: no such file")
        vendor = (args.vendor_script, args.vendor_python)
    counts = [int(c) for c in args.servers.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="bench-builds-"))
    results = []
    try:
        configure_logging(level="INFO", json_file=work / "bench.jsonl", console=sys.stderr)
        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.ERROR)
        earlier: dict[str, Any] = {}
        if args.baseline_from is not None:
            saved = json.loads(args.baseline_from.read_text(encoding="utf-8"))
            earlier = {s["set"]: s["baseline"] for s in saved["sets"] if "baseline" in s}
            # Files from before --raft-type ran their baselines on full rafts.
            kinds = {s.get("raft_type", "FULL_RAFT") for s in saved["sets"]}
            if kinds != {args.raft_type}:
                parser.error(f"{args.baseline_from} ran on {', '.join(sorted(kinds))}, "
                             f"not {args.raft_type}: run the baseline again")
        for name in [s for s in args.sets.split(",") if s]:
            baseline: bool | dict[str, Any] = earlier.get(name, not args.no_baseline)
            results.append(
                bench_set(name, counts, work, args.time_scale, baseline, max(1, args.repeat),
                          args.raft_type, vendor, args.empty_builds)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = {
        "time_scale": args.time_scale,
        "raft_type": args.raft_type,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "baseline_from": (
            args.baseline_from.name if args.baseline_from is not None else None
        ),
        "vendor_script": str(args.vendor_script) if args.vendor_script is not None else None,
    }
    results_path(args.output, ".json").write_text(
        json.dumps({"benchmark": "builds", **meta, "sets": results}, indent=2) + "\n", "utf-8"
    )
    results_path(args.output, ".md").write_text(_markdown(results, meta), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
