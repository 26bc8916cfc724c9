"""A shadow's cells (:meth:`ShadowGrid.covered`): every cell its faces cover, each once, in
key order, also where the faces reach past the grid (above it or below its low corner)."""

from __future__ import annotations

import numpy as np
import pytest

from preform_pipeline.geometry import Mesh
from preform_pipeline.simulator.contact import ShadowGrid
from preform_pipeline.simulator.meshops import box_triangles

__all__: list[str] = []


def block(x0: float, y0: float, x1: float, y1: float) -> Mesh:
    return Mesh(box_triangles((x0, y0, 0.0), (x1, y1, 5.0)).astype(np.float32), "block")


def cells_under(grid: ShadowGrid, x0: float, y0: float, x1: float, y1: float) -> list[int]:
    """The keys of the cells from the one holding (x0, y0) to the one holding (x1, y1), edges
    included, as the grid numbers them (two cells of border, ``_side`` cells a row)."""
    (i0, j0), (i1, j1) = (np.floor((np.array(p) - grid.low) / grid.cell).astype(int) + 2
                          for p in ((x0, y0), (x1, y1)))
    return sorted(int(i) * grid._side + int(j)
                  for i in range(i0, i1 + 1) for j in range(j0, j1 + 1))


class TestCoveredCells:
    """A block's shadow is exactly the cells under it, on the grid or reaching past it."""

    # Below the grid's low corner a key is negative: marked on the grid it would land on the
    # flags' far end (numpy's negative index), another cell's (review rv46-suiteunita).
    @pytest.mark.parametrize("corners", [(1.0, 2.0, 2.0, 2.5), (8.0, 8.5, 12.0, 9.0),
                                         (-1.0, -0.8, 0.5, 0.5)],
                             ids=["on-the-grid", "reaching-past-it", "reaching-below-it"])
    def test_a_block_covers_the_cells_under_it_once_each_in_order(
        self, corners: tuple[float, float, float, float]
    ) -> None:
        grid = ShadowGrid(np.array([0.0, 0.0]), np.array([10.0, 10.0]))
        assert grid.cell == 0.25
        cells = grid.covered(block(*corners))
        assert cells.dtype == np.int64
        assert cells.tolist() == cells_under(grid, *corners)
