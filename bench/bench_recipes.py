"""Benchmark: validating 1,000 recipes, and planning 1,000 models into builds.

Validation: the example recipes in ``recipes/`` (with their ``base/`` files for ``extends:``)
are copied into a temporary directory as 1,000 variants (different names, batching limits,
spacing, label font sizes, auto-support density), and each variant file is validated from
disk with :func:`preform_pipeline.recipes.validate_recipe` (YAML with positions, JSON Schema,
semantic checks, model building). Every variant must come out valid.

Planning: 1,000 small binary STL files (boxes and 48-segment cylinders, 8 to 40 mm so that
``units: DETECTED`` reads them as millimetres, in 200 case folders of five) are written with
:func:`preform_pipeline.geometry.write_stl`. Two
timings per recipe: :func:`plan_builds` on models already read (grouping + step graphs), and
end to end (:func:`read_models` over the folder for the recipe's machine, as ``plan`` reads,
then :func:`plan_builds`).

Writes bench/results/recipes.json and bench/results/recipes.md.

    python bench/bench_recipes.py [--recipes N] [--models N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preform_pipeline.geometry import write_stl
from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import plan_builds, read_models, recipe_machine
from preform_pipeline.recipes import load_recipe, validate_recipe

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RECIPES = 1000
DEFAULT_MODELS = 1000
DEFAULT_REPEATS = 5
MODELS_PER_CASE = 5
#: Targets from the project brief.
TARGET_VALIDATE_MS = 20.0
TARGET_PLAN_S = 2.0
#: Recipes the planning benchmark runs: resin with and without cases kept together, large-format
#: resin, powder.
PLAN_RECIPES = (
    "engineering-grey-form4.yaml",
    "dental-models-form4.yaml",
    "large-parts-form4l.yaml",
    "fuse-nylon12-sls.yaml",
)


# -- recipe variants ------------------------------------------------------------------------------


def _vary(data: dict[str, Any], n: int) -> dict[str, Any]:
    """A valid variant of a recipe mapping: fields that any value in range keeps valid."""
    out = dict(data)
    out["name"] = f"variant-{n:04d}"
    batching = dict(out.get("batching") or {})
    batching["max_models_per_build"] = 4 + n % 20
    # Planning spacing may not be tighter than any layout step's model spacing.
    layout = [
        float(opts.get("model_spacing_mm", 0.0))
        for step in out.get("steps") or []
        if isinstance(step, dict)
        for opts in step.values()
        if isinstance(opts, dict)
    ]
    batching["spacing_mm"] = max([2.0, *layout]) + (n % 5) * 0.5
    batching["keep_cases_together"] = n % 2 == 0
    out["batching"] = batching
    steps = []
    for step in out.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("label"), dict):
            step = {**step, "label": {**step["label"], "font_size_mm": 3 + n % 5}}
        if isinstance(step, dict) and isinstance(step.get("auto_support"), dict):
            support = {**step["auto_support"], "density": 0.8 + (n % 5) * 0.1}
            step = {**step, "auto_support": support}
        steps.append(step)
    if steps:
        out["steps"] = steps
    return out


def _write_variants(folder: Path, count: int) -> list[Path]:
    sources = sorted((REPO / "recipes").glob("*.yaml"))
    if not sources:
        raise SystemExit("no recipes in recipes/ to vary")
    if (REPO / "recipes" / "base").is_dir():
        shutil.copytree(REPO / "recipes" / "base", folder / "base")
    loaded = [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in sources]
    paths = []
    for n in range(count):
        source, data = loaded[n % len(loaded)]
        path = folder / f"variant-{n:04d}-{source.name}"
        path.write_text(yaml.safe_dump(_vary(data, n), sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def _bench_validation(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_variants(Path(tmp), count)
        validate_recipe(paths[0])  # warm-up: schema compilation and imports
        times = []
        invalid = []
        for path in paths:
            start = time.perf_counter()
            report = validate_recipe(path)
            times.append(time.perf_counter() - start)
            if report.recipe is None:
                invalid.append((path.name, [str(p) for p in report.problems][:3]))
    if invalid:
        raise SystemExit(f"{len(invalid)} variants were invalid, e.g. {invalid[0]}")
    ms = sorted(t * 1000 for t in times)
    return {
        "recipes": count,
        "total_s": round(sum(times), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[max(0, math.ceil(0.95 * len(ms)) - 1)], 3),
        "max_ms": round(ms[-1], 3),
        "target_ms": TARGET_VALIDATE_MS,
        "meets_target": statistics.fmean(ms) < TARGET_VALIDATE_MS,
    }


# -- model files ----------------------------------------------------------------------------------


def _box(sx: float, sy: float, sz: float) -> np.ndarray:
    corners = np.array([[x, y, z] for z in (0, sz) for y in (0, sy) for x in (0, sx)], float)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    faces = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return np.asarray(corners[np.array(faces)], dtype=float)


def _cylinder(radius: float, height: float, segments: int = 48) -> np.ndarray:
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    nxt = np.roll(ring, -1, axis=0)
    zeros, tops = np.zeros((segments, 1)), np.full((segments, 1), height)
    low, high = np.hstack([ring, zeros]), np.hstack([ring, tops])
    low2, high2 = np.hstack([nxt, zeros]), np.hstack([nxt, tops])
    centre_low, centre_high = np.zeros((segments, 3)), np.hstack([np.zeros((segments, 2)), tops])
    triangles = [
        np.stack([centre_low, low2, low], axis=1),
        np.stack([centre_high, high, high2], axis=1),
        np.stack([low, low2, high2], axis=1),
        np.stack([low, high2, high], axis=1),
    ]
    return np.concatenate(triangles)


def _write_models(folder: Path, count: int) -> int:
    rng = np.random.default_rng(20240601)
    triangles = 0
    for n in range(count):
        case = folder / f"case-{n // MODELS_PER_CASE:04d}"
        case.mkdir(exist_ok=True)
        if n % 2:
            mesh = _cylinder(rng.uniform(4.0, 20.0), rng.uniform(8.0, 40.0))
        else:
            mesh = _box(*rng.uniform(8.0, 40.0, size=3))
        write_stl(case / f"part-{n:04d}.stl", mesh.astype(np.float32))
        triangles += len(mesh)
    return triangles


def _timed(fn: Any, repeats: int) -> tuple[float, float, Any]:
    """Median wall time and median process CPU time of ``repeats`` calls, and the last result.

    CPU time too: on a shared machine the neighbours' load stretches wall time far more than
    the CPU time the work itself takes (the target is wall time on a machine of its own).
    """
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def _bench_planning(count: int, repeats: int) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        triangles = _write_models(folder, count)
        for name in PLAN_RECIPES:
            recipe = load_recipe(REPO / "recipes" / name)
            # As `plan` and `run` read: units judged against the recipe's machine, and no
            # shadows measured for a powder machine.
            machine = recipe_machine(recipe)
            models = read_models([folder], import_spec=recipe.import_options, machine=machine)
            plan_s, plan_cpu, plan = _timed(
                lambda: plan_builds(recipe, models), repeats  # noqa: B023
            )
            e2e_s, e2e_cpu, _ = _timed(
                lambda: plan_builds(
                    recipe,  # noqa: B023
                    read_models(
                        [folder], import_spec=recipe.import_options, machine=machine  # noqa: B023
                    ),
                ),
                repeats,
            )
            rows.append(
                {
                    "recipe": name,
                    "machine": recipe.scene.machine_type,
                    "technology": recipe.technology,
                    "models": len(models),
                    "builds": len(plan.builds),
                    "rejected": len(plan.rejected),
                    "plan_builds_s": round(plan_s, 4),
                    "read_and_plan_s": round(e2e_s, 4),
                    "plan_builds_cpu_s": round(plan_cpu, 4),
                    "read_and_plan_cpu_s": round(e2e_cpu, 4),
                    "meets_target": e2e_s < TARGET_PLAN_S,
                }
            )
    return {
        "models": count,
        "model_triangles_total": triangles,
        "repeats": repeats,
        "statistic": "median wall time of repeats (and median process CPU time)",
        "load_1min_after": os.getloadavg()[0],
        "target_s": TARGET_PLAN_S,
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=DEFAULT_RECIPES)
    parser.add_argument("--models", type=int, default=DEFAULT_MODELS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    # Planning logs a warning per rejected model; keep the benchmark's output readable.
    configure_logging(level="ERROR")

    load_before = os.getloadavg()[0]
    validation = _bench_validation(args.recipes)
    planning = _bench_planning(args.models, args.repeats)
    result = {
        "benchmark": "recipes",
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "numpy": np.__version__,
        },
        "load_1min_before": load_before,
        "validation": validation,
        "planning": planning,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recipes.json").write_text(json.dumps(result, indent=2) + "\n")

    v = validation
    lines = [
        "# Recipe validation and build planning",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}. Single process, single thread.",
        "",
        f"## Validating {v['recipes']:,} recipes",
        "",
        "Variants of the example recipes (extends, labels, supports, batching), each validated "
        "from its file: YAML with positions, JSON Schema, semantic checks, model building.",
        "",
        "| mean (ms) | median (ms) | p95 (ms) | max (ms) | total (s) | target |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {v['mean_ms']:.2f} | {v['median_ms']:.2f} | {v['p95_ms']:.2f} | {v['max_ms']:.2f} | "
        f"{v['total_s']:.2f} | < {TARGET_VALIDATE_MS:g} ms per recipe: "
        f"{'met' if v['meets_target'] else 'NOT met'} |",
        "",
        f"## Planning {planning['models']:,} models",
        "",
        f"Binary STL boxes and cylinders ({planning['model_triangles_total']:,} triangles in "
        f"all), {MODELS_PER_CASE} per case folder. Median of {args.repeats} runs, wall time "
        f"and process CPU time; 1-minute load {load_before:.2f} before, "
        f"{planning['load_1min_after']:.2f} after.",
        "",
        "| recipe | machine | builds | rejected | plan_builds (s) | read + plan (s) "
        "| plan_builds CPU (s) | read + plan CPU (s) | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in planning["results"]:
        lines.append(
            f"| {row['recipe']} | {row['machine']} | {row['builds']} | {row['rejected']} | "
            f"{row['plan_builds_s']:.3f} | {row['read_and_plan_s']:.3f} | "
            f"{row['plan_builds_cpu_s']:.3f} | {row['read_and_plan_cpu_s']:.3f} | < "
            f"{TARGET_PLAN_S:g} s: {'met' if row['meets_target'] else 'NOT met'} |"
        )
    lines += ["", "Reproduce with `python bench/bench_recipes.py`."]
    (RESULTS / "recipes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
