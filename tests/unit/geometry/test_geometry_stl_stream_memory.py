"""A binary STL read from a file costs its float32 vertex array and a few MB more, as the
reader's module docstring promises (a real file in tmp_path, memory measured by tracemalloc,
which sees numpy's allocations)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.stl import write_stl

TRIANGLES = 300_000
#: "A few MB more" than the vertex array: the reused read buffer (3.3 MB) and small change.
ALLOWANCE_BYTES = 8 * 1024 * 1024


class TestReadingALargeBinarySTL:
    """The triangles are read into one float32 array, not a wider one converted after."""

    def test_the_peak_memory_is_the_vertex_array_and_a_few_mb(self, tmp_path: Path) -> None:
        triangles = np.random.default_rng(29).uniform(0.0, 50.0, (TRIANGLES, 3, 3))
        path = tmp_path / "large.stl"
        write_stl(path, triangles.astype(np.float32))
        tracemalloc.start()
        try:
            mesh = read_mesh(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert mesh.triangle_count == TRIANGLES
        vertex_array = TRIANGLES * 9 * 4  # float32
        assert mesh.triangles.nbytes == vertex_array
        assert peak < vertex_array + ALLOWANCE_BYTES
