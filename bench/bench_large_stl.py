"""Benchmark: planning one 300 MB binary STL (issue 18's large-file target: < 5 s, < 700 MB).

Generates the file at bench time into ``bench/.data/`` (git-ignored; kept between runs so the
next run skips the generation): a grid of closed boxes, 6 M triangles, that fits a Form 4
platform. Each measured run is a fresh child process that reads and plans the file
(``read_models`` + ``plan_builds``, as ``preform-pipeline plan`` does) and reports its wall
time and peak resident memory. Writes bench/results/large_stl.json and .md.

    nice python bench/bench_large_stl.py [--triangles N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE / ".data"
#: 6 M triangles x 50 bytes + 84 = 300 MB.
DEFAULT_TRIANGLES = 6_000_000
TARGET_S = 5.0
TARGET_MB = 700.0

_CHILD = """
import sys, time, resource
from pathlib import Path
sys.path.insert(0, {root!r})
from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes.model import ImportSpec
from tests.unit.plan.planning_factories import make_recipe
start = time.perf_counter()
recipe = make_recipe(units="MILLIMETERS", steps=("auto_layout",))
models = read_models([Path({path!r})], import_spec=recipe.import_options,
                     machine=DEFAULT_CATALOGUE.machine("FORM-4-0"))
plan = plan_builds(recipe, models)
elapsed = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(elapsed, peak_kb, len(plan.builds))
"""


def _box(x: float, y: float, size: float) -> np.ndarray:
    lo = np.array([x, y, 0.0])
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    v = lo + corners * size
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
             (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    return np.array([[v[a], v[b], v[c]] for a, b, c in faces], dtype=np.float32)


def generate(path: Path, triangles: int) -> None:
    """A binary STL of ``triangles`` (a multiple of 12) as a grid of 0.5 mm boxes."""
    boxes = triangles // 12
    side = int(np.ceil(np.sqrt(boxes)))
    record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    template = _box(0.0, 0.0, 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(b"bench large stl".ljust(80, b" "))
        handle.write(np.uint32(boxes * 12).tobytes())
        for row in range(side):
            count = min(side, boxes - row * side)
            if count <= 0:
                break
            offsets = np.zeros((count, 1, 1, 3), np.float32)
            offsets[:, 0, 0, 0] = np.arange(count) * 0.15
            offsets[:, 0, 0, 1] = row * 0.15
            tris = (template[None] + offsets).reshape(-1, 3, 3)
            chunk = np.zeros(tris.shape[0], dtype=record)
            chunk["v"] = tris
            handle.write(chunk.tobytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triangles", type=int, default=DEFAULT_TRIANGLES)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    path = DATA / f"large_{args.triangles}.stl"
    if not path.exists():
        generate(path, args.triangles)
    runs: list[dict[str, float]] = []
    for _ in range(args.repeats):
        code = _CHILD.format(root=str(HERE.parent), path=str(path))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, timeout=600)
        elapsed, peak_kb, _ = done.stdout.split()
        runs.append({"wall_s": float(elapsed), "peak_rss_mb": int(peak_kb) / 1024})
    result: dict[str, Any] = {
        "benchmark": "plan one large binary STL",
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "triangles": args.triangles,
        "runs": runs,
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
        "max_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "targets": {"wall_s": TARGET_S, "peak_rss_mb": TARGET_MB},
        "machine": platform.platform(),
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "large_stl.json").write_text(json.dumps(result, indent=2) + "\n",
                                            encoding="utf-8")
    met = (result["median_wall_s"] < TARGET_S and result["max_peak_rss_mb"] < TARGET_MB)
    (RESULTS / "large_stl.md").write_text(
        f"# Planning a {result['file_mb']} MB binary STL ({args.triangles} triangles)\n\n"
        f"Median wall time {result['median_wall_s']} s, peak RSS {result['max_peak_rss_mb']} MB "
        f"over {len(runs)} fresh processes (targets: < {TARGET_S:g} s, < {TARGET_MB:g} MB: "
        f"{'met' if met else 'NOT met'}). Shared 2-core machine under load from other work; "
        f"`nice python bench/bench_large_stl.py`.\n",
        encoding="utf-8",
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
