"""Benchmark: what the hostile-input defences cost when reading models.

Times, on a generated 1.1 M-triangle binary STL (55 MB): parsing alone, the sanity checks
(zero area, flatness), read_mesh end to end, and the defect check (open edges, inverted
normals) on the largest mesh it runs on. Also times refusing the 1.5 GiB
zip bomb of the hostile corpus and its peak Python memory. Writes
``bench/results/read_checks.json`` and ``.md``.

Run: ``python bench/bench_read_checks.py [--repeats N]`` (nice it on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from preform_pipeline.errors import ModelFileError  # noqa: E402
from preform_pipeline.geometry import Mesh, mesh_defects, read_mesh, write_stl  # noqa: E402
from preform_pipeline.geometry._checks import (  # noqa: E402
    DEFECT_CHECK_MAX_TRIANGLES,
    sane_mesh,
)
from preform_pipeline.geometry.stl import read_stl_bytes  # noqa: E402
from tests.hostile_corpus import write_corpus  # noqa: E402

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_TRIANGLES = 1_100_000
DEFAULT_REPEATS = 5


def _median(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _refuse(path: Path) -> None:
    try:
        read_mesh(path)
    except ModelFileError:
        return
    raise SystemExit(f"{path} was not refused")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(20240501)
        centres = rng.uniform(0.0, 150.0, size=(DEFAULT_TRIANGLES, 1, 3))
        big = folder / "big.stl"
        write_stl(big, (centres + rng.normal(scale=0.5, size=(DEFAULT_TRIANGLES, 3, 3)))
                  .astype(np.float32))
        data = big.read_bytes()
        mesh = read_stl_bytes(data, origin=big, name="big", source=big)
        part = Mesh(mesh.triangles[:DEFECT_CHECK_MAX_TRIANGLES], "part")
        corpus = folder / "corpus"
        write_corpus(corpus)
        rows = {
            "parse binary STL (1.1 M triangles)": _median(
                lambda: read_stl_bytes(data, origin=big, name="b", source=big), args.repeats),
            "sanity checks (1.1 M triangles)": _median(
                lambda: sane_mesh(mesh, big), args.repeats),
            "read_mesh end to end (1.1 M triangles)": _median(
                lambda: read_mesh(big), args.repeats),
            f"defect check ({DEFECT_CHECK_MAX_TRIANGLES:,} triangles, the most it checks)": _median(
                lambda: mesh_defects(part), args.repeats),
            "refuse the 1.5 GiB zip bomb": _median(
                lambda: _refuse(corpus / "bomb.3mf"), args.repeats),
        }
        tracemalloc.start()
        _refuse(corpus / "bomb.3mf")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    result = {
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform()},
        "repeats": args.repeats,
        "median_s": {k: round(v, 4) for k, v in rows.items()},
        "zip_bomb_peak_python_mib": round(peak / 2**20, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "read_checks.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Cost of the hostile-input defences when reading models",
        "",
        f"Median of {args.repeats} runs; Python {platform.python_version()}, numpy "
        f"{np.__version__}; a shared 2-core machine under load from other work, so compare "
        "rows with each other rather than with other result files.",
        "",
        "| step | median (s) |",
        "| --- | ---: |",
        *(f"| {k} | {v:.4f} |" for k, v in rows.items()),
        "",
        f"Peak Python memory while refusing the zip bomb: {peak / 2**20:.2f} MiB.",
        "",
        "Reproduce with `python bench/bench_read_checks.py`.",
    ]
    (RESULTS / "read_checks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
