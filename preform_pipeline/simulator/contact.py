"""Whether two placed models come within a distance of each other on the platform: the
simulated server's interference check.

PreForm judges interference on the meshes themselves; the simulator does the same on the
platform: each model's shadow is the set of fine grid cells its triangles cover (sampled
on every triangle at under half a cell, slice by slice, so a scan of millions of triangles
costs no more memory than a slice), and two shadows meet when cells of theirs lie within the
distance of each other, measured between cell centres less a cell's diagonal (so the answer
errs towards "they meet", never towards "apart" when they touch).

Column extents (what the layout packer uses, :mod:`.outline_pack`) would fill every hollow
a column crosses: an arch nested at a slant in another's opening would seem to touch it.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.geometry import Mesh
from preform_pipeline.geometry.mesh import triangle_chunks

__all__ = ["CONTACT_CELL_MM", "MAX_CONTACT_CELLS", "ShadowGrid"]

#: Grid cell of the check: finer is closer to the exact distance, and slower.
CONTACT_CELL_MM: Final = 0.25
#: Cells along a side of the grid at most: a huge scene is judged on a coarser grid rather
#: than an unbounded one.
MAX_CONTACT_CELLS: Final = 4000
#: Samples along a triangle's edge at most (a huge triangle is sampled coarser).
_MAX_EDGE_SAMPLES: Final = 512
#: Sample points made at once at most (memory: 16 bytes each, twice).
_MAX_POINTS: Final = 1_000_000

_Cells = npt.NDArray[np.int64]


class ShadowGrid:
    """One grid for a scene's shadows: ``low`` its xy corner, cells ``cell`` mm wide."""

    def __init__(self, low: npt.NDArray[np.float64], high: npt.NDArray[np.float64]) -> None:
        self.low = np.asarray(low, dtype=np.float64)[:2]
        extent = float(np.max(np.asarray(high, dtype=np.float64)[:2] - self.low))
        self.cell = max(CONTACT_CELL_MM, extent / MAX_CONTACT_CELLS)
        self._side = int(extent / self.cell) + 8

    def covered(self, mesh: Mesh) -> _Cells:
        """The distinct cells the mesh's triangles cover, as one integer key each. A closed
        mesh's shadow is its upward (or downward) faces' alone: only the side with the
        larger shadow is sampled. Each triangle is sampled a cell apart at most along its
        longest edge: triangles are
        grouped by that count rounded up to a power of two, so a large flat face costs its
        area and a fine mesh its triangle count, not the product."""
        up = _covering_side(mesh)
        # One flag a cell of the grid: the samples mark theirs, and the marked cells read
        # back in order are the distinct keys. Sorting every sample's key instead
        # (``np.unique``) was most of a crowded platform's check: seconds for four supported
        # 90 x 60 mm boxes. A key off the grid (a point outside its bounds) is kept apart.
        marked = np.zeros(self._side * self._side, dtype=np.bool_)
        outside: list[_Cells] = []
        for chunk in triangle_chunks(mesh.triangles):
            corners = chunk[:, :, :2].astype(np.float64)
            corners = corners[_facing(corners, up) if up is not None else slice(None)]
            longest = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max(axis=1)
            wanted = np.maximum(1.0, np.ceil(longest / self.cell))
            levels = np.minimum(np.ceil(np.log2(wanted)), math.log2(_MAX_EDGE_SAMPLES))
            for level in np.unique(levels):
                n = int(2 ** level)
                self._mark(corners[levels == level], n, marked, outside)
        cells: _Cells = np.flatnonzero(marked).astype(np.int64)
        if outside:
            cells = np.union1d(cells, np.concatenate(outside))
        return cells

    def _mark(self, corners: npt.NDArray[np.float64], n: int, marked: npt.NDArray[np.bool_],
              outside: list[_Cells]) -> None:
        """Mark the cells of ``n + 1`` samples a side on each triangle (``(T, 3, 2)`` xy)
        in ``marked``; keys off the grid go to ``outside``."""
        u, v = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = u + v <= n
        wu, wv = u[keep] / n, v[keep] / n
        wo = 1.0 - wu - wv
        step = max(1, _MAX_POINTS // len(wu))
        side = self._side
        for at in range(0, len(corners), step):
            tri = corners[at:at + step]
            points = (
                tri[:, None, 0] * wo[None, :, None]
                + tri[:, None, 1] * wu[None, :, None]
                + tri[:, None, 2] * wv[None, :, None]
            ).reshape(-1, 2)
            ij = np.floor((points - self.low) / self.cell).astype(np.int64) + 2
            keys = ij[:, 0] * side + ij[:, 1]
            if ij.min() >= 0 and ij.max() < side:
                marked[keys] = True
                continue
            on_grid = np.all((ij >= 0) & (ij < side), axis=1)
            marked[keys[on_grid]] = True
            outside.append(np.unique(keys[~on_grid]))

    def _edge(self, keys: _Cells) -> npt.NDArray[np.float64]:
        """``(N, 2)`` cells of the set with a side on no other cell (only they can be
        nearest to another shadow), as cell coordinates."""
        side = self._side
        inner = (
            np.isin(keys + side, keys) & np.isin(keys - side, keys)
            & np.isin(keys + 1, keys) & np.isin(keys - 1, keys)
        )
        edge = keys[~inner]
        return np.stack([edge // side, edge % side], axis=1).astype(np.float64)

    def within(self, first: _Cells, second: _Cells, reach: float) -> bool:
        """Whether two shadows (:meth:`covered`) come within ``reach`` mm of each other,
        cell centres less a cell's diagonal."""
        if len(first) == 0 or len(second) == 0:
            return False
        # Both are sorted and distinct (covered): a shared cell is where one's key lands in
        # the other, found by a binary search rather than sorting the two together.
        at = np.minimum(np.searchsorted(second, first), len(second) - 1)
        if bool(np.any(second[at] == first)):
            return True
        slack = reach / self.cell + math.sqrt(2.0)
        a, b = self._edge(first), self._edge(second)
        a = a[np.all((a >= b.min(axis=0) - slack) & (a <= b.max(axis=0) + slack), axis=1)]
        if len(a) == 0:
            return False
        b = b[np.all((b >= a.min(axis=0) - slack) & (b <= a.max(axis=0) + slack), axis=1)]
        if len(b) == 0:
            return False
        limit = slack * slack
        for start in range(0, len(a), 512):
            part = a[start:start + 512]
            if float(((part[:, None, :] - b[None, :, :]) ** 2).sum(axis=2).min()) <= limit:
                return True
        return False


def _signed_areas(corners: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Twice each triangle's signed area in xy (positive: facing up)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    cross: npt.NDArray[np.float64] = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (
        b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return cross


def _facing(corners: npt.NDArray[np.float64], up: bool) -> npt.NDArray[np.bool_]:
    areas = _signed_areas(corners)
    return areas >= 0 if up else areas <= 0


def _covering_side(mesh: Mesh) -> bool | None:
    """Which faces to sample: up (True) or down (False), whichever side's shadow is larger,
    for a mesh whose two sides differ by under 1% (closed); None: all (an open surface)."""
    up = down = 0.0
    for chunk in triangle_chunks(mesh.triangles):
        areas = _signed_areas(chunk[:, :, :2].astype(np.float64))
        up += float(areas[areas > 0].sum())
        down -= float(areas[areas < 0].sum())
    if max(up, down) <= 0 or abs(up - down) > 0.01 * max(up, down):
        return None
    return up >= down
