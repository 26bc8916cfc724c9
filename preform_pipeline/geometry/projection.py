"""A mesh's shadow on the platform, as points: what layout and packing need of its outline.

:func:`projected_points` samples every triangle's projection onto the xy plane densely enough
that no gap between samples is wider than ``step`` millimetres, then keeps one point per
``step / 2`` grid cell. Packing code turns the points into column profiles or rasters at any
rotation about z without touching the triangles again; concave outlines (a dental arch's
horseshoe) keep their shape, which a bounding box or convex hull would fill in.
"""

from __future__ import annotations

import functools
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from .mesh import Mesh, transformed_triangles, triangle_chunks

__all__ = ["DEFAULT_PROJECTION_STEP_MM", "MAX_SUBDIVISIONS", "convex_hull", "hull_area",
           "projected_points"]

#: Largest gap between samples of the shadow: fine enough for 1-2 mm packing cells.
DEFAULT_PROJECTION_STEP_MM: Final = 1.0
#: Cap on subdivisions per triangle edge, so one huge triangle cannot explode the sample count
#: (a 200 mm triangle at 1 mm is 200; its corners and edges are still sampled exactly).
MAX_SUBDIVISIONS: Final = 256
# Column width for thinning points before the hull: far below any packing tolerance.
_HULL_COLUMN_MM: Final = 0.25
# Grids of up to this many steps per edge are built once and kept (see _barycentric).
_KEPT_GRID_STEPS: Final = 64


def _barycentric(k: int) -> npt.NDArray[np.float64]:
    """Weights of the ``(k+1)(k+2)/2`` points of a triangle's regular grid with ``k`` steps
    (read-only: small grids are shared between calls)."""
    return _small_grid(k) if k <= _KEPT_GRID_STEPS else _grid(k)


def _grid(k: int) -> npt.NDArray[np.float64]:
    ij = [(i, j) for i in range(k + 1) for j in range(k + 1 - i)]
    w = np.array(ij, dtype=np.float64) / k
    weights = np.column_stack([1.0 - w[:, 0] - w[:, 1], w[:, 0], w[:, 1]])
    weights.flags.writeable = False
    return weights


# Building a grid in Python cost more than sampling a small model's triangles with it; the
# grids up to _KEPT_GRID_STEPS steps take about 1 MB together (all 256 would take 68 MB).
_small_grid = functools.lru_cache(maxsize=None)(_grid)


def _samples(xy: npt.NDArray[np.float64], step: float) -> npt.NDArray[np.float64]:
    """The corners of ``(N, 3, 2)`` projected triangles and, for triangles with an edge
    longer than ``step``, the points of a regular grid over them at most ``step`` apart."""
    # sqrt is monotonic and correctly rounded: the root of the longest squared edge is the
    # longest edge, exactly, for a third of the square roots.
    squared = [
        (xy[:, b, 0] - xy[:, a, 0]) ** 2 + (xy[:, b, 1] - xy[:, a, 1]) ** 2
        for a, b in ((0, 1), (1, 2), (2, 0))
    ]
    longest = np.sqrt(np.maximum(np.maximum(squared[0], squared[1]), squared[2]))
    splits = np.clip(np.ceil(longest / step), 1, MAX_SUBDIVISIONS).astype(np.int64)
    samples = [xy.reshape(-1, 2)]
    for k in np.unique(splits):
        if k <= 1:
            continue
        tri = xy[splits == k]
        weights = _barycentric(int(k))
        samples.append(_weighted(weights, tri).reshape(-1, 2))
    return np.concatenate(samples)


def _weighted(weights: npt.NDArray[np.float64], tri: npt.NDArray[np.float64]
              ) -> npt.NDArray[np.float64]:
    """``(N, P, 2)``: every triangle's corners ``(N, 3, 2)`` weighted by each row of ``weights``
    ``(P, 3)``, summed as ``np.einsum("pv,nvd->npd")`` sums them, bit for bit: from 0.0 (so
    a sum of negative zeros is 0.0), adding the three products in corner order; about twice
    as fast as the einsum, which loops in C over one product at a time."""
    out: npt.NDArray[np.float64] = weights[None, :, 0, None] * tri[:, None, 0, :]
    out += 0.0
    out += weights[None, :, 1, None] * tri[:, None, 1, :]
    out += weights[None, :, 2, None] * tri[:, None, 2, :]
    return out


def projected_points(
    mesh: Mesh,
    step: float = DEFAULT_PROJECTION_STEP_MM,
    *,
    rotation: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """``(N, 2)`` xy points covering the mesh's shadow, at most ``step`` mm apart.

    Only the boundary is kept: the two extreme samples of every ``step / 2`` slice along x
    and along y (a few hundred points for a dental arch), which is what outlines, profiles and
    hulls need at any rotation. The points' bounding box is the mesh's (the extremes are
    vertices). An empty mesh gives an empty array. With ``rotation`` (3x3), the shadow of
    ``mesh.transformed(rotation)``, without making that mesh.

    A mesh larger than one slice of triangles is sampled slice by slice, each slice's samples
    folded into the running extremes of every band (:class:`_BandExtremes`), so the samples
    of a whole scan never exist at once. Where two samples tie for a band's extreme, either
    may be kept: both lie on the boundary.
    """
    if step <= 0 or not math.isfinite(step):
        raise ValueError(f"step must be a positive number of mm, got {step}")
    if mesh.triangle_count == 0:
        return np.zeros((0, 2))
    cell = step / 2.0
    along_x, along_y = _BandExtremes(0, cell), _BandExtremes(1, cell)
    for chunk in triangle_chunks(mesh.triangles):
        if rotation is not None:
            chunk = transformed_triangles(chunk, rotation, np.zeros(3))
        points = _samples(chunk[:, :, :2].astype(np.float64), step)
        if chunk.shape[0] == mesh.triangle_count:  # one slice: the exact extremes at once
            return _unique_rows(
                np.concatenate([_extremes_along(points, 0, cell),
                                _extremes_along(points, 1, cell)])
            )
        along_x.add(points)
        along_y.add(points)
    return _unique_rows(np.concatenate([along_x.points(), along_y.points()]))


def _unique_rows(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``np.unique(points, axis=0)`` for ``(N, 2)`` points, bit for bit, several times faster
    on the few hundred rows of a shadow (no structured-array sort).

    Rows equal as floats are equal as bits unless a coordinate is 0.0 in one and -0.0 in the
    other (or NaN): which of those ``np.unique`` keeps depends on its sort, so such input
    (and an empty array) goes to ``np.unique`` itself.
    """
    x, y = points[:, 0], points[:, 1]
    if (not len(points) or not bool(np.isfinite(points).all())
            or bool((np.signbit(points) & (points == 0)).any())):
        unique: npt.NDArray[np.float64] = np.unique(points, axis=0)
        return unique
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    first = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    kept: npt.NDArray[np.float64] = points[order[first]]
    return kept


class _BandExtremes:
    """Running extremes of a shadow's samples: for every ``width`` band along ``axis``, the
    sample with the lowest and the one with the highest other coordinate seen so far."""

    def __init__(self, axis: int, width: float) -> None:
        self._axis, self._width = axis, width
        self._base = 0
        self._low = np.zeros(0)
        self._high = np.zeros(0)
        self._low_points = np.zeros((0, 2))
        self._high_points = np.zeros((0, 2))

    def _cover(self, first: int, last: int) -> None:
        """Grow the band arrays to hold bands ``first`` to ``last``."""
        if self._low.size == 0:
            self._base = first
        before = max(0, self._base - first)
        after = max(0, last - (self._base + self._low.size - 1))
        if self._low.size and not before and not after:
            return
        if self._low.size == 0:
            after = last - first + 1
        self._low = np.pad(self._low, (before, after), constant_values=np.inf)
        self._high = np.pad(self._high, (before, after), constant_values=-np.inf)
        self._low_points = np.pad(self._low_points, ((before, after), (0, 0)))
        self._high_points = np.pad(self._high_points, ((before, after), (0, 0)))
        self._base -= before

    def add(self, points: npt.NDArray[np.float64]) -> None:
        band = np.floor(points[:, self._axis] / self._width).astype(np.int64)
        self._cover(int(band.min()), int(band.max()))
        index = band - self._base
        other = points[:, 1 - self._axis]
        _fold(index, other, points, self._low, self._low_points, np.minimum, np.inf)
        _fold(index, other, points, self._high, self._high_points, np.maximum, -np.inf)

    def points(self) -> npt.NDArray[np.float64]:
        seen = np.isfinite(self._low)
        return np.concatenate([self._low_points[seen], self._high_points[seen]])


def _fold(
    index: npt.NDArray[np.int64],
    other: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    best: npt.NDArray[np.float64],
    best_points: npt.NDArray[np.float64],
    pick: np.ufunc,
    start: float,
) -> None:
    """Fold one slice's samples into the running per-band extremes ``best`` (in place)."""
    slice_best = np.full(best.size, start)
    pick.at(slice_best, index, other)
    better = pick(slice_best, best) != best
    winners = np.flatnonzero(better[index] & (other == slice_best[index]))
    bands, first = np.unique(index[winners], return_index=True)
    best[bands] = slice_best[bands]
    best_points[bands] = points[winners[first]]


def _extremes_along(
    points: npt.NDArray[np.float64], axis: int, width: float
) -> npt.NDArray[np.float64]:
    """The two extreme points (along the other axis) of every ``width`` slice along ``axis``:
    the shadow's boundary as seen along that axis, holes and pockets included."""
    # One sort decides which of two samples tied for a slice's extreme is kept. A running
    # per-slice minimum and maximum instead (session 17) was no faster: different samples
    # tie in most slices of these shadows (straight edges; a scan's shared edges sampled
    # from both sides), and only the sort keeps the same one as before.
    other = 1 - axis
    band = np.floor(points[:, axis] / width)
    low = points[:, other].min()
    spread = float(points[:, other].max() - low) + 1.0
    order = np.argsort((band - band.min()) * spread + (points[:, other] - low))
    ordered = band[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(order)] - 1
    picked: npt.NDArray[np.float64] = points[np.concatenate([order[starts], order[ends]])]
    return picked


def convex_hull(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Counter-clockwise convex hull of ``(N, 2)`` points (Andrew's monotone chain)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) >= 3:
        # Every hull vertex is a column extreme: thin first, the chain below is a Python loop.
        pts = _extremes_along(pts, 0, _HULL_COLUMN_MM)
    pts = _unique_rows(np.round(pts, 9))
    if len(pts) < 3:
        return pts

    # Python floats, not numpy scalars: the same IEEE double products and differences (so the
    # same hull, bit for bit), without a numpy scalar made per coordinate read.
    rows: list[tuple[float, float]] = [(x, y) for x, y in pts.tolist()]
    lower, upper = _half_chain(rows), _half_chain(rows[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _half_chain(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """One half of Andrew's monotone chain over ``seq`` (sorted, or reversed for the upper
    half): collinear and inward points are dropped."""
    chain: list[tuple[float, float]] = []
    for px, py in seq:
        while len(chain) >= 2:
            (ax, ay), (bx, by) = chain[-2], chain[-1]
            if (bx - ax) * (py - ay) - (by - ay) * (px - ax) > 0:
                break
            chain.pop()
        chain.append((px, py))
    return chain


def hull_area(points: npt.NDArray[np.float64]) -> float:
    """Area (mm^2) of the convex hull of ``(N, 2)`` points; 0 for fewer than three."""
    hull = convex_hull(points)
    if len(hull) < 3:
        return 0.0
    x, y = hull[:, 0], hull[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)
