"""Fixtures shared by the geometry tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from geometry_factories import box_triangles, tetrahedron_triangles


@pytest.fixture
def cube() -> npt.NDArray[np.float32]:
    return box_triangles(1, 1, 1)


@pytest.fixture
def tetrahedron() -> npt.NDArray[np.float32]:
    return tetrahedron_triangles()
