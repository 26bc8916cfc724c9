"""Benchmark: reading a large binary STL with read_mesh, numpy-stl and trimesh.

Generates a binary STL of at least 50 MB in a temporary directory (not kept), warms the page
cache, then times each reader several times in the same run and reports the median and MB/s.
Writes bench/results/stl_read.json and bench/results/stl_read.md.

    python bench/bench_stl_read.py [--triangles N] [--repeats R]

numpy-stl and trimesh come from the ``bench`` extra; a reader that is not installed is
reported as missing rather than failing the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preform_pipeline.geometry import read_mesh, write_stl

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
#: 1.1 M triangles x 50 bytes = 55 MB, above the 50 MB the target names.
DEFAULT_TRIANGLES = 1_100_000
DEFAULT_REPEATS = 5


def _make_stl(path: Path, count: int) -> None:
    rng = np.random.default_rng(20240501)
    centres = rng.uniform(0.0, 150.0, size=(count, 1, 3))
    write_stl(path, (centres + rng.normal(scale=0.5, size=(count, 3, 3))).astype(np.float32))


def _readers() -> dict[str, Callable[[Path], Any] | None]:
    readers: dict[str, Callable[[Path], Any] | None] = {
        "preform_pipeline.read_mesh": lambda p: read_mesh(p).triangles,
    }
    try:
        from stl import mesh as stl_mesh

        readers["numpy-stl Mesh.from_file"] = lambda p: stl_mesh.Mesh.from_file(str(p)).vectors
    except ImportError:
        readers["numpy-stl Mesh.from_file"] = None
    try:
        import trimesh

        readers["trimesh.load(process=False)"] = lambda p: trimesh.load(
            str(p), process=False
        ).triangles  # type: ignore[attr-defined]
    except ImportError:
        readers["trimesh.load(process=False)"] = None
    return readers


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triangles", type=int, default=DEFAULT_TRIANGLES)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.stl"
        _make_stl(path, args.triangles)
        size = path.stat().st_size
        path.read_bytes()  # warm the page cache so every reader sees the same conditions
        reference = read_mesh(path).triangles
        rows: list[dict[str, Any]] = []
        for label, reader in _readers().items():
            if reader is None:
                rows.append({"reader": label, "available": False})
                continue
            got = np.asarray(reader(path), dtype=np.float32).reshape(-1, 3, 3)
            if not np.array_equal(got, reference):
                raise SystemExit(f"{label} read different triangles than read_mesh")
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                reader(path)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            rows.append(
                {
                    "reader": label,
                    "available": True,
                    "median_s": round(median, 5),
                    "min_s": round(min(times), 5),
                    "mb_per_s": round(size / 1e6 / median, 1),
                }
            )

    ours = float(rows[0]["median_s"])
    for row in rows:
        if row.get("available"):
            row["relative_to_read_mesh"] = round(float(row["median_s"]) / ours, 2)
    result = {
        "benchmark": "stl_read",
        "file_bytes": size,
        "file_mb": round(size / 1e6, 1),
        "triangles": args.triangles,
        "repeats": args.repeats,
        "statistic": "median wall time of repeats, page cache warm",
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "numpy": np.__version__,
            "numpy-stl": _version("numpy-stl"),
            "trimesh": _version("trimesh"),
        },
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stl_read.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Binary STL read speed",
        "",
        f"File: {result['file_mb']} MB binary STL, {args.triangles:,} triangles, generated in a "
        f"temporary directory. Median of {args.repeats} reads each, page cache warm.",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, numpy "
        f"{np.__version__}, {platform.platform()}.",
        "",
        "| reader | median (s) | MB/s | time vs read_mesh |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.get("available"):
            lines.append(
                f"| {row['reader']} | {row['median_s']:.4f} | {row['mb_per_s']:.0f} | "
                f"{row['relative_to_read_mesh']:.2f}x |"
            )
        else:
            lines.append(f"| {row['reader']} | not installed | | |")
    lines += [
        "",
        "Target: read_mesh at least as fast as numpy-stl. Reproduce with "
        "`python bench/bench_stl_read.py`.",
    ]
    (RESULTS / "stl_read.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
