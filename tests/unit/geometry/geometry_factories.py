"""Meshes with known measurements for the geometry tests (imported by name, no files), and
the one way a test takes a reader's refusal of a file (:func:`refusal`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh

__all__ = ["CUBE_FACES", "CUBE_VERTICES", "box_triangles", "refusal", "tetrahedron_triangles"]

# Unit cube corners and outward-facing triangles (counter-clockwise seen from outside).
CUBE_VERTICES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]],
    dtype=np.float64,
)
CUBE_FACES = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # bottom
        [4, 5, 6], [4, 6, 7],  # top
        [0, 1, 5], [0, 5, 4],  # front
        [1, 2, 6], [1, 6, 5],  # right
        [2, 3, 7], [2, 7, 6],  # back
        [3, 0, 4], [3, 4, 7],  # left
    ]
)  # fmt: skip


def box_triangles(
    sx: float, sy: float, sz: float, origin: tuple[float, float, float] = (0, 0, 0)
) -> npt.NDArray[np.float32]:
    """A closed axis-aligned box as a triangle soup."""
    corners = CUBE_VERTICES * np.array([sx, sy, sz]) + np.array(origin)
    return corners[CUBE_FACES].astype(np.float32)


def tetrahedron_triangles() -> npt.NDArray[np.float32]:
    """The corner tetrahedron (0,0,0) (1,0,0) (0,1,0) (0,0,1): volume 1/6."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return v[faces].astype(np.float32)


def refusal(path: Path) -> ModelFileError:
    """The error :func:`read_mesh` refuses ``path`` with (the test fails if it reads it)."""
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    return caught.value
