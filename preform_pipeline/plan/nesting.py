"""Nesting model outlines into as few builds as the platform allows.

Each model is its predicted shadow (:mod:`preform_pipeline.plan.footprint`): boundary points
grown by raft border and half the spacing. The packer cuts a shadow, at every turn about z it
may take (every :data:`DEFAULT_TURN_STEP_DEG` degrees), into columns :data:`DEFAULT_CELL_MM`
wide and keeps per column the lowest and highest grown point. A platform is a skyline: per
column, the highest point occupied so far, measured from the front. A model drops onto the
skyline from the back; what it may not cross is the skyline, so a horseshoe's open side, or
the hollow between two arches, takes the next model's convex side: arches nest.

**Fitting at all.** A unit (a model, or the models of a group) fits when some rule of the
search places it on an empty platform (:func:`fits_one_platform` asks the same for a case
before it is kept together). A model that fails is set aside; a group that fits but that the
greedy pass's rule cannot place gets a platform of its own, so a group kept together never
fails the batch.

**Greedy.** Models go largest hull first (the units of a case together); each goes to the
first open platform where it fits, at the turn and column offset that wastes the least area
under it (ties: the lower top, then the left). Only the last few platforms stay open, so the
cost per model does not grow with the batch.

**Reinsertion.** After each greedy pass the last platform's units are offered, largest
first, to the gaps of every earlier platform (the greedy pass keeps only the last few open);
when they all find a place, the last platform goes.

**Local search.** Other orders are tried (longest side first, then
seeded swaps of neighbours) and the result with the fewest platforms, then the emptiest last
platform, is kept; the search stops early when it reaches the lower bound of grown area over
usable area. Its budget is counted in work, so that a batch gets the same plan on any machine
under any load: orders times models at most :data:`SEARCH_MODEL_ORDERS` (all 16 orders up to
400 models, 8 for 800, at least 3), each order's cost growing with the batch. The planning
thread's CPU time (:data:`DEFAULT_SEARCH_S_PER_MODEL`) is only a safety limit for a machine
far slower than usual; it is never the wall clock, which a loaded machine spends without
searching (a wall-clock budget of 2 ms per model planned mixed200 in 8 builds instead of 7).

**Filled in the order given.** Every order above starts from a sort, and largest first puts
the large models of a batch together on the first platforms. When the search has not reached
the bound, the models are also taken in the order given (a folder's order mixes sizes), each
platform taking the next while a plain pass (below) still lays out all it holds, as a server
does when models are added one by one; the result is kept when it needs fewer platforms.
The 64 bench arches on mini rafts need 11 platforms so and 12 by the search alone. Its cost
grows with the models per platform (mixed800: 6.5 s of planning instead of 2.3 s).

**Plain platforms.** The server lays each build out again by its own rule, in one pass, with
no memory of the order or the gap-filling that packed it here. A platform that no rule's
plain pass (largest first, from an empty platform) fills with all its models would likely
not fit there, and the build would carry models on at run time. So each platform of the
chosen plan is laid out again by the first rule whose plain pass places all its models; the
models a platform's best plain pass leaves out move to another platform whose plain pass
then takes them all (roomiest first), and only when none can does the platform stay as the
search packed it. The number of platforms never grows.

**Emptying platforms** (``empty_platforms``, a recipe's ``batching.empty_builds``; off by
default). Starting from the plan above, the emptiest platform's units go, largest first, each
to the roomiest other platform whose plain pass, from empty, then places all it holds and
the newcomer; the newcomer alone may also take finer turns
(:data:`FINE_TURN_STEP_DEG`) when no rule places them all at the usual ones. A unit no
platform takes may change places with a smaller unit of one, which then has to move in its
turn. When every unit has moved the platform goes and the search starts again; when one
cannot, nothing of that try is kept and the next emptiest platform is tried; the search stops
when none empties, or when its work is spent: :data:`EMPTYING_CHECKS_PER_MODEL` moves tried
per model, so the plan is the same on any machine. The planning thread's CPU time is again
only a safety limit, counted per move allowed (:data:`EMPTYING_SAFETY_S_PER_CHECK`, about four
times the dearest move measured): a far slower machine, or builds holding far more models
than mixed200's (about 30, where a move costs most), may stop earlier and keep a plan with
fewer platforms emptied. Every platform it changes is one plain pass's layout (the newcomer
perhaps at a finer turn), and there are never more platforms than before.

Coordinates: ``(0, 0)`` is the platform centre, x right, y away from the user; a placement
gives the centre of the turned shadow's bounding box and the turn (counter-clockwise).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.errors import PlanningError

__all__ = [
    "DEFAULT_CELL_MM",
    "DEFAULT_SEARCH_S_PER_MODEL",
    "DEFAULT_TURN_STEP_DEG",
    "EMPTYING_CHECKS_PER_MODEL",
    "EMPTYING_SAFETY_S_PER_CHECK",
    "FINE_TURN_STEP_DEG",
    "MIN_SEARCH_S",
    "SEARCH_MODEL_ORDERS",
    "NestedBin",
    "NestedPlacement",
    "Outline",
    "fits_one_platform",
    "nest",
    "one_platform_layout",
]

#: Column width: models lose at most this much per row against their exact outline (2 mm
#: columns cost the dental arches two builds in 15).
DEFAULT_CELL_MM: Final = 1.0
#: Turns about z tried per model (24 turns at 15 degrees).
DEFAULT_TURN_STEP_DEG: Final = 15.0
#: The search's work: orders tried times models, at most this (16 orders up to 400 models).
#: A build saved is hours of printer time; a few seconds of planning are not.
SEARCH_MODEL_ORDERS: Final = 6_400
#: Orders the search tries at least when the bound is not reached, however many the models.
_MIN_ORDERS: Final = 3
#: A safety limit only, in the planning thread's CPU time per model (about four times what
#: the orders above take on a 2-core machine of 2026): a far slower machine stops earlier.
DEFAULT_SEARCH_S_PER_MODEL: Final = 0.05
#: The safety limit at least, however few the models.
MIN_SEARCH_S: Final = 5.0
#: Emptying platforms: moves tried at most per model of the batch, each asking the rules'
#: plain passes in turn (a budget counted in work, so the plan is the same on any machine; it
#: grows with the batch, as issue 11 asks).
EMPTYING_CHECKS_PER_MODEL: Final = 1
#: Emptying platforms: a safety limit only, in the planning thread's CPU time per move allowed
#: above (at least :data:`MIN_SEARCH_S`): about four times the 62 ms a move took on mixed200
#: (about 30 models a build), the dearest measured on a 2-core machine of 2026 (arches64: 21
#: ms). The search's own per-model limit is not enough here: on mixed200 it stopped the moves
#: at 161 of 200, so the plan hung on the machine's speed.
EMPTYING_SAFETY_S_PER_CHECK: Final = 0.25
#: Emptying platforms: the turn step a model being moved may also take (the others keep theirs).
FINE_TURN_STEP_DEG: Final = 5.0
#: Platforms kept open for the greedy pass: later models rarely fit further back.
_OPEN_BINS: Final = 3
#: Orders tried by the local search at most, whatever the budget.
_MAX_ORDERS: Final = 16
_BIG: Final = 1e12
#: In the "lowest top" rule, how much a millimetre of mean waste height weighs against a
#: millimetre of top: enough to prefer the open side up when tops are equal.
_LOW_WASTE_WEIGHT: Final = 0.05
#: Every this many columns of a model are taken first when placing it: their highest rise
#: over the skyline is a lower bound of the model's, enough in most tries to show that the
#: model fits nowhere on a filling platform before the other columns are taken.
_PROBE_EVERY: Final = 8

_Array = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Outline:
    """One model: shadow boundary points (mm, any origin), growth per side, hull area."""

    key: str
    points: _Array
    grow: float
    hull_mm2: float
    group: str | None = None


@dataclass(frozen=True)
class NestedPlacement:
    """Where a model goes: the centre of its turned shadow's box, the turn, its box size."""

    key: str
    x: float
    y: float
    angle_deg: float
    width: float
    depth: float


@dataclass(frozen=True)
class NestedBin:
    """One platform: placements in placing order and the sum of the models' hull areas."""

    placements: tuple[NestedPlacement, ...]
    hull_mm2: float
    platform: tuple[float, float]

    @property
    def density(self) -> float:
        """Convex-hull XY density: hull areas over platform area."""
        return self.hull_mm2 / (self.platform[0] * self.platform[1])


@dataclass(frozen=True)
class _Turns:
    """Column profiles of one outline at every turn, padded to one width."""

    angles: tuple[float, ...]
    lo: _Array  # (turns, width): lowest grown point per column, +inf where empty
    hi: _Array  # highest grown point per column, -inf where empty
    top: _Array  # (turns,) highest grown point
    width: npt.NDArray[np.int64]  # (turns,) columns used
    origin: _Array  # (turns,) shadow-frame x of column 0's left edge
    box: _Array  # (turns, 4): turned shadow's x_min, x_max, y_min, y_max (not grown)
    finite: npt.NDArray[np.bool_]  # (turns, width): columns the model occupies
    count: npt.NDArray[np.int64]  # (turns,) occupied columns
    lo_sum: _Array  # (turns,) sum of lo over the occupied columns
    probe: tuple[int, ...]  # the columns taken first (see _PROBE_EVERY), column 0 first
    rest: tuple[int, ...]  # the other columns that some turn occupies


def _probe_columns(finite: npt.NDArray[np.bool_]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Columns to take first (column 0, where the rise starts, every
    :data:`_PROBE_EVERY`-th occupied one, and the last) and the other occupied columns."""
    occupied = np.flatnonzero(finite.any(axis=0))
    taken = np.zeros(finite.shape[1], dtype=bool)
    taken[0] = True
    taken[occupied[::_PROBE_EVERY]] = True
    taken[occupied[-1:]] = True
    columns = np.arange(finite.shape[1])
    # A column no turn occupies rises by minus infinity: it never sets the maximum.
    left = ~taken & finite.any(axis=0)
    return tuple(columns[taken].tolist()), tuple(columns[left].tolist())


def _profiles(outline: Outline, angles: Sequence[float], cell: float) -> _Turns:
    """All turns at once: one rotation product and one scatter-min/max over all of them."""
    k = math.ceil(outline.grow / cell) if outline.grow > 0 else 0
    rad = np.radians(np.asarray(angles, dtype=np.float64))
    c, s = np.cos(rad), np.sin(rad)
    px, py = outline.points[:, 0], outline.points[:, 1]
    x = c[:, None] * px[None, :] - s[:, None] * py[None, :]  # (turns, points)
    y = s[:, None] * px[None, :] + c[:, None] * py[None, :]
    start = x.min(axis=1)
    cols = np.floor((x - start[:, None]) / cell).astype(np.int64)
    used = cols.max(axis=1) + 1
    width = int(used.max()) + 2 * k
    turns = len(angles)
    flat = (np.arange(turns)[:, None] * width + cols + k).ravel()
    low_flat = np.full(turns * width, np.inf)
    high_flat = np.full(turns * width, -np.inf)
    np.minimum.at(low_flat, flat, y.ravel())
    np.maximum.at(high_flat, flat, y.ravel())
    base_lo = low_flat.reshape(turns, width)
    base_hi = high_flat.reshape(turns, width)
    lo, hi = base_lo - outline.grow, base_hi + outline.grow
    for d in range(-k, k + 1):
        if d == 0:
            continue
        # A point may lie anywhere in its column: |d| - 1 cells is the nearest it can be to
        # column c + d, so the grown disc reaches at least this far over there.
        gap = (abs(d) - 1) * cell
        reach = math.sqrt(max(outline.grow**2 - gap * gap, 0.0))
        # Column c takes column c - d's points. The k empty columns on each side mean that a
        # shift by |d| <= k only ever brings in empty ones (a roll would wrap empty ones in):
        # slices give the same values without the rolled copies.
        if d > 0:
            np.minimum(lo[:, d:], base_lo[:, :-d] - reach, out=lo[:, d:])
            np.maximum(hi[:, d:], base_hi[:, :-d] + reach, out=hi[:, d:])
        else:
            np.minimum(lo[:, :d], base_lo[:, -d:] - reach, out=lo[:, :d])
            np.maximum(hi[:, :d], base_hi[:, -d:] + reach, out=hi[:, :d])
    box = np.column_stack([start, x.max(axis=1), y.min(axis=1), y.max(axis=1)])
    finite = np.isfinite(lo)
    probe, rest = _probe_columns(finite)
    return _Turns(
        tuple(float(a) for a in angles), lo, hi, hi.max(axis=1),
        (used + 2 * k).astype(np.int64), start - k * cell, box,
        finite, finite.sum(axis=1), np.where(finite, lo, 0.0).sum(axis=1), probe, rest,
    )


@dataclass
class _Platform:
    skyline: _Array
    depth: float
    #: The nester whose rule (column direction, turns) this platform's placements follow.
    nester: _Nester
    placed: list[tuple[str, int, int, float, _Turns]] = field(default_factory=list)
    hull: float = 0.0

    def clone(self) -> _Platform:
        return _Platform(self.skyline.copy(), self.depth, self.nester, list(self.placed),
                         self.hull)

    def snapshot(self) -> tuple[_Array, int, float]:
        return self.skyline.copy(), len(self.placed), self.hull

    def restore(self, state: tuple[_Array, int, float]) -> None:
        self.skyline, self.hull = state[0], state[2]
        del self.placed[state[1] :]

    def best(self, turns: _Turns, cell: float, low: bool) -> tuple[int, int, float] | None:
        """The (turn, offset, lift) wasting least area under the model (``low``: leaving the
        lowest top, then wasting least), or None.

        The waste of every turn and offset is first summed the fast way (a matrix product of
        the skyline with each turn's occupied columns); only the choices whose fast score is
        within rounding of the least are then scored exactly, column by column, so the
        choice (ties to the first turn and offset) is the one the exact sums give.
        """
        lo = turns.lo
        width = lo.shape[1]
        offsets = len(self.skyline)
        if not offsets:  # a platform narrower than one column takes nothing
            return None
        padded = np.empty(offsets + width)
        padded[:offsets] = self.skyline
        padded[offsets:] = _BIG
        # The highest the model must rise over the skyline, column by column: a loop over
        # the model's columns keeps each step at (turns, offsets) instead of a cube. A maximum
        # is exact in any order, so a few columns go first: when even their rise puts every
        # turn and offset past the depth (the rounded sum is monotonic), nothing fits.
        lift = padded[None, :offsets] - lo[:, 0, None]
        rise = np.empty_like(lift)
        for j in turns.probe[1:]:
            np.subtract(padded[None, j : j + offsets], lo[:, j, None], out=rise)
            np.maximum(lift, rise, out=lift)
        # A turn may fit only if its least bound does (adding the top rounds monotonically,
        # so this is the same test offset by offset, in one reduction).
        maybe = lift.min(axis=1) + turns.top <= self.depth + 1e-9
        if not maybe.any():
            return None
        if maybe.all():
            for j in turns.rest:
                np.subtract(padded[None, j : j + offsets], lo[:, j, None], out=rise)
                np.maximum(lift, rise, out=lift)
        else:
            # The other columns only for the turns that may fit; the others keep their
            # lower bound, already past the depth, so they stay out of every choice below.
            rows = np.flatnonzero(maybe)
            part, part_lo = lift[rows], lo[rows]
            rise = np.empty_like(part)
            for j in turns.rest:
                np.subtract(padded[None, j : j + offsets], part_lo[:, j, None], out=rise)
                np.maximum(part, rise, out=part)
            lift[rows] = part
        peak = lift + turns.top[:, None]
        fits = peak <= self.depth + 1e-9
        if not fits.any():
            return None
        # (offsets, width): row o is the skyline under the model at offset o (a view).
        step = padded.strides[0]
        windows: _Array = np.ndarray((offsets, width), np.float64, padded, 0, (step, step))
        finite = turns.finite
        under = (turns.count[:, None] * lift - finite.astype(np.float64) @ windows.T
                 + turns.lo_sum[:, None])
        score = np.where(fits, self._scores(peak, under, turns, cell, low), np.inf)
        least = float(score.min())
        near = np.flatnonzero(score <= least + 1e-7 * max(1.0, abs(least)))
        t_near, o_near = np.divmod(near, score.shape[1])
        # Row by row as the cube's rows were summed: the same pairwise sums, bit for bit.
        gaps = windows[o_near] - lo[t_near]
        exact = np.where(finite[t_near], lift[t_near, o_near, None] - gaps, 0.0).sum(axis=1)
        values = self._scores(peak[t_near, o_near], exact, turns, cell, low, t_near)
        t, o = int(t_near[int(np.argmin(values))]), int(o_near[int(np.argmin(values))])
        return t, o, float(lift[t, o])

    @staticmethod
    def _scores(peak: _Array, under: _Array, turns: _Turns, cell: float, low: bool,
                turn: npt.NDArray[np.int64] | None = None) -> _Array:
        """The rule's score of placements (lower is better): ``peak`` and ``under`` by turn
        and offset, or, with ``turn``, one entry per placement of those turns."""
        if low:
            # Mean height of the waste, weighted lightly: a tie-break between equal tops.
            span = turns.width * cell
            span = span[:, None] if turn is None else span[turn]
            weighted: _Array = peak + _LOW_WASTE_WEIGHT * under * cell / span
            return weighted
        plain: _Array = under * cell + peak * 1e-3
        return plain

    def put(self, key: str, turns: _Turns, t: int, o: int, lift: float, hull: float) -> None:
        w = int(turns.width[t])
        hi = turns.hi[t, :w]
        finite = np.isfinite(hi)
        segment = self.skyline[o : o + w]
        segment[finite] = np.maximum(segment[finite], lift + hi[finite])
        self.placed.append((key, t, o, lift, turns))
        self.hull += hull


@dataclass(frozen=True)
class _Unit:
    outlines: tuple[Outline, ...]

    @property
    def hull(self) -> float:
        return sum(o.hull_mm2 for o in self.outlines)


def _together(members: Sequence[Outline]) -> _Unit:
    """Outlines that share a platform, placed largest hull first."""
    return _Unit(tuple(sorted(members, key=lambda o: (-o.hull_mm2, o.key))))


def _largest_first(unit: _Unit) -> tuple[float, str]:
    """The sort key of the plain pass's order (the search's first, and the emptying's):
    largest hull first, ties by the first model's key. One rule, so that a move the emptying
    accepts is the layout a plain pass of the build gives."""
    return -unit.hull, unit.outlines[0].key


_Alone = Callable[[_Unit], "_Platform | None"]


class _Rules:
    """The nester of every rule the search tries (built on first use), and the one test of
    whether a unit fits a platform at all: some rule places it on an empty platform. A model
    that fails it is set aside (or named); a group that passes it may be kept together, and
    the batch then always finds it a platform, alone if need be."""

    def __init__(
        self, outlines: Sequence[Outline], platform: tuple[float, float], margin: float,
        allow_rotation: bool, cell: float, turn_step: float, max_items: int | None,
        spill: float,
    ) -> None:
        # Rule 0 first; then other rules, other stacking directions, and quarter turns only
        # (rows of like parts often tile better square than turned a little).
        self.variants = (
            (turn_step, False, False), (turn_step, False, True), (90.0, False, False),
            (90.0, False, True), (turn_step, True, False), (turn_step, True, True),
            (90.0, True, True),
        )
        self._args = (outlines, platform, margin, allow_rotation, cell)
        self._rest = (max_items, spill)
        self.max_items = max_items
        self._made: dict[int, _Nester] = {}
        self._single: dict[tuple[bytes, float], bool] = {}
        # Profiles by (turn step, swap): the lowest-top rule's are the other rule's.
        self._profiles: dict[tuple[float, bool], dict[str, _Turns]] = {}

    def fits(self, outline: Outline) -> bool:
        """Whether one model fits an empty platform (copies of a file are asked once)."""
        ident = (outline.points.tobytes(), outline.grow)
        if ident not in self._single:
            self._single[ident] = any(
                self.nester(rule).holds(outline) for rule in range(len(self.variants))
            )
        return self._single[ident]

    def nester(self, rule: int) -> _Nester:
        # Built on first use: a batch that reaches its bound at once pays for one rule only.
        if rule not in self._made:
            step, swap, low = self.variants[rule]
            self._made[rule] = _Nester(*self._args, step, *self._rest, swap=swap, low=low,
                                       profiles=self._profiles.setdefault((step, swap), {}))
        return self._made[rule]

    def alone(self, unit: _Unit, plain: bool = False) -> _Platform | None:
        """An empty platform holding ``unit``, from the first rule that fits it (largest
        hull first, then, unless ``plain``, longest side first), or None."""
        orders = [unit]
        if len(unit.outlines) > 1 and not plain:
            orders.append(_Unit(tuple(sorted(unit.outlines, key=lambda o: (-_span((o,)),
                                                                          o.key)))))
        for rule in range(len(self.variants)):
            nester = self.nester(rule)
            for order in orders:
                target = nester.empty()
                if nester.place(target, order):
                    return target
        return None


class _Nester:
    def __init__(
        self, outlines: Sequence[Outline], platform: tuple[float, float], margin: float,
        allow_rotation: bool, cell: float, turn_step: float, max_items: int | None,
        spill: float, swap: bool = False, low: bool = False,
        profiles: dict[str, _Turns] | None = None,
    ) -> None:
        """``swap``: columns run along y and models stack along x (the packer works on
        mirrored coordinates and mirrors the result back); ``low``: the lowest-top rule.
        ``profiles``: the outlines' profiles at this nester's turns and ``swap``, shared with
        another rule that differs only in ``low`` (filled here when empty)."""
        self.swap = swap
        self.low = low
        self.platform = platform
        if swap:
            platform = (platform[1], platform[0])
        self.cell = cell
        self.max_items = max_items
        # Grown shadows include half the spacing: that half may reach past the margin.
        self.spill = spill
        width = platform[0] - 2 * margin + 2 * self.spill
        self.depth = platform[1] - 2 * margin + 2 * self.spill
        self.columns = max(0, math.floor(width / cell + 1e-9))
        self.corner = (-platform[0] / 2 + margin - self.spill,
                       -platform[1] / 2 + margin - self.spill)
        angles = (
            tuple(float(a) for a in np.arange(0.0, 360.0, turn_step)) if allow_rotation
            else (0.0,)
        )
        # Copies of one file share their profiles: key them by the shadow's bytes.
        cache: dict[tuple[bytes, float], _Turns] = {}
        self.turns: dict[str, _Turns] = {} if profiles is None else profiles
        for o in outlines if not self.turns else ():
            ident = (o.points.tobytes(), o.grow)
            if ident not in cache:
                mirrored = Outline(o.key, o.points[:, ::-1], o.grow, o.hull_mm2) if swap else o
                cache[ident] = _profiles(mirrored, angles, cell)
            self.turns[o.key] = cache[ident]

    def empty(self) -> _Platform:
        return _Platform(np.zeros(self.columns), self.depth, self)

    def holds(self, outline: Outline) -> bool:
        """Whether :meth:`place` would put ``outline`` on an empty platform, without placing
        it: on a flat skyline the model rises by its lowest grown point wherever it goes, so
        some turn must fit the columns from the first one and the depth."""
        if self.max_items is not None and self.max_items < 1:
            return False
        turns = self.turns[outline.key]
        finite = np.isfinite(turns.lo)
        used = turns.lo.shape[1] - np.argmax(finite[:, ::-1], axis=1)
        lowest = np.where(finite, turns.lo, np.inf).min(axis=1)
        return bool(np.any((used <= self.columns)
                           & ((0.0 - lowest) + turns.top <= self.depth + 1e-9)))

    def place(self, target: _Platform, unit: _Unit) -> bool:
        if self.max_items is not None and len(target.placed) + len(unit.outlines) > (
            self.max_items
        ):
            return False
        state = target.snapshot()
        for outline in unit.outlines:
            turns = self.turns[outline.key]
            choice = target.best(turns, self.cell, self.low)
            if choice is None:
                target.restore(state)
                return False
            target.put(outline.key, turns, *choice, outline.hull_mm2)
        return True

    def run(self, units: Sequence[_Unit], alone: _Alone) -> list[_Platform]:
        """Greedy pass, then reinsertion. A unit this rule cannot place on an empty platform
        gets a platform of its own from the first rule that can (``alone``): every unit
        given here was checked to fit alone under some rule."""
        platforms: list[_Platform] = []
        owners: list[list[_Unit]] = []
        solos: list[_Platform] = []
        for unit in units:
            for target, owned in list(zip(platforms, owners, strict=True))[-_OPEN_BINS:]:
                if self.place(target, unit):
                    owned.append(unit)
                    break
            else:
                fresh = self.empty()
                if self.place(fresh, unit):
                    platforms.append(fresh)
                    owners.append([unit])
                    continue
                own = alone(unit)
                assert own is not None, "units are checked to fit alone before nesting"
                solos.append(own)
        return self._drain_last(platforms, owners) + solos

    def _drain_last(
        self, platforms: list[_Platform], owners: list[list[_Unit]]
    ) -> list[_Platform]:
        """Reinsert the last platform's units into the gaps of any earlier platform (the
        greedy pass keeps only the last few open); the last platform goes when all move."""
        if len(platforms) < 2:
            return platforms
        states = [p.snapshot() for p in platforms[:-1]]
        for unit in sorted(owners[-1], key=lambda u: -u.hull):
            if not any(self.place(target, unit) for target in platforms[:-1]):
                for target, state in zip(platforms[:-1], states, strict=True):
                    target.restore(state)
                return platforms
        return platforms[:-1]

    def result(self, platform: _Platform) -> NestedBin:
        if platform.nester is not self:
            return platform.nester.result(platform)
        out = []
        for key, t, o, lift, turns in platform.placed:
            shift_x = o * self.cell - float(turns.origin[t])
            x0, x1, y0, y1 = (float(v) for v in turns.box[t])
            x = self.corner[0] + shift_x + (x0 + x1) / 2
            y = self.corner[1] + lift + (y0 + y1) / 2
            angle = turns.angles[t]
            if self.swap:
                # Mirroring about x = y turns a counter-clockwise turn into a clockwise one.
                out.append(NestedPlacement(key, y, x, (360.0 - angle) % 360.0, y1 - y0, x1 - x0))
            else:
                out.append(NestedPlacement(key, x, y, angle, x1 - x0, y1 - y0))
        return NestedBin(tuple(out), platform.hull, self.platform)


def _too_large(unit: _Unit, platform: tuple[float, float]) -> PlanningError:
    keys = ", ".join(o.key for o in unit.outlines)
    what = f"model {keys}" if len(unit.outlines) == 1 else f"group of {keys}"
    return PlanningError(
        f"{what} does not fit an empty {platform[0]:g} x {platform[1]:g} mm platform with its "
        "raft border and spacing",
        hint="scale or split the model, or use a machine with a larger platform",
    )


def _units(outlines: Sequence[Outline]) -> list[_Unit]:
    groups: dict[str, list[Outline]] = {}
    units: list[_Unit] = []
    for outline in outlines:
        if outline.group is None:
            units.append(_Unit((outline,)))
        else:
            groups.setdefault(outline.group, []).append(outline)
    units.extend(_together(m) for m in groups.values())
    return units


def _span(outlines: Sequence[Outline]) -> float:
    return max(float(np.ptp(o.points, axis=0).max()) + 2 * o.grow for o in outlines)


def refuse_unusable_outlines(outlines: Sequence[Outline]) -> None:
    """A PlanningError for a key given twice or a model with no usable outline (no points,
    or one that is not finite), before any work: every packer's rule (the raster packer's
    too, review rv47-loose: its own check let a NaN point and a key given twice through)."""
    seen: set[str] = set()
    for outline in outlines:
        if outline.key in seen:
            raise PlanningError(f"item key {outline.key!r} appears more than once",
                                hint="give every model copy its own key")
        seen.add(outline.key)
        if len(outline.points) == 0 or not np.isfinite(outline.points).all():
            raise PlanningError(f"model {outline.key!r} has no usable outline",
                                hint="check the model file")


def nest(
    outlines: Sequence[Outline],
    platform: tuple[float, float],
    *,
    margin: float = 0.0,
    spill: float = 0.0,
    max_items: int | None = None,
    allow_rotation: bool = True,
    unfit: list[str] | None = None,
    cell: float = DEFAULT_CELL_MM,
    turn_step_deg: float = DEFAULT_TURN_STEP_DEG,
    search_s_per_model: float = DEFAULT_SEARCH_S_PER_MODEL,
    search: bool = True,
    empty_platforms: bool = False,
    fine_turn_step_deg: float | None = FINE_TURN_STEP_DEG,
) -> list[NestedBin]:
    """Every outline on as few platforms as the search finds; see the module docstring.

    ``margin`` shrinks the platform on every side; ``spill`` is how far each grown outline
    may still reach past that line (the caller's rule for spacing, rafts and margins). Outlines
    sharing a ``group`` share a platform. A model that does not fit an empty platform is
    left out and its key appended to ``unfit`` when that list is given; without ``search``
    that test of each model alone is all that is done (no platforms: what the planner
    refuses of a model whatever else comes with it, asked before a case is planned). Raises
    :class:`~preform_pipeline.errors.PlanningError` naming a model (or group) that does not
    fit an empty platform (without ``unfit``), or a group larger than ``max_items``.

    ``empty_platforms`` then empties what platforms it can (module docstring, "Emptying
    platforms"), the moved models also at ``fine_turn_step_deg`` turns (None: not).
    """
    if not all(math.isfinite(v) and v > 0 for v in platform):
        raise ValueError(f"platform size must be two positive numbers, got {platform}")
    refuse_unusable_outlines(outlines)
    rules = _Rules(outlines, platform, margin, allow_rotation, cell, turn_step_deg, max_items,
                   spill)
    kept = []
    for outline in outlines:
        if rules.fits(outline):
            kept.append(outline)
        elif unfit is not None:
            unfit.append(outline.key)
        else:
            raise _too_large(_Unit((outline,)), platform)
    outlines = kept
    if not outlines or not search:
        return []
    units = _units(outlines)
    for unit in units:
        if max_items is not None and len(unit.outlines) > max_items:
            raise PlanningError(
                f"group {unit.outlines[0].group!r} has {len(unit.outlines)} models, more than "
                f"{max_items} per build", hint="raise max_models_per_build or split the group")
        if len(unit.outlines) > 1 and rules.alone(unit) is None:
            raise _too_large(unit, platform)
    nester = rules.nester(0)
    usable = nester.columns * nester.cell * nester.depth
    grown = sum(_grown_area(o) for o in outlines)
    bound = max(1, math.ceil(grown / usable)) if usable > 0 else 1
    if max_items is not None:
        bound = max(bound, math.ceil(len(outlines) / max_items))

    def score(result: list[_Platform]) -> tuple[int, float]:
        return len(result), min(p.hull for p in result)

    by_hull = sorted(units, key=_largest_first)
    by_span = sorted(units, key=lambda u: (-_span(u.outlines), -u.hull, u.outlines[0].key))
    best_nester, best = nester, nester.run(by_hull, rules.alone)
    budget = search_s_per_model * len(outlines)
    # The thread's CPU time, not the wall clock: other processes' load must not shorten the
    # search (see the module docstring); the order count above is the budget.
    deadline = time.thread_time() + (max(budget, MIN_SEARCH_S) if budget > 0 else 0.0)
    rng = random.Random(len(outlines))
    others = range(1, len(rules.variants))
    plans = [(r, by_hull) for r in others] + [(0, by_span)] + [(r, by_span) for r in others]
    orders = min(_MAX_ORDERS, max(_MIN_ORDERS, SEARCH_MODEL_ORDERS // len(outlines)))
    tried = 1
    while len(best) > bound and tried < orders and time.thread_time() < deadline:
        if tried <= len(plans):
            rule, order = plans[tried - 1]
            candidate_nester = rules.nester(rule)
        else:
            candidate_nester, order = best_nester, list(by_hull)
            for _ in range(max(1, len(order) // 8) if len(order) > 1 else 0):
                i = rng.randrange(len(order) - 1)
                order[i], order[i + 1] = order[i + 1], order[i]
        tried += 1
        candidate = candidate_nester.run(order, rules.alone)
        if score(candidate) < score(best):
            best_nester, best = candidate_nester, candidate
    if len(best) > bound:
        # Files in the order given, each platform laid out again from empty as it takes
        # one more: what a server does when models are added one by one (the vendor's
        # strategy). Sizes come mixed, and largest first had put every large arch on the
        # first platforms together (arches64 on mini rafts: 11 platforms here, 12 above).
        refilled = _refill(rules, units, deadline)
        if refilled is not None and score(refilled) < score(best):
            best = refilled
    laid = _plain_platforms(rules, best, units)
    if empty_platforms and len(laid) > bound:
        fine = None
        if allow_rotation and fine_turn_step_deg is not None and (
            fine_turn_step_deg < turn_step_deg
        ):
            fine = _fine_rules(platform, margin, cell, fine_turn_step_deg, max_items, spill)
        checks = EMPTYING_CHECKS_PER_MODEL * len(outlines)
        safety = time.thread_time() + max(checks * EMPTYING_SAFETY_S_PER_CHECK, MIN_SEARCH_S)
        laid = _empty_platforms(rules, fine, laid, units, checks, safety)
    return [p.nester.result(p) for p in laid]


def _refill(rules: _Rules, units: Sequence[_Unit], deadline: float) -> list[_Platform] | None:
    """Platforms filled in the order of ``units``: each takes the next unit while a plain
    pass (:func:`_plain_pass`) still places all it holds; the next unit opens a platform.
    None when the planning thread's time runs out first."""
    platforms: list[_Platform] = []
    held: list[_Unit] = []
    laid: _Platform | None = None
    for unit in units:
        if time.thread_time() > deadline:
            return None
        platform, left = _plain_pass(rules, [*held, unit])
        if not left:
            held, laid = [*held, unit], platform
            continue
        if laid is not None:
            platforms.append(laid)
        laid_alone = rules.alone(unit)
        assert laid_alone is not None, "units are checked to fit alone before nesting"
        held, laid = [unit], laid_alone
    if laid is not None:
        platforms.append(laid)
    return platforms


def _plain_pass(rules: _Rules, units: Sequence[_Unit]) -> tuple[_Platform, list[_Unit]]:
    """A platform filled by one rule's plain pass over ``units`` (largest first), and the
    units it left out: the first rule that places them all, else the one leaving the least
    hull out (the first such)."""
    ordered = sorted(units, key=_largest_first)
    best: tuple[_Platform, list[_Unit]] | None = None
    for rule in range(len(rules.variants)):
        nester = rules.nester(rule)
        platform = nester.empty()
        left = [unit for unit in ordered if not nester.place(platform, unit)]
        if not left:
            return platform, left
        if best is None or sum(u.hull for u in left) < sum(u.hull for u in best[1]):
            best = (platform, left)
    assert best is not None, "a rule is always tried"
    return best


def _contents(platforms: Sequence[_Platform], units: Sequence[_Unit]) -> list[list[_Unit]]:
    """The units each platform holds, in placing order."""
    unit_of = {o.key: unit for unit in units for o in unit.outlines}
    held = []
    for platform in platforms:
        seen: dict[int, _Unit] = {}
        for key, *_ in platform.placed:
            seen.setdefault(id(unit_of[key]), unit_of[key])
        held.append(list(seen.values()))
    return held


def _plain_platforms(
    rules: _Rules, platforms: list[_Platform], units: Sequence[_Unit]
) -> list[_Platform]:
    """The chosen platforms, each laid out by a plain pass where one places all its models
    (see the module docstring); as many platforms as before, every unit on one of them."""
    held = _contents(platforms, units)
    laid: list[_Platform | None] = [None] * len(platforms)
    for index, mine in enumerate(held):
        platform, left = _plain_pass(rules, mine)
        if not left:
            laid[index] = platform
            continue
        homes = sorted((j for j in range(len(held)) if j != index),
                       key=lambda j: (sum(u.hull for u in held[j]), j))
        for home in homes:
            together, still = _plain_pass(rules, held[home] + left)
            if not still and platform.placed:
                held[home] = held[home] + left
                laid[home] = together
                held[index] = [u for u in mine if u not in left]
                laid[index] = platform
                break
    # A platform no plain pass fills stays as the search packed it.
    return [p if p is not None else platforms[i] for i, p in enumerate(laid)]


#: The finer turns' rules for one unit being moved (its own outlines only: profiles at fine
#: turns cost three times the usual, and only the moved models need them).
_FineRules = Callable[[_Unit], _Rules]


class _Prefixes:
    """Plain passes of the units a move leaves in front of the newcomer (largest first), by
    rule, remembered: every newcomer smaller than they are finds them laid out alike, so a
    move's check lays out only the newcomer and what comes after it."""

    def __init__(self, rules: _Rules) -> None:
        self.rules = rules
        self._laid: dict[tuple[int, tuple[int, ...]], _Platform | None] = {}

    def laid(self, rule: int, units: Sequence[_Unit]) -> _Platform | None:
        """A copy of ``rule``'s platform holding ``units`` placed in that order, or None
        when the rule cannot place them all."""
        key = (rule, tuple(id(u) for u in units))
        if key not in self._laid:
            before = self.laid(rule, units[:-1]) if units else None
            if not units:
                found: _Platform | None = self.rules.nester(rule).empty()
            elif before is not None and before.nester.place(before, units[-1]):
                found = before
            else:
                found = None
            self._laid[key] = found
        found = self._laid[key]
        return None if found is None else found.clone()

    def with_newcomer(self, units: Sequence[_Unit], newcomer: _Unit,
                      fine: _FineRules | None) -> _Platform | None:
        """A platform on which one rule's plain pass (largest first, from empty) places every
        one of ``units`` and ``newcomer``, or None: the server-rule test of a move. With
        ``fine``, the newcomer alone may also take that rule's finer turns (the others keep
        the turns they are planned with), tried when no rule places them all at the usual
        turns."""
        ordered = sorted([*units, newcomer], key=_largest_first)
        at = next(i for i, u in enumerate(ordered) if u is newcomer)
        front, back = ordered[:at], ordered[at + 1 :]
        for finer in (None, fine) if fine is not None else (None,):
            for rule in range(len(self.rules.variants)):
                # Quarter-turn rules have no finer turns: asked once is enough.
                if finer is not None and (
                    finer(newcomer).variants[rule] == self.rules.variants[rule]
                ):
                    continue
                platform = self.laid(rule, front)
                if platform is None:
                    continue
                nester = self.rules.nester(rule)
                mover = nester if finer is None else finer(newcomer).nester(rule)
                if mover.place(platform, newcomer) and all(
                    nester.place(platform, unit) for unit in back
                ):
                    return platform
        return None


@dataclass
class _Emptying:
    """The improvement search's state: units per platform, their layouts, the work left."""

    held: list[list[_Unit]]
    laid: list[_Platform]
    checks_left: int
    deadline: float
    prefixes: _Prefixes

    def spent(self) -> bool:
        return self.checks_left <= 0 or time.thread_time() > self.deadline


def _fine_rules(platform: tuple[float, float], margin: float, cell: float, step: float,
                max_items: int | None, spill: float) -> _FineRules:
    """Rules at ``step``-degree turns for one unit at a time, made once per unit."""
    made: dict[int, tuple[_Unit, _Rules]] = {}

    def of(unit: _Unit) -> _Rules:
        if id(unit) not in made:
            made[id(unit)] = (unit, _Rules(unit.outlines, platform, margin, True, cell, step,
                                           max_items, spill))
        return made[id(unit)][1]

    return of


def _empty_platforms(
    rules: _Rules, fine: _FineRules | None, platforms: list[_Platform],
    units: Sequence[_Unit], checks: int, deadline: float,
) -> list[_Platform]:
    """``platforms`` with as many emptied as the search finds (see the module docstring,
    "Emptying platforms"): never more platforms, each changed one laid out by a plain pass."""
    state = _Emptying(_contents(platforms, units), list(platforms), checks, deadline,
                      _Prefixes(rules))
    while len(state.held) > 1 and not state.spent():
        loads = [sum(u.hull for u in mine) for mine in state.held]
        for index in sorted(range(len(state.held)), key=lambda i: (loads[i], -i)):
            if _empty_one(rules, fine, state, index):
                break
            if state.spent():
                return state.laid
        else:
            break
    return state.laid


def _empty_one(rules: _Rules, fine: _FineRules | None, state: _Emptying, index: int) -> bool:
    """Move every unit of platform ``index`` to the others (a unit that fits nowhere may
    change places with a smaller one, which then has to move in its turn); on success the
    platform is gone from ``state``, else ``state`` is as it was."""
    held = [list(mine) for mine in state.held]
    laid = list(state.laid)
    hulls = [sum(u.hull for u in mine) for mine in held]
    pending = sorted(held[index], key=_largest_first)
    limit = rules.max_items
    while pending:
        unit = pending.pop(0)
        # Roomiest first. (No area test first: nested arches' hulls overlap, so no sum of
        # areas says that a platform cannot take one more.)
        homes = sorted((j for j in range(len(held)) if j != index),
                       key=lambda j: (hulls[j], j))
        moved = False
        for home in homes:
            if limit is not None and sum(len(u.outlines) for u in held[home]) + len(
                unit.outlines
            ) > limit:
                continue
            if state.spent():
                return False
            state.checks_left -= 1
            platform = state.prefixes.with_newcomer(held[home], unit, fine)
            if platform is not None:
                held[home].append(unit)
                laid[home], hulls[home], moved = platform, hulls[home] + unit.hull, True
                break
        for home in homes if not moved else ():
            for other in sorted(held[home], key=lambda u: (u.hull, u.outlines[0].key)):
                if other.hull >= unit.hull:
                    break
                rest = [u for u in held[home] if u is not other]
                if state.spent():
                    return False
                state.checks_left -= 1
                platform = state.prefixes.with_newcomer(rest, unit, fine)
                if platform is not None:
                    # The smaller unit takes the freed place in the queue: the platform
                    # being emptied still has to lose it.
                    held[home] = [*rest, unit]
                    laid[home], hulls[home] = platform, hulls[home] - other.hull + unit.hull
                    pending.append(other)
                    pending.sort(key=_largest_first)
                    moved = True
                    break
            if moved:
                break
        if not moved:
            return False
    del held[index], laid[index]
    state.held, state.laid = held, laid
    return True


def fits_one_platform(
    outlines: Sequence[Outline],
    platform: tuple[float, float],
    *,
    margin: float = 0.0,
    spill: float = 0.0,
    allow_rotation: bool = True,
    cell: float = DEFAULT_CELL_MM,
    turn_step_deg: float = DEFAULT_TURN_STEP_DEG,
) -> bool:
    """Whether ``outlines`` share one platform, leaving out any that fits none on its own
    (:func:`nest` sets those aside): the same test :func:`nest` applies to a group, so a
    group kept together on this answer always finds a platform there (groups are ignored
    here: every outline counts as one of this group)."""
    rules = _Rules(outlines, platform, margin, allow_rotation, cell, turn_step_deg, None, spill)
    kept = [o for o in outlines if rules.fits(o)]
    return not kept or rules.alone(_together(kept)) is not None


def one_platform_layout(
    outlines: Sequence[Outline],
    platform: tuple[float, float],
    *,
    margin: float = 0.0,
    spill: float = 0.0,
    allow_rotation: bool = True,
    cell: float = DEFAULT_CELL_MM,
    turn_step_deg: float = DEFAULT_TURN_STEP_DEG,
) -> NestedBin | None:
    """Every one of ``outlines`` laid out on one platform by a plain pass (largest hull
    first, under any rule), as each platform :func:`nest` hands out, since the server lays a
    build out again in one pass of its own; None when they do not all fit (or there are
    none)."""
    if not outlines:
        return None
    rules = _Rules(outlines, platform, margin, allow_rotation, cell, turn_step_deg, None, spill)
    laid = rules.alone(_together(outlines), plain=True)  # None if one fits no platform
    return laid.nester.result(laid) if laid is not None else None


def _grown_area(outline: Outline) -> float:
    span = np.ptp(outline.points, axis=0)
    perimeter = 2 * float(span[0] + span[1])
    return outline.hull_mm2 + outline.grow * perimeter * 0.8
