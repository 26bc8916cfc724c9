"""The simulated server's own packer: model shadows placed bottom-left on a skyline.

This is the simulator's model of PreForm's auto-layout, written independently of the
planner (which must not be able to agree with it by construction):

* each model is its shadow on the platform (:func:`~preform_pipeline.geometry.projection.
  projected_points`), grown by its raft border and half the model spacing, so two grown
  shadows that do not overlap are at least the spacing apart;
* a shadow is cut into columns ``cell`` mm wide; per column it occupies one interval (from
  its lowest to its highest point), so a horseshoe's opening stays free for the next model;
* models go largest first (by their grown bounding box); each tries every allowed turn about z
  and every column offset, lands as low as the skyline (the highest occupied point per
  column) lets it, and takes the turn and offset that leave its top lowest (ties: the
  leftmost);
* the whole layout is tried stacking along y, then along x, with fine turns, then with
  quarter turns only; the first that places every model wins; then the same with the models
  ordered by the area their grown outline covers (a round part's box ranks it above a square
  part that covers more: placed first, round parts break the rows of the squares);
* when none does, PreForm would keep looking: the simulator tries half turn steps, two
  more rules for each model (the lowest top again, but of two nearly equal tops the one
  leaving less empty area under it, a millimetre of top weighing as much as 20 mm of mean
  empty height; and the place leaving the least empty area under it, so hollows fill) and
  other orders (longest side first, largest and smallest alternating), up to
  :data:`MAX_LAYOUT_TRIES` layouts in all. The first layouts are always the plain
  lowest-top ones, so the wider search only ever adds layouts. Nothing is changed unless
  everything fits (the engine applies the result).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "DEFAULT_LAYOUT_CELL_MM",
    "MAX_LAYOUT_TRIES",
    "DEFAULT_TURN_STEP_DEG",
    "PackedShape",
    "Shape",
    "pack_shapes",
]

#: Column width of the skyline: finer is denser and slower; 1 mm loses at most that much
#: per model and row against the exact outline.
DEFAULT_LAYOUT_CELL_MM: Final = 1.0
#: Turns about z tried for each model when rotation is allowed.
DEFAULT_TURN_STEP_DEG: Final = 10.0
#: Placement rules of one layout: lowest top; lowest top with the empty area under the shape
#: as a tie-break; least empty area under the shape.
_LOWEST, _SNUG, _FILL = "lowest", "snug", "fill"
#: How much a millimetre of mean empty height under a shape weighs against a millimetre of
#: its top in the lowest-top rule: a tie-break, not a second goal.
_WASTE_PER_TOP: Final = 0.05
#: Whole layouts tried at most before the answer is that the models do not fit (each is a
#: few tens of milliseconds for a platform of small parts; only a crowded platform needs
#: more than the first).
MAX_LAYOUT_TRIES: Final = 30

_Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Shape:
    """One model to place: its shadow's boundary points (xy, any origin) and how far to grow
    it on every side (raft border plus half the spacing)."""

    key: str
    points: _Array
    grow: float


@dataclass(frozen=True)
class PackedShape:
    """Where a shape went: turned ``angle_deg`` about z (counter-clockwise) about the origin of
    its points, then moved by ``(dx, dy)``."""

    key: str
    angle_deg: float
    dx: float
    dy: float


@dataclass(frozen=True)
class _Profile:
    lo: _Array  # lowest grown point per column (+inf: column empty)
    hi: _Array  # highest grown point per column (-inf: column empty)
    origin: float  # coordinate (along the columns) of column 0's left edge, shape frame


def _rotate(points: _Array, angle_deg: float) -> _Array:
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    turned: _Array = points @ np.array([[c, s], [-s, c]])
    return turned


def _span(shape: Shape, turn: float, along: int) -> float:
    """How wide ``shape`` turned by ``turn`` is across axis ``along``, grown on both sides."""
    across = _rotate(shape.points, turn)[:, along]
    return float(across.max() - across.min()) + 2 * shape.grow


def _profile(points: _Array, along: int, cell: float, grow: float) -> _Profile:
    """Columns across axis ``along`` (0: columns over x, stacking in y), grown by ``grow``."""
    across = 1 - along
    u, v = points[:, along], points[:, across]
    start = float(u.min())
    cols = np.floor((u - start) / cell).astype(np.int64)
    n = int(cols.max()) + 1
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, cols, v)
    np.maximum.at(hi, cols, v)
    k = math.ceil(grow / cell) if grow > 0 else 0
    if k:
        glo = np.full(n + 2 * k, np.inf)
        ghi = np.full(n + 2 * k, -np.inf)
        for d in range(-k, k + 1):
            # A point in column c may lie anywhere in it: the nearest it can be to column
            # c + d is (|d| - 1) cells, so the disc reaches at least this far there.
            gap = max(abs(d) - 1, 0) * cell
            reach = math.sqrt(max(grow * grow - gap * gap, 0.0))
            glo[k + d : k + d + n] = np.minimum(glo[k + d : k + d + n], lo - reach)
            ghi[k + d : k + d + n] = np.maximum(ghi[k + d : k + d + n], hi + reach)
        lo, hi = glo, ghi
    return _Profile(lo, hi, start - k * cell)


class _Profiles:
    """Column profiles by shape, turn and direction, made once per layout request: copies
    of one model (the same points) share theirs."""

    def __init__(self, cell: float) -> None:
        self.cell = cell
        self._made: dict[tuple[bytes, float, float, int], _Profile] = {}

    def get(self, shape: Shape, turn: float, along: int) -> _Profile:
        key = (shape.points.tobytes(), shape.grow, turn, along)
        if key not in self._made:
            self._made[key] = _profile(_rotate(shape.points, turn), along, self.cell, shape.grow)
        return self._made[key]


def _try(
    shapes: Sequence[Shape],
    size: tuple[float, float],
    along: int,
    cell: float,
    turns: Sequence[float],
    rule: str = _LOWEST,
    profiles: _Profiles | None = None,
) -> tuple[list[PackedShape], list[str]]:
    """One layout. Each shape takes the turn and offset that leave its top lowest
    (:data:`_SNUG`: nearly equal tops decided by the empty area under it), or with
    :data:`_FILL` the one leaving the least empty area between it and the skyline below."""
    profiles = profiles if profiles is not None else _Profiles(cell)
    width, depth = size[along], size[1 - along]
    columns = math.floor(width / cell + 1e-9)
    skyline = np.zeros(columns)
    placed: list[PackedShape] = []
    unplaced: list[str] = []
    for shape in shapes:
        best: tuple[float, int, float, int, float, _Profile] | None = None
        for turn in turns:
            if _span(shape, turn, along) > width + cell:
                # Wider than the area in this turn: skipped before it is cut into columns,
                # which for a model metres long would take gigabytes.
                continue
            prof = profiles.get(shape, turn, along)
            w = len(prof.lo)
            if w > columns:
                continue
            windows = sliding_window_view(skyline, w)
            lift = (windows - prof.lo).max(axis=1)
            # Nothing may reach below the front edge of the area.
            lift = np.maximum(lift, float(-prof.lo.min()))
            top = lift + float(prof.hi.max())
            used = np.isfinite(prof.lo)
            waste = (lift[:, None] - (windows[:, used] - prof.lo[used])).sum(axis=1) * cell
            if rule == _FILL:
                # Empty area under the shape in its columns, plus a little for height.
                rank = np.where(top <= depth + 1e-9, waste + top * 1e-3, np.inf)
            elif rule == _SNUG:
                # Lowest top; among (nearly) equal tops the one leaving the least empty area
                # under it, as a mean height, weighted lightly.
                rank = top + _WASTE_PER_TOP * waste / (int(used.sum()) * cell)
            else:
                rank = top
            offset = int(np.argmin(rank))
            y = float(lift[offset])
            peak = float(top[offset])
            if peak > depth + 1e-9:
                continue
            score = float(rank[offset])
            if best is None or (score, offset) < (best[0], best[1]):
                best = (score, offset, y, w, turn, prof)
        if best is None:
            unplaced.append(shape.key)
            continue
        _, offset, y, w, turn, prof = best
        finite = np.isfinite(prof.hi)
        segment = skyline[offset : offset + w]
        segment[finite] = np.maximum(segment[finite], y + prof.hi[finite])
        shift_along = offset * cell - prof.origin
        d_along, d_across = shift_along, y
        dx, dy = (d_along, d_across) if along == 0 else (d_across, d_along)
        placed.append(PackedShape(shape.key, turn, dx, dy))
    return placed, unplaced


def pack_shapes(
    shapes: Sequence[Shape],
    size: tuple[float, float],
    *,
    allow_rotation: bool,
    cell: float = DEFAULT_LAYOUT_CELL_MM,
    turn_step_deg: float = DEFAULT_TURN_STEP_DEG,
    max_tries: int = MAX_LAYOUT_TRIES,
) -> tuple[list[PackedShape], list[str]]:
    """Place ``shapes`` in a ``size = (width, depth)`` area whose corner is ``(0, 0)``.

    Returns the placements (the grown shadows inside the area, not overlapping) and the keys
    that found no place: the first of at most ``max_tries`` layouts (see the module
    docstring) that places every shape, else the one placing most.
    """
    if not shapes:
        return [], []
    finer = (
        tuple(float(a) for a in np.arange(0.0, 360.0, turn_step_deg / 2)) if allow_rotation
        else (0.0,)
    )
    # A shape too big for the area in every turn tried is placed by no layout: left out
    # before any is cut into columns (a model metres long would take gigabytes of them).
    hopeless = [s.key for s in shapes if not _could_fit(s, size, finer, cell)]
    if hopeless:
        left_out = set(hopeless)
        shapes = [s for s in shapes if s.key not in left_out]
        placed, unplaced = pack_shapes(
            shapes, size, allow_rotation=allow_rotation, cell=cell,
            turn_step_deg=turn_step_deg, max_tries=max_tries,
        )
        return placed, unplaced + hopeless
    profiles = _Profiles(cell)
    largest = sorted(shapes, key=lambda s: (-_extent_area(s), s.key))
    covering = sorted(
        shapes, key=lambda s: (-_covered_area(profiles.get(s, 0.0, 0), cell), s.key)
    )
    longest = sorted(shapes, key=lambda s: (-_extent_side(s), s.key))
    alternating = [
        largest[i // 2] if i % 2 == 0 else largest[-1 - i // 2] for i in range(len(largest))
    ]
    fine = (
        tuple(float(a) for a in np.arange(0.0, 360.0, turn_step_deg)) if allow_rotation
        else (0.0,)
    )
    square = (0.0, 90.0, 180.0, 270.0) if allow_rotation else (0.0,)
    best: tuple[list[PackedShape], list[str]] | None = None
    # Fine turns first; rows of like parts often tile better in quarter turns; half steps
    # find the odd angle that lets a crowded platform close.
    variants = ((fine, 0), (fine, 1), (square, 0), (square, 1), (finer, 0), (finer, 1))
    tries = [
        (order, turns, along, rule)
        for order, rule in (
            (largest, _LOWEST), (covering, _LOWEST), (largest, _SNUG), (longest, _LOWEST),
            (alternating, _LOWEST),
            (largest, _FILL), (longest, _SNUG), (alternating, _SNUG), (longest, _FILL),
        )
        for turns, along in variants
    ]
    done: set[tuple[tuple[str, ...], tuple[float, ...], int, str]] = set()
    for order, turns, along, rule in tries[: max(1, max_tries)]:
        # An order that ranks the models alike lays them out alike: lay it out once.
        ident = (tuple(s.key for s in order), turns, along, rule)
        if ident in done:
            continue
        done.add(ident)
        placed, unplaced = _try(order, size, along, cell, turns, rule, profiles)
        if not unplaced:
            return placed, unplaced
        if best is None or len(unplaced) < len(best[1]):
            best = (placed, unplaced)
    assert best is not None
    return best


def _could_fit(
    shape: Shape, size: tuple[float, float], turns: Sequence[float], cell: float
) -> bool:
    """Whether ``shape`` fits ``size`` in some turn, by its extents (with two cells to spare
    for the columns' rounding): a shape that does not is placed by no layout."""
    return any(
        _span(shape, turn, 0) <= size[0] + 2 * cell and _span(shape, turn, 1) <= size[1] + 2 * cell
        for turn in turns
    )


def _extent_side(shape: Shape) -> float:
    return float((shape.points.max(axis=0) - shape.points.min(axis=0)).max())


def _covered_area(profile: _Profile, cell: float) -> float:
    """The area a grown shape covers, column by column, as it lies."""
    used = np.isfinite(profile.lo)
    return float((profile.hi[used] - profile.lo[used]).sum()) * cell


def _extent_area(shape: Shape) -> float:
    span = shape.points.max(axis=0) - shape.points.min(axis=0)
    return float((span[0] + 2 * shape.grow) * (span[1] + 2 * shape.grow))
