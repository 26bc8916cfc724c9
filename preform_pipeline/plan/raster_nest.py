"""A packer of another class: grown outlines as cells, placed wherever they overlap nothing.

Offline only (issue 11, measured by ``bench/bench_nest_limit.py --raster``); the planner
does not call it. The skyline nester (:mod:`.nesting`) drops each model from the back onto
the highest point of every column, so it never puts a model under another's overhang or
into an opening that faces sideways. Here a platform is a grid of :data:`RASTER_CELL_MM`
cells and a model may go to any offset where its cells meet none taken: the exact test
of a rasterised no-fit polygon, every offset at once by one FFT correlation per turn.

**Outline.** The same footprint as the planner's (:class:`~.nesting.Outline`: the oriented
shadow's points and the growth by raft rim and half the spacing, from :mod:`.footprint`).
The shadow is the area between the lowest and highest point of each column *and* the
leftmost and rightmost of each row, in the frame the points were taken in, so an opening
facing any side stays open; that area, filled as points at a quarter of a cell, is what
turns (:func:`_area_points` says why), and each turn's cells are grown by every cell whose
nearest point lies within the growth. Cells round outwards.

**Placing.** Largest hull first; each model goes to the first platform (in opening order)
where some turn fits, at the turn and offset that leave its top lowest, then leftmost
(bottom-left). Turns run every ``turn_step_deg`` over the whole circle, so two U-shaped
arches can meet face to face with their legs interlocked.

**Local search.** The emptiest platform's models are offered, largest first, to the others
as they stand; when one finds no place, the receiving platform is laid out again from empty
with the newcomer, in seeded orders, until one holds them all. When every model moves, the
platform goes and the search starts again. The budget is counted in work
(``moves_per_model`` times the models: placements tried), so a seed gives one plan on any
machine; ``safety_s`` of the thread's CPU time only guards a far slower machine.

Coordinates as :mod:`.nesting`'s: ``(0, 0)`` is the platform centre; a placement gives the
centre of the turned (ungrown) shadow's box and the turn, counter-clockwise.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.errors import PlanningError
from preform_pipeline.plan.nesting import (
    NestedBin,
    NestedPlacement,
    Outline,
    refuse_unusable_outlines,
)

__all__ = [
    "MOVES_PER_MODEL",
    "RASTER_CELL_MM",
    "RASTER_CLEARANCE_MM",
    "RASTER_TURN_STEP_DEG",
    "RasterShape",
    "raster_nest",
    "raster_shape",
]

#: Cell side: at 1 mm the outward rounding alone added 9% to mixed200's grown outlines
#: (session 41); at 0.5 mm about 4%.
RASTER_CELL_MM: Final = 0.5
#: Grown a little further than the footprint rule, per side: the server judges the layout
#: on its own geometry (the meshes' shadows, on a grid whose rounding errs towards "they
#: meet"), and an arch laid 6.46 mm from another by predicted shadows was found within the
#: 6 mm of rims and spacing by the simulator's interference check. A skyline layout seldom
#: meets that check (the server lays it out again itself); this one always does.
RASTER_CLEARANCE_MM: Final = 0.5
#: Turns tried per model, over the whole circle (180 degrees among them: arches interlock).
RASTER_TURN_STEP_DEG: Final = 15.0
#: The local search's work: placements tried per model of the batch.
MOVES_PER_MODEL: Final = 20
# The search's fixed sizes: the seeded orders a platform is laid out again in for one
# newcomer; how many models just moved may not be displaced again at once (else an ejection
# chain cycles); how many shapes keep their mask spectra (a shape tries platform after
# platform); the correlation count below which nothing overlaps (FFT rounding of a sum of
# 0/1 products).
_RELAYS, _TABU, _KERNELS_KEPT, _OVERLAP = 4, 4, 8, 0.5

_Bool = npt.NDArray[np.bool_]
#: Spectra are single precision (numpy keeps float32 input in complex64; the stubs say 128).
_Spectrum = npt.NDArray[np.complexfloating[Any, Any]]


@dataclass(frozen=True, eq=False)
class RasterShape:
    """One model's grown outline as cells at every turn, and where its shadow's box lies in
    each mask (the offset of the box's low corner from the mask's, and the box's size)."""

    key: str
    #: The same for copies of one outline: a platform that refused one refuses them all.
    form: bytes
    hull_mm2: float
    angles: tuple[float, ...]
    masks: tuple[_Bool, ...]
    #: Each mask's centre of area, in rows from its first.
    centre_rows: tuple[float, ...]
    corner: tuple[tuple[float, float], ...]
    size: tuple[tuple[float, float], ...]

    @property
    def least_cells(self) -> int:
        return min(int(m.sum()) for m in self.masks)


def _smooth(n: int) -> int:
    """The least size >= ``n`` whose prime factors are 2, 3 and 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _disc(grow: float, cell: float) -> list[tuple[int, int]]:
    """Cell offsets within ``grow`` of a cell: nearest points of the two cells (outwards)."""
    k = math.ceil(grow / cell) if grow > 0 else 0
    return [(dx, dy) for dx in range(-k, k + 1) for dy in range(-k, k + 1)
            if (max(abs(dx) - 1, 0) ** 2 + max(abs(dy) - 1, 0) ** 2) * cell * cell
            <= grow * grow + 1e-9]


def _filled(cols: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
            shape: tuple[int, int]) -> _Bool:
    """Cells between the lowest and highest point of their column and the leftmost and
    rightmost of their row."""
    height, width = shape
    lo_r = np.full(width, height, dtype=np.int64)
    hi_r = np.full(width, -1, dtype=np.int64)
    np.minimum.at(lo_r, cols, rows)
    np.maximum.at(hi_r, cols, rows)
    lo_c = np.full(height, width, dtype=np.int64)
    hi_c = np.full(height, -1, dtype=np.int64)
    np.minimum.at(lo_c, rows, cols)
    np.maximum.at(hi_c, rows, cols)
    r = np.arange(height)[:, None]
    c = np.arange(width)[None, :]
    by_column = (r >= lo_r[None, :]) & (r <= hi_r[None, :])
    by_row = (c >= lo_c[:, None]) & (c <= hi_c[:, None])
    filled: _Bool = by_column & by_row
    return filled


def _area_points(points: npt.NDArray[np.float64], step: float) -> npt.NDArray[np.float64]:
    """The shadow as ``points`` describe it, as points ``step`` apart over its whole area.

    The points are the extremes of every thin slice along x and along y (``projected_points``),
    so the shadow lies between the lowest and highest point of its column and the leftmost and
    rightmost of its row *in the frame they were taken in*. Turned, the same points leave
    gaps along the edges no slice ended on (an arch's inner edge when its opening faces a
    diagonal): filled from them at a turn, an arch came out 8 mm short of its mesh at 195
    degrees, and the simulator's check found two arches within the rims and spacing. So the
    area is filled once, untouched, and its cells' centres turn with the model."""
    x0, y0 = points.min(axis=0)
    cols = np.floor((points[:, 0] - x0) / step).astype(np.int64)
    rows = np.floor((points[:, 1] - y0) / step).astype(np.int64)
    r, c = np.nonzero(_filled(cols, rows, (int(rows.max()) + 1, int(cols.max()) + 1)))
    centres = np.column_stack([x0 + (c + 0.5) * step, y0 + (r + 0.5) * step])
    return np.concatenate([points, centres])


def raster_shape(outline: Outline, angles: Sequence[float], cell: float = RASTER_CELL_MM,
                 clearance: float = RASTER_CLEARANCE_MM) -> RasterShape:
    """``outline`` grown by its growth and ``clearance`` and rasterised at each turn (see
    the module docstring)."""
    step = cell / 2.0
    # A point of the area lies within half a diagonal of some centre: grown by that too.
    offsets = _disc(outline.grow + clearance + step * math.sqrt(0.5), cell)
    k = max((abs(d) for d, _ in offsets), default=0)
    masks, corners, sizes = [], [], []
    area = _area_points(outline.points, step)
    px, py = area[:, 0], area[:, 1]
    edge = len(outline.points)  # the first points are the outline's own: the box is theirs
    for angle in angles:
        rad = math.radians(angle)
        c, s = math.cos(rad), math.sin(rad)
        x, y = c * px - s * py, s * px + c * py
        x0, y0 = float(x.min()), float(y.min())
        cols = np.floor((x - x0) / cell).astype(np.int64)
        rows = np.floor((y - y0) / cell).astype(np.int64)
        base = np.zeros((int(rows.max()) + 1 + 2 * k, int(cols.max()) + 1 + 2 * k), dtype=bool)
        base[rows + k, cols + k] = True
        grown = np.zeros_like(base)
        h, w = base.shape
        for dx, dy in offsets:
            grown[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] |= (
                base[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)])
        masks.append(grown)
        bx, by = x[:edge], y[:edge]
        corners.append((k * cell + float(bx.min()) - x0, k * cell + float(by.min()) - y0))
        sizes.append((float(bx.max() - bx.min()), float(by.max() - by.min())))
    form = outline.points.tobytes() + repr((outline.grow, clearance)).encode()
    centres = tuple(float(np.nonzero(m)[0].mean()) for m in masks)
    return RasterShape(outline.key, form, outline.hull_mm2, tuple(float(a) for a in angles),
                       tuple(masks), centres, tuple(corners), tuple(sizes))


@dataclass
class _Grid:
    """One platform: cells taken, and each model's (shape, turn, row, column)."""

    cells: _Bool
    placed: list[tuple[RasterShape, int, int, int]] = field(default_factory=list)
    hull: float = 0.0
    spectrum: _Spectrum | None = None
    #: Forms that fitted nowhere here (cells are only ever added, so they never will).
    refused: set[bytes] = field(default_factory=set)

    def taken(self) -> int:
        return int(self.cells.sum())


class _Packer:
    """Placing on grids of one size, counting the placements tried (the work budget)."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        # FFT sizes with small prime factors only (254 rows, 2 x 127, cost twice 256).
        self.fft = (_smooth(rows), _smooth(cols))
        self.tries = 0
        self._kernels: dict[bytes, list[_Spectrum | None]] = {}

    def kernel(self, shape: RasterShape, turn: int) -> _Spectrum:
        """The mask's spectrum, flipped for a correlation; the last few forms' are kept."""
        kept = self._kernels.pop(shape.form, None) or [None] * len(shape.masks)
        self._kernels[shape.form] = kept
        while len(self._kernels) > _KERNELS_KEPT:
            del self._kernels[next(iter(self._kernels))]
        found = kept[turn]
        if found is None:
            flipped = shape.masks[turn][::-1, ::-1].astype(np.float32)
            found = np.fft.rfft2(flipped, s=self.fft)
            kept[turn] = found
        return found

    def new(self) -> _Grid:
        return _Grid(np.zeros((self.rows, self.cols), dtype=bool))

    def spot(self, grid: _Grid, shape: RasterShape) -> tuple[int, int, int] | None:
        """The (turn, row, column) with the lowest centre of area, then leftmost; None if none
        fits. The centre, not the top: of two turns of an arch as tall, the one with its band
        to the front and its opening to the back sits lower, and leaves the opening to the
        next arch (the top ties, and the first turn, opening to the front, won)."""
        self.tries += 1
        free = self.rows * self.cols - grid.taken()
        if shape.least_cells > free or shape.form in grid.refused:
            return None
        spectrum = grid.spectrum
        if spectrum is None:
            spectrum = grid.spectrum = np.fft.rfft2(grid.cells.astype(np.float32), s=self.fft)
        best: tuple[float, int, int, int] | None = None
        for turn, mask in enumerate(shape.masks):
            h, w = mask.shape
            if h > self.rows or w > self.cols or int(mask.sum()) > free:
                continue
            # Correlation: the cells taken under the mask at every offset (wrapping only
            # past the offsets read below, which keep the mask inside the grid).
            hits = np.fft.irfft2(spectrum * self.kernel(shape, turn), s=self.fft)
            valid = hits[h - 1 : self.rows, w - 1 : self.cols] < _OVERLAP
            centre = shape.centre_rows[turn]
            if best is not None:
                # Only a centre as low can win: rows past the best's are not read.
                valid = valid[: max(0, math.floor(best[0] - centre + 1e-9) + 1)]
            rows = np.flatnonzero(valid.any(axis=1))
            if not len(rows):
                continue
            row = int(rows[0])
            col = int(np.flatnonzero(valid[row])[0])
            candidate = (row + centre, col, turn, row)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        if best is None:
            grid.refused.add(shape.form)
            return None
        return best[2], best[3], best[1]

    def put(self, grid: _Grid, shape: RasterShape, where: tuple[int, int, int]) -> None:
        turn, row, col = where
        mask = shape.masks[turn]
        h, w = mask.shape
        grid.cells[row : row + h, col : col + w] |= mask
        grid.placed.append((shape, turn, row, col))
        grid.hull += shape.hull_mm2
        grid.spectrum = None

    def take(self, grid: _Grid, placed: tuple[RasterShape, int, int, int]) -> None:
        """Take one placed model off ``grid`` (masks never overlap: its cells are its own)."""
        shape, turn, row, col = placed
        mask = shape.masks[turn]
        h, w = mask.shape
        grid.cells[row : row + h, col : col + w] &= ~mask
        grid.placed.remove(placed)
        grid.hull -= shape.hull_mm2
        grid.spectrum = None
        grid.refused.clear()  # room was made: what fitted nowhere may fit now

    def lay(self, shapes: Sequence[RasterShape]) -> _Grid | None:
        """One platform holding all of ``shapes`` placed in this order, or None."""
        grid = self.new()
        for shape in shapes:
            where = self.spot(grid, shape)
            if where is None:
                return None
            self.put(grid, shape, where)
        return grid


def _largest_first(shape: RasterShape) -> tuple[float, str]:
    return (-shape.least_cells, shape.key)


def raster_nest(outlines: Sequence[Outline], platform: tuple[float, float], *,
                margin: float = 0.0, spill: float = 0.0, cell: float = RASTER_CELL_MM,
                turn_step_deg: float = RASTER_TURN_STEP_DEG,
                moves_per_model: int = MOVES_PER_MODEL, clearance: float = RASTER_CLEARANCE_MM,
                seed: int = 0, safety_s: float = 600.0) -> list[NestedBin]:
    """Every outline on as few platforms as the search finds (module docstring).

    ``margin`` and ``spill`` as :func:`~.nesting.nest`'s; ``clearance`` is added to every
    outline's growth (:data:`RASTER_CLEARANCE_MM`). Groups are not kept together
    (this packer is measured offline, on loose models). Raises
    :class:`~preform_pipeline.errors.PlanningError` naming a model that fits no empty
    platform, and, before any work, one with no usable outline or a key given twice (the
    planner's rule, :func:`~.nesting.refuse_unusable_outlines`); ``ValueError`` for a
    platform or cell that is not a positive size.
    """
    if not all(math.isfinite(v) and v > 0 for v in (*platform, cell)):
        raise ValueError(f"platform and cell must be positive sizes, got {platform}, {cell}")
    # Refused, not passed over: the bench compares this packer's platforms with the
    # planner's for the same models, and a model left out would make the count look better.
    refuse_unusable_outlines(outlines)
    # The clearance keeps outlines apart from each other, not from the edge.
    spill += clearance
    width = platform[0] - 2 * margin + 2 * spill
    depth = platform[1] - 2 * margin + 2 * spill
    packer = _Packer(max(0, math.floor(depth / cell + 1e-9)),
                     max(0, math.floor(width / cell + 1e-9)))
    angles = [float(a) for a in np.arange(0.0, 360.0 - 1e-9, turn_step_deg)]
    shapes = sorted((raster_shape(o, angles, cell, clearance) for o in outlines),
                    key=_largest_first)
    grids: list[_Grid] = []
    for shape in shapes:
        for grid in grids:
            where = packer.spot(grid, shape)
            if where is not None:
                packer.put(grid, shape, where)
                break
        else:
            grid = packer.new()
            where = packer.spot(grid, shape)
            if where is None:
                raise PlanningError(
                    f"model {shape.key!r} does not fit an empty "
                    f"{platform[0]:g} x {platform[1]:g} mm platform with its raft and spacing",
                    hint="scale the model or use a larger printer")
            packer.put(grid, shape, where)
            grids.append(grid)
    budget = packer.tries + moves_per_model * len(shapes)
    deadline = time.thread_time() + safety_s
    rng = random.Random(seed)
    while len(grids) > 1 and packer.tries < budget and time.thread_time() < deadline:
        emptied = _empty_one(packer, grids, rng, budget)
        if emptied is None:
            break
        grids = emptied
    corner = (-platform[0] / 2 + margin - spill, -platform[1] / 2 + margin - spill)
    return [_result(grid, corner, cell, platform) for grid in grids]


def _empty_one(packer: _Packer, grids: list[_Grid], rng: random.Random,
               budget: int) -> list[_Grid] | None:
    """The platforms with the emptiest one's models moved into the others, or None when
    the budget is spent first.

    The models to move wait in a pool, largest first. One goes to the roomiest platform
    that takes it as it stands; else it takes the place of a model of one, which joins the
    pool (a smaller one when some is, else the smallest larger one not itself just moved
    in: an ejection chain, which may pass through a larger pool on its way to an empty
    one); else a platform is laid out again from empty with it, in seeded orders."""
    target = min(range(len(grids)), key=lambda i: (grids[i].hull, -i))
    others = [_copy(g) for i, g in enumerate(grids) if i != target]
    pool = sorted((p[0] for p in grids[target].placed), key=_largest_first)
    recent: list[str] = []
    while pool:
        if packer.tries >= budget:
            return None
        shape = pool.pop(0)
        ejected = _move(packer, others, shape, rng, budget, recent)
        if ejected is None:
            return None
        recent = [*recent, shape.key][-_TABU:]
        pool = sorted([*pool, *ejected], key=_largest_first)
    return others


def _move(packer: _Packer, grids: list[_Grid], shape: RasterShape, rng: random.Random,
          budget: int, recent: Sequence[str]) -> list[RasterShape] | None:
    """Put ``shape`` on one of ``grids`` (see :func:`_empty_one`): the models it displaced
    (none or one), or None when no platform takes it within the budget."""
    roomiest = sorted(range(len(grids)), key=lambda i: (grids[i].taken(), i))
    for i in roomiest:
        where = packer.spot(grids[i], shape)
        if where is not None:
            packer.put(grids[i], shape, where)
            return []
    size = shape.least_cells
    swaps = [(i, placed) for i in roomiest for placed in grids[i].placed
             if placed[0].key not in recent]
    rng.shuffle(swaps)  # which of equal sizes goes first: the seed's choice
    swaps.sort(key=lambda s: (s[1][0].least_cells >= size,
                              -s[1][0].least_cells if s[1][0].least_cells < size
                              else s[1][0].least_cells))
    for i, placed in swaps:
        if packer.tries >= budget:
            return None
        trial = _copy(grids[i])
        packer.take(trial, placed)
        where = packer.spot(trial, shape)
        if where is not None:
            packer.put(trial, shape, where)
            grids[i] = trial
            return [placed[0]]
    for i in roomiest:
        members = [p[0] for p in grids[i].placed] + [shape]
        order = sorted(members, key=_largest_first)
        for attempt in range(_RELAYS):
            if packer.tries + len(order) > budget:
                return None
            if attempt:
                rng.shuffle(order)
            laid = packer.lay(order)
            if laid is not None:
                grids[i] = laid
                return []
    return None


def _copy(grid: _Grid) -> _Grid:
    return _Grid(grid.cells.copy(), list(grid.placed), grid.hull, grid.spectrum,
                 set(grid.refused))


def _result(grid: _Grid, corner: tuple[float, float], cell: float,
            platform: tuple[float, float]) -> NestedBin:
    out = []
    for shape, turn, row, col in grid.placed:
        (cx, cy), (w, d) = shape.corner[turn], shape.size[turn]
        x = corner[0] + col * cell + cx + w / 2.0
        y = corner[1] + row * cell + cy + d / 2.0
        out.append(NestedPlacement(shape.key, x, y, shape.angles[turn], w, d))
    return NestedBin(tuple(out), grid.hull, platform)
