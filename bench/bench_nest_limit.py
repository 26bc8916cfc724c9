"""Benchmark (offline, no server): how few builds the planner's footprint model allows.

Issue 11 asks for builds <= ceil(sum of hull areas / platform area) + 1 and a mean hull density
of 60% (dental arches) and 55% (mixed parts), on full rafts. This asks where the planner's
count comes from, with the same footprints (``plan/footprint.py``: the oriented shadow grown by
the raft rim and half the spacing) and the same overlap rule (per column of the turned shadow,
one occupied interval, grown by a disc; grown outlines may not overlap and may reach half the
spacing past the platform's edge), for each set:

1. **planner**: ``plan_builds`` as the runner calls it (its count and CPU per model);
2. **search before the plain step**: the same ``nest`` with its last step (each platform laid
   out again by one plain pass, as the server will lay the build out) left out, so the cost of
   the server-rule constraint shows;
3. **the planner's nester, stronger**: the same ``nest`` with 5-degree turns (``--turn-step``),
   every platform open to its greedy pass, and orders until a quarter of ``--budget-s`` of CPU,
   without and with the plain step;
4. **free placement**: the same grown column intervals, rasterised (``--cell`` mm, every
   ``--turn-step`` degrees), placed *anywhere* they do not overlap, not only dropped from the
   back onto a skyline: a model may slide under another's overhang, into an arch's opening from
   any side, or face to face with another arch at any relative turn on the grid; first fit over
   every platform opened so far (no limit on open platforms), bottom-left, left-bottom or
   lowest top,
   over many orders (largest first, longest first, then seeded random swaps and shuffles)
   for half of ``--budget-s`` of CPU, then a local search that empties the emptiest platform
   for the other half. The grid rounds every outline outwards, so a packing found here is one
   the planner's model allows;
5. **area bounds**: grown area (each model's raster area at its smallest turn, and the grown
   convex hulls the bench has reported since session 28, and the grown shadows measured on a
   fine grid) over the area a grown outline may use, and the build count each density target
   requires.

Every platform that 3 and 4 produce is then given to the simulator's own packer
(``simulator/outline_pack.py``), which must lay all its models out for the plan to hold on a
server.

    nice -n 15 python bench/bench_nest_limit.py [--sets arches64,mixed200] [--budget-s 420]
        [--cell 1.0] [--turn-step 5] [--output nest_limit_s41] [--append]

Writes bench/results/<output>.json and .md (``--append`` keeps the other sets of an earlier
run: one set per run keeps each run under ten minutes).

    nice -n 15 python bench/bench_nest_limit.py --knobs --sets arches64 --output STEM
    nice -n 15 python bench/bench_nest_limit.py --run-builds STEM

``--knobs`` plans each set under one change to the nester at a time (:data:`KNOBS`) and adds
the counts and CPU to ``STEM.json`` (the Markdown, with its reading written by hand, is left
alone). ``--run-builds`` runs ``bench_builds.py`` on arches64 and one simulated server with
the nester set as the knob that made 12 builds, to see whether the server lays them out.

    nice -n 15 python bench/bench_nest_limit.py --trace-overflow STEM [--empty-builds]

``--trace-overflow`` plans arches64 with the nester set as that knob (``--empty-builds``:
instead as the product plans with ``batching.empty_builds: true``), lays every build out on
an in-process simulator engine as the runner asks a server to (import each file, orient,
support with full rafts, lay out), and for every build that does not fit compares the
planner's predicted footprint of each model with the simulator's own (shadow points,
growth), which rules of the planner's plain pass lay the build out (at 15 and 5 degree
turns), and how many of the simulator packer's layouts it takes to place them all. Writes
``STEM.json``.

    nice -n 10 python bench/bench_nest_limit.py --area STEM [--sets ...] [--empty-builds]

``--area`` plans each set as the runner does (``--empty-builds``: with
``batching.empty_builds: true``) and writes where every build's platform area goes
(:func:`area_split`: grown outlines, free area the skyline has passed and behind it, and
room a model of the set could still take) to ``STEM.json`` and ``STEM.md``; a few seconds of
CPU per set.

    nice -n 10 python bench/bench_nest_limit.py --raster STEM [--sets ...] [--cell 0.5]
        [--turn-step 15] [--moves 20] [--clearance 0.5] [--seed 41]

``--raster`` packs each set with ``plan/raster_nest.py`` (a packer of another class: grown
outlines as cells, placed anywhere they overlap nothing, with a seeded local search) and
plans it with ``plan_builds`` as the runner does: builds, hull density and CPU per model
of both; then every raster platform is prepared on an in-process simulator as the runner
prepares a build and placed as its ``place_as_planned`` places one, and the simulator's own
interference check (on the meshes) and bounds judge it. Appends the run to ``STEM.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform as host
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sample_models"))

from bench_builds import PLATFORM_MM2, RECIPE, _models
from bench_support import results_path

from preform_pipeline.geometry.projection import convex_hull, hull_area
from preform_pipeline.plan import nesting
from preform_pipeline.plan.builds import ModelInfo, Plan, plan_builds, read_models
from preform_pipeline.plan.footprint import Footprint, predict
from preform_pipeline.recipes import load_recipe
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.simulator.outline_pack import MAX_LAYOUT_TRIES, Shape, pack_shapes

__all__ = [
    "Grid", "Masks", "area_split", "fine_grown_area", "first_fit", "main", "masks", "repack",
    "search", "simulator_places",
]

PLATFORM = (200.0, 125.0)  # Form 4, mm
#: Placement rules: bottom-left, left-bottom, lowest top.
RULES = ("bl", "lb", "top")
_Bool = npt.NDArray[np.bool_]


# -- the footprints, as the planner predicts them -------------------------------------------


def _footprints(recipe: Recipe, models: Sequence[ModelInfo]) -> list[Footprint]:
    out = []
    for model in models:
        assert model.shadow is not None, "the bench's models are meshes"
        out.append(predict(model.shadow, recipe, supported=True))
    return out


@dataclass(frozen=True)
class Masks:
    """One model's grown column-interval outline rasterised at every turn."""

    index: int
    hull_mm2: float
    shape_key: bytes  # the same for copies of one file
    turns: tuple[_Bool, ...]
    areas: tuple[int, ...]  # occupied cells per turn


def masks(index: int, footprint: Footprint, angles: Sequence[float], cell: float) -> Masks:
    """The planner's overlap rule on a grid: per ``cell``-wide column of the turned shadow, the
    interval from its lowest to its highest point, grown by a disc of ``grow_mm``; every cell the
    grown outline touches is occupied (outwards rounding: a packing of masks is one of outlines).
    """
    grow = footprint.grow_mm
    # Cells within the disc of any cell of the shape: nearest points of the two cells apart.
    k = math.ceil(grow / cell)
    disc = [(dx, dy) for dx in range(-k, k + 1) for dy in range(-k, k + 1)
            if (max(abs(dx) - 1, 0) ** 2 + max(abs(dy) - 1, 0) ** 2) * cell * cell
            <= grow * grow + 1e-9]
    turned = []
    for angle in angles:
        rad = math.radians(angle)
        c, s = math.cos(rad), math.sin(rad)
        px, py = footprint.points[:, 0], footprint.points[:, 1]
        x, y = c * px - s * py, s * px + c * py
        cols = np.floor((x - x.min()) / cell).astype(np.int64)
        rows = y - y.min()
        width = int(cols.max()) + 1
        lo = np.full(width, np.inf)
        hi = np.full(width, -np.inf)
        np.minimum.at(lo, cols, rows)
        np.maximum.at(hi, cols, rows)
        height = math.floor(float(rows.max()) / cell) + 1
        base = np.zeros((height + 2 * k, width + 2 * k), dtype=bool)
        for col in range(width):
            if np.isfinite(lo[col]):
                r0, r1 = int(lo[col] // cell), int(hi[col] // cell)
                base[k + r0 : k + r1 + 1, k + col] = True
        grown = np.zeros_like(base)
        h, w = base.shape
        for dx, dy in disc:
            grown[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] |= (
                base[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
            )
        turned.append(grown)
    return Masks(index, footprint.hull_mm2,
                 footprint.points.tobytes() + str(footprint.grow_mm).encode(), tuple(turned),
                 tuple(int(m.sum()) for m in turned))


# -- placing anywhere on a grid -------------------------------------------------------------


@dataclass
class Grid:
    """One platform: occupied cells (rows along y from the front, columns along x)."""

    cells: _Bool
    models: list[int] = field(default_factory=list)
    used: int = 0
    refused: set[bytes] = field(default_factory=set)

    def place(self, m: Masks, spectra: npt.NDArray[np.complex64], rule: str) -> bool:
        """Put ``m`` where it overlaps nothing: the lowest then leftmost offset over every turn
        (``rule`` "bl"), the leftmost then lowest ("lb"), or the lowest top ("top"). False
        when it fits nowhere; a shape that once fitted nowhere here is not tried again (cells
        are only ever added)."""
        rows, cols = self.cells.shape
        if m.shape_key in self.refused or self.used + min(m.areas) > rows * cols:
            return False
        grid = np.fft.rfft2(self.cells.astype(np.float32))
        hits = np.fft.irfft2(grid[None] * spectra, s=(rows, cols))
        best: tuple[int, int, int, int] | None = None
        for t, mask in enumerate(m.turns):
            h, w = mask.shape
            if h > rows or w > cols:
                continue
            free = np.argwhere(hits[t, : rows - h + 1, : cols - w + 1] < 0.5)
            if not len(free):
                continue
            if rule == "bl":
                key = free[:, 0] * cols + free[:, 1]
            elif rule == "lb":
                key = free[:, 1] * rows + free[:, 0]
            else:  # "top": the lowest top edge, then the leftmost (the planner's own rule)
                key = (free[:, 0] + h) * cols + free[:, 1]
            i = int(np.argmin(key))
            if best is None or int(key[i]) < best[0]:
                best = (int(key[i]), t, int(free[i, 0]), int(free[i, 1]))
        if best is None:
            self.refused.add(m.shape_key)
            return False
        _, t, r, c = best
        mask = m.turns[t]
        window = self.cells[r : r + mask.shape[0], c : c + mask.shape[1]]
        assert not (window & mask).any(), "the transform's answer is checked cell by cell"
        window |= mask
        self.models.append(m.index)
        self.used += int(mask.sum())
        return True


def _spectra(m: Masks, shape: tuple[int, int]) -> npt.NDArray[np.complex64]:
    # Correlation, not convolution: the conjugate. A circular transform of the grid's own size
    # is exact for every offset that keeps the mask inside the grid (no index wraps there).
    stack = np.zeros((len(m.turns), *shape), dtype=np.float32)
    for t, mask in enumerate(m.turns):
        h, w = min(mask.shape[0], shape[0]), min(mask.shape[1], shape[1])
        stack[t, :h, :w] = mask[:h, :w]
    return np.conj(np.fft.rfft2(stack)).astype(np.complex64)


def first_fit(order: Sequence[Masks], shape: tuple[int, int], rule: str,
              spectra: Callable[[Masks], npt.NDArray[np.complex64]],
              stop_at: int | None = None) -> list[Grid]:
    """Each model on the first platform where it fits anywhere (every platform stays open).
    Gives up (returns what it has, one more than ``stop_at``) once it needs more than
    ``stop_at`` platforms."""
    grids: list[Grid] = []
    for m in order:
        spec = spectra(m)
        for g in grids:
            if g.place(m, spec, rule):
                break
        else:
            g = Grid(np.zeros(shape, dtype=bool))
            placed = g.place(m, spec, rule)
            assert placed, f"model {m.index} fits no empty platform"
            grids.append(g)
            if stop_at is not None and len(grids) > stop_at:
                return grids
    return grids


def search(all_masks: Sequence[Masks], shape: tuple[int, int], budget_s: float,
           seed: int, floor: int) -> dict[str, Any]:
    """First fit over many orders and both rules until ``budget_s`` of this process's CPU time
    or ``floor`` platforms; the fewest platforms found, and the log of improvements."""
    cache: dict[bytes, npt.NDArray[np.complex64]] = {}

    def spectra(m: Masks) -> npt.NDArray[np.complex64]:
        # Copies of one file share one shape: transformed once.
        if m.shape_key not in cache:
            cache[m.shape_key] = _spectra(m, shape)
        return cache[m.shape_key]

    rng = random.Random(seed)
    by_area = sorted(all_masks, key=lambda m: -min(m.areas))
    by_side = sorted(all_masks, key=lambda m: -max(max(t.shape) for t in m.turns))
    start = time.process_time()
    best: list[Grid] | None = None
    best_order: list[Masks] = by_area
    history: list[dict[str, Any]] = []
    tries = 0
    seeded = [(order, rule) for order in (by_area, by_side) for rule in RULES]
    # Half the budget for whole first-fit passes over orders, the rest to empty platforms.
    while time.process_time() - start < budget_s / 2:
        if tries < len(seeded):
            order, rule = seeded[tries]
            how = "largest first" if order is by_area else "longest first"
        else:
            rule = rng.choice(RULES)
            order = list(best_order)
            if rng.random() < 0.2:
                # A fresh order by area with noise: keeps the large ones early, mixes sizes.
                order = sorted(all_masks, key=lambda m: -min(m.areas) * rng.uniform(0.6, 1.4))
                how = "noisy area order"
            else:
                for _ in range(rng.randint(1, 4)):
                    i, j = rng.randrange(len(order)), rng.randrange(len(order))
                    order[i], order[j] = order[j], order[i]
                how = "swaps of the best order"
        tries += 1
        stop = len(best) - 1 if best is not None else None
        grids = first_fit(order, shape, rule, spectra, stop_at=stop)
        if best is None or len(grids) < len(best):
            best, best_order = grids, list(order)
            history.append({"try": tries, "builds": len(grids), "how": how, "rule": rule,
                            "cpu_s": round(time.process_time() - start, 1)})
            print(f"    try {tries}: {len(grids)} platforms ({how}, {rule})",
                  file=sys.stderr, flush=True)
            if len(grids) <= floor:
                break
    assert best is not None
    passes = len(best)
    best = _eliminate(best, all_masks, shape, spectra, rng, start + budget_s, floor, history,
                      start)
    fills = sorted((round(g.used / (shape[0] * shape[1]), 3) for g in best), reverse=True)
    return {"builds": len(best), "first_fit_builds": passes, "tries": tries,
            "cpu_s": round(time.process_time() - start, 1), "history": history,
            "grid_fill": fills, "platforms": [sorted(g.models) for g in best]}


def repack(group: Sequence[Masks], shape: tuple[int, int],
           spectra: Callable[[Masks], npt.NDArray[np.complex64]],
           rng: random.Random, extra: int = 2) -> Grid | None:
    """One platform holding every model of ``group``, laid out from empty (largest first and
    longest first under each rule, then ``extra`` shuffled orders), or None."""
    orders = [sorted(group, key=lambda m: -min(m.areas)),
              sorted(group, key=lambda m: -max(max(t.shape) for t in m.turns))]
    for _ in range(extra):
        orders.append(rng.sample(list(group), len(group)))
    for order in orders:
        for rule in RULES:
            grid = Grid(np.zeros(shape, dtype=bool))
            if all(grid.place(m, spectra(m), rule) for m in order):
                return grid
    return None


def _eliminate(grids: list[Grid], all_masks: Sequence[Masks], shape: tuple[int, int],
               spectra: Callable[[Masks], npt.NDArray[np.complex64]], rng: random.Random,
               deadline: float, floor: int, history: list[dict[str, Any]],
               start: float) -> list[Grid]:
    """Local search that empties platforms: a victim (the emptiest, or one of the three
    emptiest) hands each of its models to another platform that then still lays out from
    empty with it (first added in place, else laid out again); a model no other platform
    takes may swap with a smaller one of another platform when both platforms still lay out.
    A victim left empty goes. Moves are kept even when the victim stays: it is emptier."""
    by_index = {m.index: m for m in all_masks}
    grids = list(grids)
    while time.process_time() < deadline and len(grids) > floor:
        ranked = sorted(range(len(grids)), key=lambda i: grids[i].used)
        victim = ranked[0] if rng.random() < 0.5 else rng.choice(ranked[:3])
        for index in sorted(grids[victim].models, key=lambda i: -min(by_index[i].areas)):
            if time.process_time() >= deadline:
                break
            m = by_index[index]
            others = sorted((j for j in range(len(grids)) if j != victim),
                            key=lambda j: grids[j].used)
            moved = False
            for j in others:
                trial = Grid(grids[j].cells.copy(), list(grids[j].models), grids[j].used,
                             set(grids[j].refused))
                if not trial.place(m, spectra(m), "bl"):
                    group = [*(by_index[i] for i in grids[j].models), m]
                    if sum(min(g.areas) for g in group) > shape[0] * shape[1]:
                        continue
                    trial = repack(group, shape, spectra, rng, extra=0) or trial
                if index in trial.models:
                    grids[j] = trial
                    moved = True
                    break
            if not moved:
                # A swap: m for a smaller model of another platform that the victim takes.
                j = rng.choice(others)
                smaller = [i for i in grids[j].models
                           if min(by_index[i].areas) < min(m.areas)]
                if smaller:
                    k = rng.choice(smaller)
                    there = repack([by_index[i] for i in grids[j].models if i != k] + [m],
                                   shape, spectra, rng, extra=0)
                    rest = [by_index[i] for i in grids[victim].models if i != index]
                    here = repack([*rest, by_index[k]], shape, spectra, rng, extra=0)
                    if there is not None and here is not None:
                        grids[j], grids[victim] = there, here
                continue
            rest = [by_index[i] for i in grids[victim].models if i != index]
            # Laid out again without m; when no order does, m's cells stay marked (a stale
            # mark only makes the platform look fuller than it is).
            old = grids[victim]
            grids[victim] = repack(rest, shape, spectra, rng, extra=0) or Grid(
                old.cells, [i for i in old.models if i != index], old.used, old.refused)
            if not rest:
                del grids[victim]
                history.append({"builds": len(grids), "how": "platform emptied",
                                "cpu_s": round(time.process_time() - start, 1)})
                print(f"    emptied a platform: {len(grids)}", file=sys.stderr, flush=True)
                break
    return grids


# -- the planner's own counts -----------------------------------------------------------------


def _planner(recipe: Recipe, models: Sequence[ModelInfo]) -> dict[str, Any]:
    cpu = time.process_time()
    plan = plan_builds(recipe, models)
    planned_cpu = time.process_time() - cpu
    plain = nesting._plain_platforms
    # The search's result as it stood before each platform was laid out again by one plain
    # pass: the same nest() with that last step made the identity.
    nesting._plain_platforms = lambda rules, platforms, units: platforms  # type: ignore[assignment]
    try:
        cpu = time.process_time()
        before = plan_builds(recipe, models)
        before_cpu = time.process_time() - cpu
    finally:
        nesting._plain_platforms = plain  # type: ignore[assignment]
    return {
        "planner_builds": len(plan.builds),
        "planner_cpu_ms_per_model": round(planned_cpu * 1000 / len(models), 2),
        "before_plain_builds": len(before.builds),
        "before_plain_cpu_ms_per_model": round(before_cpu * 1000 / len(models), 2),
        "planner_models_per_build": sorted((len(b.models) for b in plan.builds), reverse=True),
    }


def _patched_plan(recipe: Recipe, models: Sequence[ModelInfo], constants: dict[str, int],
                  options: dict[str, float], plain: bool = True) -> tuple[Any, float]:
    """``plan_builds`` with the nester's module constants and ``nest``'s keyword defaults set
    as given for this one call (and its plain step left out unless ``plain``); the plan and
    its CPU seconds."""
    saved = {name: getattr(nesting, name) for name in constants}
    defaults = dict(nesting.nest.__kwdefaults__ or {})
    step_out = nesting._plain_platforms
    try:
        for name, value in constants.items():
            setattr(nesting, name, value)
        nesting.nest.__kwdefaults__ = {**defaults, **options}
        if not plain:
            nesting._plain_platforms = (  # type: ignore[assignment]
                lambda rules, platforms, units: platforms)
        cpu = time.process_time()
        plan = plan_builds(recipe, models)
        return plan, time.process_time() - cpu
    finally:
        for name, value in saved.items():
            setattr(nesting, name, value)
        nesting.nest.__kwdefaults__ = defaults
        nesting._plain_platforms = step_out  # type: ignore[assignment]


#: Every platform open to the greedy pass, and orders limited by CPU time alone.
_UNBOUNDED: dict[str, int] = {"_OPEN_BINS": 10**6, "_MAX_ORDERS": 10**9,
                              "SEARCH_MODEL_ORDERS": 10**12}

#: ``--knobs``: one change to the nester at a time, then together, with the orders counted.
KNOBS: tuple[tuple[str, dict[str, int], dict[str, float]], ...] = (
    ("as planned", {}, {}),
    ("5-degree turns", {}, {"turn_step_deg": 5.0}),
    ("10-degree turns", {}, {"turn_step_deg": 10.0}),
    ("every platform open", {"_OPEN_BINS": 10**6}, {}),
    ("64 orders", {"_MAX_ORDERS": 64, "SEARCH_MODEL_ORDERS": 10**9}, {}),
    *(
        (f"{step:g}-degree turns, every platform open, {orders} orders",
         {"_OPEN_BINS": 10**6, "_MAX_ORDERS": orders, "SEARCH_MODEL_ORDERS": 10**9},
         {"turn_step_deg": step, "search_s_per_model": 10.0})
        for step, orders in ((5.0, 16), (5.0, 40), (5.0, 100), (10.0, 100), (10.0, 200))
    ),
)


def knobs(recipe: Recipe, models: Sequence[ModelInfo]) -> list[dict[str, Any]]:
    """The planner's count and CPU per model under each of :data:`KNOBS`."""
    out = []
    for label, constants, options in KNOBS:
        plan, spent = _patched_plan(recipe, models, constants, options)
        out.append({"knob": label, "builds": len(plan.builds),
                    "cpu_ms_per_model": round(spent * 1000 / len(models), 1)})
        print(f"  {label}: {out[-1]}", file=sys.stderr, flush=True)
    return out


def _stronger_nester(recipe: Recipe, models: Sequence[ModelInfo], turn_step: float,
                     budget_s: float, plain: bool) -> dict[str, Any]:
    """The planner's own nester (skyline, exact heights, 1 mm columns) with its search
    unbounded but for CPU time: ``turn_step`` turns, every platform open to the greedy pass,
    orders until ``budget_s``; with or without the plain-platform step."""
    plan, spent = _patched_plan(
        recipe, models, _UNBOUNDED,
        {"turn_step_deg": turn_step, "search_s_per_model": budget_s / len(models)}, plain)
    index = {m.path: i for i, m in enumerate(models)}
    platforms = [[index[m.path] for m in b.models] for b in plan.builds]
    return {"builds": len(plan.builds), "cpu_s": round(spent, 1), "turn_step_deg": turn_step,
            "plain_step": plain, "platforms": platforms}


def simulator_places(platforms: Sequence[Sequence[int]],
                     footprints: Sequence[Footprint]) -> list[bool]:
    """For each platform (model indices), whether the simulator's own packer
    (``simulator/outline_pack.py``, as its auto_layout calls it) lays all its models out, each
    the planner's predicted shadow grown as predicted, on the platform plus half the spacing
    past each edge."""
    out = []
    for models in platforms:
        spacing = footprints[models[0]].spacing_mm
        shapes = [Shape(str(i), footprints[i].points, footprints[i].grow_mm) for i in models]
        _, unplaced = pack_shapes(shapes, (PLATFORM[0] + spacing, PLATFORM[1] + spacing),
                                  allow_rotation=True)
        out.append(not unplaced)
    return out


def fine_grown_area(footprint: Footprint, cell: float = 0.25, band: float = 0.5) -> float:
    """The area of the shadow grown by ``grow_mm``, close to exact: per ``band``-mm slice along
    x (the slices the shadow's points are sampled in), the interval between its lowest and
    highest point; cells of ``cell`` mm counted by their centres, grown by every offset whose
    centre distance is within the growth. An estimate for the area bound, not a packing."""
    pts = footprint.points
    x, y = pts[:, 0] - pts[:, 0].min(), pts[:, 1] - pts[:, 1].min()
    bands = np.floor(x / band).astype(np.int64)
    lo = np.full(int(bands.max()) + 1, np.inf)
    hi = np.full(int(bands.max()) + 1, -np.inf)
    np.minimum.at(lo, bands, y)
    np.maximum.at(hi, bands, y)
    k = math.ceil(footprint.grow_mm / cell)
    per = round(band / cell)
    height = math.ceil(float(y.max()) / cell) + 1
    base = np.zeros((height + 2 * k, len(lo) * per + 2 * k), dtype=bool)
    centres = (np.arange(height) + 0.5) * cell
    for b in range(len(lo)):
        if np.isfinite(lo[b]):
            rows = np.flatnonzero((centres >= lo[b] - cell / 2) & (centres <= hi[b] + cell / 2))
            base[k + rows, k + b * per : k + (b + 1) * per] = True
    grown = base.copy()
    h, w = base.shape
    for dx in range(-k, k + 1):
        for dy in range(-k, k + 1):
            if (dx * dx + dy * dy) * cell * cell > footprint.grow_mm ** 2 + 1e-9:
                continue
            grown[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] |= (
                base[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
            )
    return float(grown.sum()) * cell * cell


def _grown_hull(footprint: Footprint) -> float:
    hull = convex_hull(footprint.points)
    grown = hull_area(hull)
    perimeter = float(np.linalg.norm(np.roll(hull, -1, axis=0) - hull, axis=1).sum())
    return grown + perimeter * footprint.grow_mm + math.pi * footprint.grow_mm**2


def _read(name: str, work: Path) -> tuple[Recipe, list[ModelInfo]]:
    work.mkdir(parents=True)
    paths = _models(name, work / "models")
    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(RECIPE.format(raft_type="FULL_RAFT"), encoding="utf-8")
    recipe = load_recipe(recipe_path)
    models = read_models(paths, import_spec=recipe.import_options)
    print(f"{name}: {len(models)} models", file=sys.stderr, flush=True)
    return recipe, models


def run_set(name: str, work: Path, budget_s: float, cell: float, turn_step: float,
            seed: int) -> dict[str, Any]:
    recipe, models = _read(name, work)
    data: dict[str, Any] = {"set": name, "models": len(models)}
    data.update(_planner(recipe, models))
    print(f"  planner {data['planner_builds']}, before the plain step "
          f"{data['before_plain_builds']}", file=sys.stderr, flush=True)
    footprints = _footprints(recipe, models)
    for plain in (False, True):
        key = "nester_stronger" + ("_plain" if plain else "")
        found = _stronger_nester(recipe, models, turn_step, budget_s / 4, plain)
        found["simulator_places"] = simulator_places(found["platforms"], footprints)
        data[key] = found
        print(f"  {key}: {found['builds']} builds, the simulator places "
              f"{sum(found['simulator_places'])}", file=sys.stderr, flush=True)
    hulls = sum(f.hull_mm2 for f in footprints)
    half = footprints[0].spacing_mm / 2.0
    # A grown outline may reach half the spacing past each edge (the planner's spill).
    usable = (PLATFORM[0] + 2 * half) * (PLATFORM[1] + 2 * half)
    angles = [float(a) for a in np.arange(0.0, 360.0, turn_step)]
    all_masks = [masks(i, f, angles, cell) for i, f in enumerate(footprints)]
    shape = (int((PLATFORM[1] + 2 * half) // cell), int((PLATFORM[0] + 2 * half) // cell))
    raster_area = sum(min(m.areas) for m in all_masks) * cell * cell
    grown_hulls = sum(_grown_hull(f) for f in footprints)
    fine: dict[bytes, float] = {}
    for f in footprints:
        ident = f.points.tobytes()
        if ident not in fine:
            fine[ident] = fine_grown_area(f)
    grown_fine = sum(fine[f.points.tobytes()] for f in footprints)
    floor = max(1, math.ceil(raster_area / (shape[0] * shape[1] * cell * cell)))
    data.update({
        "hull_platforms": round(hulls / PLATFORM_MM2, 3),
        "bound_plus_1": math.ceil(hulls / PLATFORM_MM2) + 1,
        "grown_hull_platforms": round(grown_hulls / usable, 3),
        "grown_raster_platforms": round(raster_area / usable, 3),
        "grown_fine_platforms": round(grown_fine / usable, 3),
        "usable_mm2": usable,
        "area_floor_builds": floor,
        # Mean hull density is the hull total over builds x platform: the count that reaches it.
        "builds_for_density": {
            str(target): math.floor(hulls / (PLATFORM_MM2 * target) + 1e-9)
            for target in (0.55, 0.60)
        },
        "density_at": {str(n): round(hulls / (PLATFORM_MM2 * n), 4)
                       for n in range(max(1, floor - 1), data["planner_builds"] + 1)},
        "cell_mm": cell, "turn_step_deg": turn_step, "budget_s": budget_s, "seed": seed,
    })
    print(f"  hulls {data['hull_platforms']} platforms, grown raster "
          f"{data['grown_raster_platforms']}, floor {floor}", file=sys.stderr, flush=True)
    data["stronger"] = search(all_masks, shape, budget_s, seed, floor)
    data["stronger"]["simulator_places"] = simulator_places(data["stronger"]["platforms"],
                                                            footprints)
    return data


def _found(d: dict[str, Any]) -> str:
    if not d:
        return "-"
    placed = d.get("simulator_places", [])
    return f"{d['builds']} ({sum(placed)} of {len(placed)} laid out by the simulator)"


def _markdown(results: list[dict[str, Any]]) -> str:
    lines = ["# How few builds the planner's footprint model allows (offline, full rafts)", ""]
    for d in results:
        facts = d["facts"]
        lines.append(
            f"- {d['set']}: {facts['machine']}; 1-minute load {facts['load_before']} before, "
            f"{facts['load_after']} after; run {facts['start']} to {facts['end']} UTC, "
            f"`{facts['command']}`.")
    lines += [
        "",
        "| set | planner | its search before the plain step | planner's nester, stronger "
        "search, no plain step | the same with the plain step | free placement on a grid | "
        "area floor (grid) | grown hulls / grown shadows (usable platforms) | bound + 1 | "
        "builds for 60% / 55% density |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in results:
        lines.append(
            f"| {d['set']} | {d['planner_builds']} | {d['before_plain_builds']} | "
            f"{_found(d.get('nester_stronger', {}))} | "
            f"{_found(d.get('nester_stronger_plain', {}))} | {_found(d['stronger'])} | "
            f"{d['area_floor_builds']} | {d['grown_hull_platforms']} / "
            f"{d.get('grown_fine_platforms', '-')} | {d['bound_plus_1']} | "
            f"{d['builds_for_density']['0.6']} / {d['builds_for_density']['0.55']} |")
    return "\n".join(lines) + "\n"


def _run_builds(stem: str) -> int:
    """The 12-build plan run on a simulated server: does every build lay out whole there?"""
    import bench_builds

    label, constants, options = next(k for k in KNOBS if k[0].endswith("100 orders")
                                     and k[0].startswith("5-degree"))
    print(f"nester set as: {label}", file=sys.stderr, flush=True)
    saved = {name: getattr(nesting, name) for name in constants}
    defaults = dict(nesting.nest.__kwdefaults__ or {})
    try:
        for name, value in constants.items():
            setattr(nesting, name, value)
        nesting.nest.__kwdefaults__ = {**defaults, **options}
        return bench_builds.main(["--sets", "arches64", "--servers", "1", "--no-baseline",
                                  "--output", stem])
    finally:
        for name, value in saved.items():
            setattr(nesting, name, value)
        nesting.nest.__kwdefaults__ = defaults


def _simulated_layout(engine: Any, paths: Sequence[str]) -> tuple[bool, list[Any]]:
    """Whether the simulator's auto_layout places every model of a build prepared as the
    runner prepares one (import, orient, support with full rafts), and its models."""
    from preform_pipeline.simulator.protocol import SimError

    scene = engine.call("create_scene", {}, {"machine_type": "FORM-4-0",
                                             "material_code": "FLGPGR05",
                                             "layer_thickness_mm": 0.1})["id"]
    where = {"scene_id": scene}
    for path in paths:
        engine.call("import_model", where, {"file": path, "units": "MILLIMETERS",
                                            "repair_behavior": "REPAIR"})
    engine.call("auto_orient", where, {"models": "ALL"})
    engine.call("auto_support", where, {"models": "ALL", "raft_type": "FULL_RAFT"})
    with engine.scenes.use(scene) as held:
        sim_models = list(held.models.values())
    try:
        engine.call("auto_layout", where, {"models": "ALL"})
    except SimError:
        return False, sim_models
    return True, sim_models


def _plain_rules(footprints: Sequence[Footprint], step: float) -> str:
    """Which of the planner's plain-pass rules lay these footprints out ('x' per rule)."""
    outlines = [nesting.Outline(str(i), f.points, f.grow_mm, f.hull_mm2)
                for i, f in enumerate(footprints)]
    half = footprints[0].spacing_mm / 2.0
    rules = nesting._Rules(outlines, PLATFORM, 0.0, True, nesting.DEFAULT_CELL_MM, step, None,
                           half)
    units = sorted(nesting._units(outlines), key=lambda u: (-u.hull, u.outlines[0].key))
    marks = ""
    for rule in range(len(rules.variants)):
        nester = rules.nester(rule)
        platform = nester.empty()
        marks += "x" if all(nester.place(platform, u) for u in units) else "."
    return marks


def _layouts_needed(footprints: Sequence[Footprint]) -> int | None:
    """How many of the simulator packer's layouts place every footprint (None: none of
    all it has)."""
    spacing = footprints[0].spacing_mm
    shapes = [Shape(str(i), f.points, f.grow_mm) for i, f in enumerate(footprints)]
    for tries in range(1, 61):
        _, unplaced = pack_shapes(shapes, (PLATFORM[0] + spacing, PLATFORM[1] + spacing),
                                  allow_rotation=True, max_tries=tries)
        if not unplaced:
            return tries
    return None


def _trace_overflow(stem: str, empty_builds: bool) -> int:
    """The 12-build arch plan laid out build by build on an in-process simulator; every
    build that overflows traced (see the module docstring)."""
    from preform_pipeline.simulator.engine import SimEngine

    with tempfile.TemporaryDirectory(prefix="pp-trace-") as tmp:
        recipe, models = _read("arches64", Path(tmp) / "arches64")
        if empty_builds:
            label = "batching.empty_builds: true"
            cpu = time.process_time()
            plan = plan_builds(replace(recipe, batching=replace(recipe.batching,
                                                                empty_builds=True)), models)
            spent = time.process_time() - cpu
        else:
            label, constants, options = next(k for k in KNOBS if k[0].endswith("100 orders")
                                             and k[0].startswith("5-degree"))
            plan, spent = _patched_plan(recipe, models, constants, options)
        by_path = {m.path: m for m in models}
        engine = SimEngine()
        builds = []
        for build in plan.builds:
            paths = [str(m.path) for m in build.models]
            fits, sim_models = _simulated_layout(engine, paths)
            entry: dict[str, Any] = {"build": build.index, "models": len(paths), "fits": fits}
            if not fits:
                footprints = _footprints(recipe, [by_path[m.path] for m in build.models])
                sim_by_name = {m.name: m for m in sim_models}
                entry["arches"] = [Path(p).stem for p in paths]
                entry["placements"] = [
                    {"arch": p.path.stem, "angle_deg": p.angle_deg,
                     "x_mm": round(p.x_mm, 2), "y_mm": round(p.y_mm, 2)}
                    for p in build.placements
                ]
                # The same points, or how far apart (the simulator centres its own).
                entry["shadow_max_difference_mm"] = max(
                    float(np.abs(f.points - sim_by_name[Path(p).stem].shadow()).max())
                    if f.points.shape == sim_by_name[Path(p).stem].shadow().shape
                    else math.inf
                    for f, p in zip(footprints, paths, strict=True))
                entry["simulator_orientations"] = [
                    list(sim_by_name[Path(p).stem].orientation) for p in paths]
                entry["planner_grow_mm"] = sorted({f.grow_mm for f in footprints})
                entry["planner_rules_15deg"] = _plain_rules(footprints, 15.0)
                entry["planner_rules_5deg"] = _plain_rules(footprints, 5.0)
                entry["simulator_layouts_needed"] = _layouts_needed(footprints)
                entry["simulator_layout_budget"] = MAX_LAYOUT_TRIES
            print(f"  build {build.index}: {entry}", file=sys.stderr, flush=True)
            builds.append(entry)
    out = {"plan": label, "builds": len(plan.builds),
           "plan_cpu_ms_per_model": round(spent * 1000 / len(models), 1),
           "load": round(os.getloadavg()[0], 2), "per_build": builds}
    results_path(stem, ".json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


# -- where a plan's platform area goes ------------------------------------------------------


def _disc(radius: float, cell: float) -> list[tuple[int, int]]:
    k = math.ceil(radius / cell)
    return [(dx, dy) for dx in range(-k, k + 1) for dy in range(-k, k + 1)
            if (dx * dx + dy * dy) * cell * cell <= radius * radius]


def _shifted_all(cells: _Bool, offsets: Sequence[tuple[int, int]], fill: bool) -> _Bool:
    """Per cell: every cell at the given offsets is set (``fill`` beyond the edge)."""
    k = max(max(abs(dx), abs(dy)) for dx, dy in offsets)
    h, w = cells.shape
    padded = np.pad(cells, k, constant_values=fill)
    out = np.ones_like(cells)
    for dx, dy in offsets:
        out &= padded[k + dy : k + dy + h, k + dx : k + dx + w]
    return out


def _shifted_any(cells: _Bool, offsets: Sequence[tuple[int, int]]) -> _Bool:
    """Per cell: some cell at the given offsets is set."""
    k = max(max(abs(dx), abs(dy)) for dx, dy in offsets)
    h, w = cells.shape
    padded = np.pad(cells, k, constant_values=False)
    out = np.zeros_like(cells)
    for dx, dy in offsets:
        out |= padded[k + dy : k + dy + h, k + dx : k + dx + w]
    return out


def area_split(recipe: Recipe, models: Sequence[ModelInfo], plan: Plan,
               cell: float = 0.5) -> list[dict[str, Any]]:
    """Per planned build: where its platform area goes, on a ``cell`` grid of the area a grown
    outline may use (half the spacing past each edge).

    ``cover``: the grown outlines as placed (the planner's column intervals grown by rim and
    half the spacing, :func:`masks`); ``between``: free cells with a grown outline further
    back in their column (a gap the skyline, filled from the front, has passed; the rest is
    ``open``, behind the skyline); ``room``: free cells that a disc as wide as the set's
    narrowest grown outline could reach (radius: half the shortest side of any model's
    shadow box plus the growth), centred where that whole disc is free. Every outline that
    holds that disc (boxes, discs, rings and gears filled by their column intervals: the
    mixed parts) only goes where it fits, so a free cell outside ``room`` takes no model of
    the set; an arch's outline (a band round an opening) holds no such disc, so for arches
    ``room`` is a rough guide only. Shares are of the usable area."""
    by_path = {m.path: m for m in models}
    footprints = dict(zip((m.path for m in models), _footprints(recipe, models), strict=True))
    half = next(iter(footprints.values())).spacing_mm / 2.0
    size = (PLATFORM[0] + 2 * half, PLATFORM[1] + 2 * half)
    shape = (int(size[1] // cell), int(size[0] // cell))
    inscribed = min(float(np.ptp(f.points, axis=0).min()) / 2.0 + f.grow_mm
                    for f in footprints.values())
    disc = _disc(inscribed, cell)
    out = []
    for build in plan.builds:
        occupied = np.zeros(shape, dtype=bool)
        for placed in build.placements:
            footprint = footprints[placed.path]
            grown = masks(0, footprint, [placed.angle_deg], cell).turns[0]
            k = math.ceil(footprint.grow_mm / cell)
            col = round((placed.x_mm - placed.width_mm / 2 + size[0] / 2) / cell) - k
            row = round((placed.y_mm - placed.depth_mm / 2 + size[1] / 2) / cell) - k
            h, w = grown.shape
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + h, shape[0]), min(col + w, shape[1])
            occupied[r0:r1, c0:c1] |= grown[r0 - row : r1 - row, c0 - col : c1 - col]
        free = ~occupied
        # A reversed cumulative "any" along y: an occupied cell further back.
        between = free & np.flip(np.logical_or.accumulate(np.flip(occupied, 0), axis=0), 0)
        room = free & _shifted_any(_shifted_all(free, disc, False), disc)
        total = float(occupied.size)
        hulls = 0.0
        for placed in build.placements:
            shadow = by_path[placed.path].shadow
            assert shadow is not None, "the bench's models are meshes"
            hulls += shadow.flat_hull_mm2
        out.append({
            "build": build.index, "models": len(build.placements),
            "hull_density": round(hulls / PLATFORM_MM2, 4),
            "cover": round(float(occupied.sum()) / total, 4),
            "between": round(float(between.sum()) / total, 4),
            "open": round(float((free & ~between).sum()) / total, 4),
            "room_between": round(float((room & between).sum()) / total, 4),
            "room_open": round(float((room & ~between).sum()) / total, 4),
        })
    return out


def _run_area(names: Sequence[str], output: str, empty_builds: bool) -> int:
    """Each set planned as the runner plans it; every build's area split (:func:`area_split`)
    written to ``output``.json and .md."""
    load = round(os.getloadavg()[0], 2)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pp-area-") as tmp:
        for name in names:
            recipe, models = _read(name, Path(tmp) / name)
            if empty_builds:
                recipe = replace(recipe, batching=replace(recipe.batching, empty_builds=True))
            cpu = time.process_time()
            plan = plan_builds(recipe, models)
            spent = time.process_time() - cpu
            builds = area_split(recipe, models, plan)
            results.append({"set": name, "builds": len(builds), "empty_builds": empty_builds,
                            "plan_cpu_ms_per_model": round(spent * 1000 / len(models), 1),
                            "per_build": builds})
    facts = {"load_before": load, "load_after": round(os.getloadavg()[0], 2),
             "end": time.strftime("%H:%M", time.gmtime()),
             "command": "nice -n 15 python bench/bench_nest_limit.py " + " ".join(sys.argv[1:])}
    results_path(output, ".json").write_text(
        json.dumps({"facts": facts, "sets": results}, indent=1) + "\n", encoding="utf-8")
    lines = ["# Where the planned builds' platform area goes (offline, full rafts)", "",
             f"`{facts['command']}`, ended {facts['end']} UTC, load {load} -> "
             f"{facts['load_after']}.", "",
             "| set | build | models | hull density | grown outlines | free between | "
             "free open | room between | room open |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for data in results:
        rows: list[dict[str, Any]] = data["per_build"]
        total: dict[str, Any] = {key: sum(r[key] for r in rows) for key in rows[0]
                                 if key != "build"}
        for b in [*rows, {"build": "all (platforms)", **total}]:
            share = "{:.0%}" if isinstance(b["build"], int) else "{:.2f}"
            lines.append(f"| {data['set']} | {b['build']} | {b['models']} | "
                         + " | ".join(share.format(b[key]) for key in (
                             "hull_density", "cover", "between", "open", "room_between",
                             "room_open")) + " |")
    lines += ["", "Shares of the area a grown outline may use (202 x 127 mm), on a 0.5 mm grid. "
              "Grown outlines: the planner's column intervals of each placed shadow grown by "
              "the raft rim and half the spacing (they may not overlap). Free between: free "
              "cells with an outline further back in their column (the skyline, filled from "
              "the front, has passed them); free open: the rest. Room: the free cells a disc "
              "as wide as the set's narrowest grown outline could reach (half the shortest "
              "side of any shadow's box plus the growth), centred where the whole disc is "
              "free; for the mixed parts, whose outlines hold that disc, a free cell outside "
              "it takes no model of the set; an arch's outline holds no such disc, so for "
              "arches it is a rough guide only. "
              "`bench_nest_limit.area_split`.", ""]
    results_path(output, ".md").write_text("\n".join(lines), encoding="utf-8")
    return 0


def _run_knobs(names: Sequence[str], output: str) -> int:
    stored = results_path(output, ".json")
    kept = json.loads(stored.read_text(encoding="utf-8")) if stored.exists() else {"sets": []}
    by_set = {d["set"]: d for d in kept["sets"]}
    load = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="pp-nest-") as tmp:
        for name in names:
            recipe, models = _read(name, Path(tmp) / name)
            entry = by_set.setdefault(name, {"set": name})
            entry["knobs"] = knobs(recipe, models)
            entry["knobs_facts"] = {
                "load_before": load, "load_after": round(os.getloadavg()[0], 2),
                "end": time.strftime("%H:%M", time.gmtime()),
                "command": "nice -n 15 python bench/bench_nest_limit.py " + " ".join(sys.argv[1:]),
            }
    kept["sets"] = list(by_set.values())
    stored.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    return 0


# -- the raster packer (plan/raster_nest.py), offline ---------------------------------------


def _simulator_finds(engine: Any, paths: Sequence[str],
                  placements: Sequence[nesting.NestedPlacement], spacing: float) -> list[str]:
    """What the simulator finds wrong (nothing: the layout holds) when, with each model of
    a platform prepared as the runner prepares one (import, orient, full rafts) and then
    put where ``placements`` say as the runner's ``place_as_planned`` puts it (turned about
    z, moved, re-centred on its box), it judges the platform: pairs closer than ``spacing``
    (its own interference check, on the meshes, with both rafts' rims) and models out of
    bounds, by the keys of ``placements``."""
    from preform_pipeline.geometry import euler_matrix, matrix_to_euler

    scene = engine.call("create_scene", {}, {"machine_type": "FORM-4-0",
                                             "material_code": "FLGPGR05",
                                             "layer_thickness_mm": 0.1})["id"]
    where = {"scene_id": scene}
    ids = []
    for path in paths:
        ids.append(engine.call("import_model", where, {
            "file": path, "units": "MILLIMETERS", "repair_behavior": "REPAIR"})["id"])
    engine.call("auto_orient", where, {"models": "ALL"})
    engine.call("auto_support", where, {"models": "ALL", "raft_type": "FULL_RAFT"})

    def xyz(v: Sequence[float]) -> dict[str, float]:
        return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}

    with engine.scenes.use(scene) as held:
        now = {m: (held.models[m].position, held.models[m].orientation) for m in ids}
    for model_id, spot in zip(ids, placements, strict=True):
        position, orientation = now[model_id]
        turned = matrix_to_euler(euler_matrix(0.0, 0.0, spot.angle_deg)
                                 @ euler_matrix(*orientation))
        engine.call("update_model", {**where, "id": model_id}, {
            "position": xyz((spot.x, spot.y, position[2])), "orientation": xyz(turned)})
    with engine.scenes.use(scene) as held:
        boxes = {m: (held.models[m].position, held.models[m].bounds()) for m in ids}
    for model_id, spot in zip(ids, placements, strict=True):
        position, (low, high) = boxes[model_id]
        dx, dy = spot.x - (low[0] + high[0]) / 2.0, spot.y - (low[1] + high[1]) / 2.0
        engine.call("update_model", {**where, "id": model_id}, {
            "position": xyz((position[0] + dx, position[1] + dy, position[2]))})
    pairs = engine.call("get_scene_interferences", where, {"collision_offset_mm": spacing})
    key = {m: p.key for m, p in zip(ids, placements, strict=True)}
    with engine.scenes.use(scene) as held:
        volume = held.settings.machine(engine.catalogue).build_volume_mm
        outside = [key[m] for m in ids if not held.models[m].in_bounds(volume)]
    engine.call("delete_scene", where, None)
    return [f"{key[a]} meets {key[b]}" for a, b in pairs] + [f"{k} out of bounds"
                                                            for k in outside]


def _run_raster(names: Sequence[str], output: str, cell: float, turn_step: float, seed: int,
                moves: int, clearance: float) -> int:
    """Each set packed by ``plan/raster_nest.py`` against ``plan_builds`` as the runner calls
    it: builds, hull density, CPU per model; every raster platform judged by the simulator
    (:func:`_simulator_finds`). A run is appended to ``output``.json."""
    from preform_pipeline.catalogue import DEFAULT_CATALOGUE
    from preform_pipeline.plan.builds import _machine, _outlines
    from preform_pipeline.plan.raster_nest import raster_nest
    from preform_pipeline.simulator.engine import SimEngine

    facts: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {host.platform()}, Python {host.python_version()}",
        "load_before": round(os.getloadavg()[0], 2),
        "start": time.strftime("%H:%M", time.gmtime()),
        "command": "nice -n 10 python bench/bench_nest_limit.py " + " ".join(sys.argv[1:]),
        "cell_mm": cell, "turn_step_deg": turn_step, "seed": seed, "moves_per_model": moves,
        "clearance_mm": clearance,
    }
    results = []
    engine = SimEngine()
    with tempfile.TemporaryDirectory(prefix="pp-raster-") as tmp:
        for name in names:
            recipe, models = _read(name, Path(tmp) / name)
            hulls = sum(f.hull_mm2 for f in _footprints(recipe, models))
            cpu = time.process_time()
            plan = plan_builds(recipe, models)
            plan_cpu = time.process_time() - cpu
            machine = _machine(recipe, DEFAULT_CATALOGUE)
            outlines, spill = _outlines(recipe, models, range(len(models)), machine, ())
            cpu = time.process_time()
            bins = raster_nest(outlines, PLATFORM, margin=recipe.batching.margin_mm,
                               spill=spill, cell=cell, turn_step_deg=turn_step, seed=seed,
                               moves_per_model=moves, clearance=clearance)
            raster_cpu = time.process_time() - cpu
            spacing = predict(models[0].shadow, recipe, supported=True).spacing_mm  # type: ignore[arg-type]
            accepted = []
            for b in bins:
                paths = [str(models[int(p.key)].path) for p in b.placements]
                accepted.append(_simulator_finds(engine, paths, b.placements, spacing))
            entry = {
                "set": name, "models": len(models),
                "planner_builds": len(plan.builds),
                "planner_density": round(hulls / (PLATFORM_MM2 * len(plan.builds)), 4),
                "planner_cpu_ms_per_model": round(plan_cpu * 1000 / len(models), 1),
                "raster_builds": len(bins),
                "raster_density": round(hulls / (PLATFORM_MM2 * len(bins)), 4),
                "raster_cpu_ms_per_model": round(raster_cpu * 1000 / len(models), 1),
                "raster_models_per_build": [len(b.placements) for b in bins],
                "raster_build_density": [round(b.density, 3) for b in bins],
                "simulator_accepts": sum(not found for found in accepted),
                "simulator_finds": [found for found in accepted if found],
            }
            print(f"  {entry}", file=sys.stderr, flush=True)
            results.append(entry)
    facts["load_after"] = round(os.getloadavg()[0], 2)
    facts["end"] = time.strftime("%H:%M", time.gmtime())
    stored = results_path(output, ".json")
    kept = json.loads(stored.read_text(encoding="utf-8"))["runs"] if stored.exists() else []
    kept.append({"facts": facts, "sets": results})
    stored.write_text(json.dumps({"runs": kept}, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="arches64,mixed200")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--cell", type=float, default=None,
                        help="grid cell, mm (1.0; with --raster: plan/raster_nest.py's own)")
    parser.add_argument("--turn-step", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--output", default="nest_limit")
    parser.add_argument("--append", action="store_true",
                        help="keep the other sets of an existing output (one run per set)")
    parser.add_argument("--run-builds", metavar="STEM",
                        help="run bench_builds.py (arches64, 1 server, no baseline) with the "
                        "nester set as the knob that made 12 arch builds, output to STEM")
    parser.add_argument("--trace-overflow", metavar="STEM",
                        help="lay the 12-build arch plan out on an in-process simulator and "
                        "trace each build that overflows, output to STEM.json")
    parser.add_argument("--empty-builds", action="store_true",
                        help="with --trace-overflow: plan with batching.empty_builds instead; "
                        "with --area: plan with it")
    parser.add_argument("--knobs", action="store_true",
                        help="only the planner under each of KNOBS, added to the output's "
                        "JSON beside its set (the Markdown is left as it is)")
    parser.add_argument("--area", metavar="STEM",
                        help="plan each set as the runner does and write where every build's "
                        "platform area goes (with --empty-builds: planned so) to STEM")
    parser.add_argument("--raster", metavar="STEM",
                        help="pack each set with plan/raster_nest.py (--cell, --turn-step, "
                        "--seed, --moves) against the planner, each platform judged by the "
                        "simulator; a run appended to STEM.json")
    parser.add_argument("--moves", type=int, default=20,
                        help="with --raster: the local search's placements per model")
    parser.add_argument("--clearance", type=float, default=None,
                        help="with --raster: mm added to every outline's growth (the "
                        "module's own by default)")
    args = parser.parse_args(argv)
    if args.raster:
        from preform_pipeline.plan.raster_nest import RASTER_CELL_MM, RASTER_CLEARANCE_MM

        clearance = RASTER_CLEARANCE_MM if args.clearance is None else args.clearance
        return _run_raster(args.sets.split(","), args.raster, args.cell or RASTER_CELL_MM,
                           args.turn_step, args.seed, args.moves, clearance)
    if args.area:
        return _run_area(args.sets.split(","), args.area, args.empty_builds)
    if args.knobs:
        return _run_knobs(args.sets.split(","), args.output)
    if args.run_builds:
        return _run_builds(args.run_builds)
    if args.trace_overflow:
        return _trace_overflow(args.trace_overflow, args.empty_builds)
    facts: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {host.platform()}, Python {host.python_version()}",
        "load_before": round(os.getloadavg()[0], 2),
        "start": time.strftime("%H:%M", time.gmtime()),
        "command": "nice -n 15 python bench/bench_nest_limit.py " + " ".join(sys.argv[1:]),
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="pp-nest-") as tmp:
        for name in args.sets.split(","):
            results.append(run_set(name, Path(tmp) / name, args.budget_s, args.cell or 1.0,
                                   args.turn_step, args.seed))
    facts["load_after"] = round(os.getloadavg()[0], 2)
    facts["end"] = time.strftime("%H:%M", time.gmtime())
    for data in results:
        data["facts"] = facts
    stored = results_path(args.output, ".json")
    if args.append and stored.exists():
        kept = json.loads(stored.read_text(encoding="utf-8"))["sets"]
        names = {d["set"] for d in results}
        results = [d for d in kept if d["set"] not in names] + results
    stored.write_text(json.dumps({"sets": results}, indent=1) + "\n", encoding="utf-8")
    results_path(args.output, ".md").write_text(_markdown(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
