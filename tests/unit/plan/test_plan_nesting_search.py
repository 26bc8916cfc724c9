"""The nester's placement choice and its search: fast sums that choose as the plain ones do,
an empty-platform test that agrees with placing, and a search that a busy machine does not
cut short."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.plan import nesting
from preform_pipeline.plan.nesting import (
    Outline,
    _Nester,
    _Platform,
    _Unit,
    nest,
    one_platform_layout,
)
from tests.unit.plan.test_plan_nesting import ell, rectangle


def plain_choice(platform: _Platform, nester: _Nester, key: str) -> tuple[int, int, float] | None:
    """The placement rule written out plainly: every turn at every offset over every column,
    the waste summed column by column; the least score wins, ties to the first turn and
    offset."""
    turns = nester.turns[key]
    sky = platform.skyline
    width = turns.lo.shape[1]
    padded = np.concatenate([sky, np.full(width, 1e12)])
    best: tuple[float, int, int, float] | None = None
    for t, o in itertools.product(range(turns.lo.shape[0]), range(len(sky))):
        gaps = padded[o : o + width] - turns.lo[t]
        lift = float(gaps.max())
        peak = lift + float(turns.top[t])
        if peak > platform.depth + 1e-9:
            continue
        under = float(np.where(np.isfinite(turns.lo[t]), lift - gaps, 0.0).sum())
        if nester.low:
            span = float(turns.width[t]) * nester.cell
            score = peak + nesting._LOW_WASTE_WEIGHT * under * nester.cell / span
        else:
            score = under * nester.cell + peak * 1e-3
        if best is None or score < best[0]:
            best = (score, t, o, lift)
    return None if best is None else (best[1], best[2], best[3])


def shape(kind: str, a: float, b: float) -> np.ndarray:
    return rectangle(a, b) if kind == "rect" else ell(a, b)


#: Nine parts on a 100 x 80 mm platform: the greedy pass needs two platforms, the search
#: finds one.
NINE_PARTS = [
    ("rect", 18.0, 15.3), ("rect", 35.2, 14.0), ("ell", 25.1, 12.2), ("rect", 14.1, 10.0),
    ("ell", 35.7, 12.1), ("rect", 25.9, 42.8), ("rect", 29.5, 10.3), ("rect", 35.8, 28.0),
    ("rect", 35.3, 17.1),
]


def outlines_of(parts: list[tuple[str, float, float]]) -> list[Outline]:
    """Outlines of rectangles and ells grown by 1.5 mm, keyed ``part-<n>``."""
    outlines = []
    for number, (kind, a, b) in enumerate(parts):
        points = shape(kind, a, b)
        hull = float(np.ptp(points[:, 0]) * np.ptp(points[:, 1]))
        outlines.append(Outline(f"part-{number}", points, 1.5, hull))
    return outlines


def nine_parts() -> list[Outline]:
    return outlines_of(NINE_PARTS)


parts = st.tuples(
    st.sampled_from(["rect", "ell"]),
    st.floats(min_value=6.0, max_value=60.0),
    st.floats(min_value=0.2, max_value=0.9),
)


class TestPlacementChoice:
    """Each model goes where the plain column-by-column sums put it."""

    @settings(max_examples=80, deadline=None)
    @given(
        placed=st.lists(parts, min_size=0, max_size=12),
        model=parts,
        grow=st.sampled_from([0.0, 1.0, 3.0]),
        rule=st.integers(min_value=0, max_value=6),
    )
    def test_the_choice_is_the_one_the_plain_sums_make(
        self, placed: list[tuple[str, float, float]], model: tuple[str, float, float],
        grow: float, rule: int,
    ) -> None:
        def outline(number: int, part: tuple[str, float, float]) -> Outline:
            kind, size, ratio = part
            return Outline(f"m{number}", shape(kind, size, size * ratio), grow, 1.0)

        outlines = [outline(n, p) for n, p in enumerate([*placed, model])]
        rules = nesting._Rules(outlines, (120.0, 90.0), 2.0, True, 1.0, 15.0, None, 1.0)
        nester = rules.nester(rule)
        platform = nester.empty()
        for earlier in outlines[:-1]:
            nester.place(platform, _Unit((earlier,)))
        key = outlines[-1].key
        assert platform.best(nester.turns[key], nester.cell, nester.low) == plain_choice(
            platform, nester, key
        )


class TestEmptyPlatform:
    """A model fits an empty platform exactly when placing it there succeeds."""

    @settings(max_examples=60, deadline=None)
    @given(
        model=parts,
        grow=st.sampled_from([0.0, 0.5, 3.0, 4.2]),
        platform=st.tuples(st.floats(min_value=5.0, max_value=80.0),
                           st.floats(min_value=5.0, max_value=80.0)),
        margin=st.floats(min_value=0.0, max_value=3.0),
        rotation=st.booleans(),
        rule=st.integers(min_value=0, max_value=6),
    )
    def test_holding_a_model_agrees_with_placing_it(
        self, model: tuple[str, float, float], grow: float, platform: tuple[float, float],
        margin: float, rotation: bool, rule: int,
    ) -> None:
        kind, size, ratio = model
        outline = Outline("m", shape(kind, size, size * ratio), grow, 1.0)
        rules = nesting._Rules([outline], platform, margin, rotation, 1.0, 15.0, None, 0.5)
        nester = rules.nester(rule)
        assert nester.holds(outline) == nester.place(nester.empty(), _Unit((outline,)))

    @pytest.mark.parametrize(("side", "fits"), [(37.9, True), (38.0, False)])
    def test_a_model_that_fills_every_column_still_fits(self, side: float, fits: bool) -> None:
        # 40 columns of 1 mm each way: a 37.9 mm square grown by 1 mm per side spans all 40,
        # a 38 mm one spans 41.
        outline = Outline("square", rectangle(side, side), 1.0, side * side)
        unfit: list[str] = []
        bins = nest([outline], (40.0, 40.0), allow_rotation=False, unfit=unfit)
        assert (len(bins), unfit) == ((1, []) if fits else (0, ["square"]))

    def test_a_model_wider_than_every_turn_allows_is_not_held(self) -> None:
        outline = Outline("long", rectangle(90.0, 4.0), 1.0, 360.0)
        rules = nesting._Rules([outline], (60.0, 60.0), 0.0, True, 1.0, 15.0, None, 0.0)
        unfit: list[str] = []
        assert not rules.fits(outline)
        assert nest([outline], (60.0, 60.0), unfit=unfit) == []
        assert unfit == ["long"]


class TestSearchBudget:
    """The search improves on the greedy pass, and a busy machine does not cut it short."""

    def test_the_search_finds_fewer_platforms_than_the_greedy_pass(self) -> None:
        greedy = nest(nine_parts(), (100.0, 80.0), search_s_per_model=0.0)
        searched = nest(nine_parts(), (100.0, 80.0))
        assert (len(greedy), len(searched)) == (2, 1)

    def test_a_wall_clock_that_races_ahead_does_not_shorten_the_search(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # On a loaded machine the wall clock runs on while this thread waits for a core.
        ticks = itertools.count()
        monkeypatch.setattr(nesting.time, "perf_counter", lambda: 1000.0 * next(ticks))
        monkeypatch.setattr(nesting.time, "monotonic", lambda: 1000.0 * next(ticks))
        assert len(nest(nine_parts(), (100.0, 80.0))) == 1

    def test_the_budget_is_the_threads_own_processor_time(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ticks = itertools.count()
        monkeypatch.setattr(nesting.time, "thread_time", lambda: 1000.0 * next(ticks))
        # Each look at the budget finds it spent: only the first order is tried.
        assert len(nest(nine_parts(), (100.0, 80.0))) == 2


#: Thirteen parts of mixed sizes on a 100 x 80 mm platform, in the order a folder gave them:
#: every order the search tries from largest first needs three platforms; filled in the
#: order given, each platform laid out again as it takes a part, two hold them all.
MIXED_SIZES = [
    ("ell", 43.6, 6.6), ("ell", 18.3, 38.5), ("rect", 25.3, 29.8), ("rect", 17.7, 29.9),
    ("rect", 30.8, 8.5), ("rect", 18.0, 38.4), ("ell", 10.7, 34.5), ("ell", 37.4, 21.3),
    ("rect", 26.4, 31.1), ("rect", 10.9, 14.9), ("ell", 10.4, 29.0), ("ell", 43.3, 7.9),
    ("rect", 35.7, 36.6),
]


class TestFilledInTheOrderGiven:
    """Parts of mixed sizes fill platforms in the order given when that needs fewer."""

    def test_mixed_sizes_in_their_own_order_take_fewer_platforms(self) -> None:
        platforms = nest(outlines_of(MIXED_SIZES), (100.0, 80.0))
        assert len(platforms) == 2
        placed = sorted(p.key for platform in platforms for p in platform.placements)
        assert placed == sorted(f"part-{n}" for n in range(len(MIXED_SIZES)))

    def test_each_platform_so_filled_is_one_a_plain_pass_lays_out(self) -> None:
        outlines = outlines_of(MIXED_SIZES)
        by_key = {o.key: o for o in outlines}
        for platform in nest(outlines, (100.0, 80.0)):
            held = [by_key[p.key] for p in platform.placements]
            assert one_platform_layout(held, (100.0, 80.0)) is not None


#: Eleven parts on a 100 x 80 mm platform: the search packs them on two platforms, one of
#: them by filling gaps in an order that no rule's plain pass repeats.
ELEVEN_PARTS = [
    ("ell", 20.0, 11.0), ("ell", 30.0, 16.8), ("ell", 15.4, 8.7), ("rect", 31.5, 9.5),
    ("rect", 12.2, 27.9), ("rect", 26.1, 15.0), ("rect", 36.8, 27.1), ("rect", 31.2, 39.8),
    ("rect", 11.5, 15.7), ("rect", 21.0, 31.7), ("ell", 14.5, 5.0),
]


class TestPlainPlatforms:
    """Each build is one the server's own plain pass could lay out again."""

    def test_every_platform_is_filled_by_some_rules_plain_pass(self) -> None:
        outlines = outlines_of(ELEVEN_PARTS)
        bins = nest(outlines, (100.0, 80.0), search_s_per_model=1.0)
        by_key = {o.key: o for o in outlines}
        rules = nesting._Rules(outlines, (100.0, 80.0), 0.0, True, 1.0, 15.0, None, 0.0)
        assert len(bins) == 2
        assert sorted(p.key for b in bins for p in b.placements) == sorted(by_key)
        for bin_ in bins:
            units = nesting._units([by_key[p.key] for p in bin_.placements])
            _, left = nesting._plain_pass(rules, units)
            keys = [p.key for p in bin_.placements]
            assert left == [], f"no plain pass fills the platform of {keys}"
