"""Reading models for planning: CPU time per model, and a fingerprint of every result.

``time``: reads the 1,000 boxes and cylinders of ``bench_recipes`` and the generated dental
arches of ``bench_builds`` with :func:`~preform_pipeline.plan.builds.read_models`, timing each
pass by process CPU time (the machine is shared, wall time would measure the neighbours);
median of ``--repeats`` passes. ``fingerprint``: writes a SHA-256 per model of everything
planning keeps from reading (shadow points, hull areas, sizes, warnings) and of the checks
(defects, orientation fault, flat orientation), and of each set's planned builds and
placements under every resin recipe of ``bench_recipes``, so a speed-up can be shown to
change nothing (compare two files with ``cmp``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_builds import _models  # noqa: E402
from bench_recipes import PLAN_RECIPES, _write_models  # noqa: E402

import preform_pipeline  # noqa: E402
from preform_pipeline.geometry import best_flat_orientation, mesh_defects, read_mesh  # noqa: E402
from preform_pipeline.geometry.orientation import orientation_fault  # noqa: E402
from preform_pipeline.logging import configure_logging  # noqa: E402
from preform_pipeline.plan.builds import ModelInfo, plan_builds, read_models  # noqa: E402
from preform_pipeline.recipes import load_recipe  # noqa: E402
from preform_pipeline.recipes.model import Recipe  # noqa: E402

__all__ = ["main"]

_RECIPE = BENCH.parent / "recipes" / PLAN_RECIPES[0]
_RESIN_RECIPES = tuple(BENCH.parent / "recipes" / name for name in PLAN_RECIPES
                       if name != "fuse-nylon12-sls.yaml")


def _sets(work: Path) -> dict[str, list[Path]]:
    boxes = work / "boxes1000"
    boxes.mkdir()
    _write_models(boxes, 1000)
    return {
        "boxes1000": sorted(boxes.rglob("*.stl")),
        "arches64": _models("arches64", work),
        "mixed200": _models("mixed200", work),
    }


def _cpu(paths: list[Path], repeats: int) -> list[float]:
    spec = load_recipe(_RECIPE).import_options
    times = []
    for _ in range(repeats):
        start = time.process_time()
        read_models(paths, import_spec=spec)
        times.append(time.process_time() - start)
    return times


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray)
                 else repr(part).encode())
    return h.hexdigest()[:16]


def _model_print(info: ModelInfo) -> str:
    s = info.shadow
    assert s is not None
    return _digest(s.as_is, s.flat, s.as_is_hull_mm2, s.flat_hull_mm2, s.as_is is s.flat,
                   info.size_mm, info.volume_mm3, info.support_estimate_mm3,
                   info.surface_mm2, info.normals_warning, info.units)


def _fingerprint(sets: dict[str, list[Path]], work: Path) -> dict[str, Any]:
    recipe = load_recipe(_RECIPE)
    out: dict[str, Any] = {}
    for name, paths in sets.items():
        infos = read_models(paths, import_spec=recipe.import_options)
        checks = []
        for path in paths:
            mesh = read_mesh(path)
            checks.append(_digest(mesh_defects(mesh), orientation_fault(mesh),
                                  best_flat_orientation(mesh)))
        out[name] = {
            "models": {i.path.name: _model_print(i) for i in infos},
            "checks": checks,
            "plan": _plan_print(recipe, infos, work),
            # Every resin recipe of bench_recipes (cases kept together, another machine).
            "plans": {path.name: _plan_print(load_recipe(path), infos, work)
                      for path in _RESIN_RECIPES},
        }
    return out


def _plan_print(recipe: Recipe, infos: list[ModelInfo], work: Path) -> str:
    plan = plan_builds(recipe, infos)
    # Paths relative to the temporary folder (named anew on every run) and to the checkout
    # (the arches are written under it), so two checkouts compare. The placements are in
    # the builds' repr.
    return _digest(repr((plan.builds, plan.rejected))
                   .replace(str(work), "").replace(str(BENCH.parent), ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("time", "fingerprint"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    # The warnings every guessed-units model logs would be timed too: keep errors only.
    configure_logging(level="ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        sets = _sets(Path(tmp))
        if args.mode == "fingerprint":
            text = json.dumps(_fingerprint(sets, Path(tmp)), indent=1, sort_keys=True)
        else:
            rows = {}
            for name, paths in sets.items():
                times = _cpu(paths, args.repeats)
                rows[name] = {
                    "models": len(paths),
                    "cpu_s_runs": [round(t, 3) for t in times],
                    "cpu_s_median": round(statistics.median(times), 3),
                    "cpu_ms_per_model": round(1000 * statistics.median(times) / len(paths), 2),
                }
            text = json.dumps({"package": str(Path(preform_pipeline.__file__).parent),
                               "load_1min": os.getloadavg()[0], "sets": rows}, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
