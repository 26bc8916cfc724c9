"""Outline nesting: every model on exactly one platform, inside it, apart, concave parts nest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.errors import PlanningError
from preform_pipeline.plan.nesting import (
    NestedBin,
    Outline,
    _Nester,
    _units,
    fits_one_platform,
    nest,
    one_platform_layout,
)


def rectangle(width: float, depth: float, step: float = 0.5) -> np.ndarray:
    """Boundary points of a ``width`` x ``depth`` box centred on the origin."""
    xs = np.linspace(-width / 2, width / 2, int(width / step) + 2)
    ys = np.linspace(-depth / 2, depth / 2, int(depth / step) + 2)
    return np.concatenate([
        np.column_stack([xs, np.full_like(xs, -depth / 2)]),
        np.column_stack([xs, np.full_like(xs, depth / 2)]),
        np.column_stack([np.full_like(ys, -width / 2), ys]),
        np.column_stack([np.full_like(ys, width / 2), ys]),
    ])


def ell(size: float, arm: float) -> np.ndarray:
    """Boundary points of an L: a ``size`` square less its ``size - arm`` upper-right part."""
    outline = np.array([[0, 0], [size, 0], [size, arm], [arm, arm], [arm, size], [0, size]])
    points = []
    for a, b in zip(outline, np.roll(outline, -1, axis=0), strict=True):
        t = np.linspace(0.0, 1.0, int(np.hypot(*(b - a)) / 0.5) + 2)[:, None]
        points.append(a + t * (b - a))
    return np.concatenate(points) - size / 2


def placed(outline: Outline, bin_: NestedBin) -> np.ndarray:
    """The outline's points where ``bin_`` put them (turned, box centred on the placement)."""
    p = next(p for p in bin_.placements if p.key == outline.key)
    a = np.radians(p.angle_deg)
    points = outline.points @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    middle = (points.min(axis=0) + points.max(axis=0)) / 2
    return points - middle + np.array([p.x, p.y])


def check(outlines: list[Outline], bins: list[NestedBin], size: tuple[float, float],
          margin: float, spill: float, unfit: list[str]) -> None:
    keys = [p.key for b in bins for p in b.placements] + unfit
    assert sorted(keys) == sorted(o.key for o in outlines), "every model exactly once"
    by_key = {o.key: o for o in outlines}
    for b in bins:
        shapes = [(by_key[p.key], placed(by_key[p.key], b)) for p in b.placements]
        for outline, points in shapes:
            reach = outline.grow - spill
            assert points[:, 0].min() - reach >= -size[0] / 2 + margin - 1e-6
            assert points[:, 0].max() + reach <= size[0] / 2 - margin + 1e-6
            assert points[:, 1].min() - reach >= -size[1] / 2 + margin - 1e-6
            assert points[:, 1].max() + reach <= size[1] / 2 - margin + 1e-6
        for (oa, pa), (ob, pb) in itertools.combinations(shapes, 2):
            gap = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(axis=2)).min()
            assert gap >= oa.grow + ob.grow - 1e-6, f"{oa.key} and {ob.key} overlap"


class TestNestingProperties:
    """Whatever the models, the result is a valid set of platforms."""

    @settings(max_examples=25, deadline=None)
    @given(
        sizes=st.lists(
            st.tuples(st.floats(4, 90), st.floats(4, 70), st.booleans()), min_size=1, max_size=14
        ),
        grow=st.floats(0.5, 4.0),
        margin=st.floats(0.0, 5.0),
        max_items=st.none() | st.integers(1, 6),
    )
    def test_every_model_lands_once_inside_a_platform_apart_from_the_others(
        self, sizes: list[tuple[float, float, bool]], grow: float, margin: float,
        max_items: int | None,
    ) -> None:
        outlines = [
            Outline(f"m{i}", ell(max(w, 12.0), 5.0) if shaped else rectangle(w, d), grow, w * d)
            for i, (w, d, shaped) in enumerate(sizes)
        ]
        unfit: list[str] = []
        size = (120.0, 80.0)
        bins = nest(outlines, size, margin=margin, spill=min(grow, 1.0), max_items=max_items,
                    unfit=unfit, search_s_per_model=0.0)
        assert all(max_items is None or len(b.placements) <= max_items for b in bins)
        check(outlines, bins, size, margin, min(grow, 1.0), unfit)

    @pytest.mark.parametrize(
        ("step", "swap", "low"),
        [(15.0, False, False), (15.0, False, True), (90.0, False, False), (15.0, True, False),
         (15.0, True, True), (90.0, True, True)],
    )
    def test_every_rule_of_the_search_gives_valid_platforms(
        self, step: float, swap: bool, low: bool
    ) -> None:
        rng = np.random.default_rng(7)
        outlines = [
            Outline(f"m{i}", ell(float(rng.uniform(15, 50)), 6.0) if i % 3 == 0
                    else rectangle(float(rng.uniform(5, 60)), float(rng.uniform(5, 40))),
                    1.5, 1.0)
            for i in range(16)
        ]
        size = (120.0, 80.0)
        nester = _Nester(outlines, size, 2.0, True, 2.0, step, None, 1.0, swap=swap, low=low)
        # Every unit fits an empty platform under every rule here: no rule is asked for help.
        bins = [nester.result(p) for p in nester.run(_units(outlines), lambda _: None)]
        check(outlines, bins, size, 2.0, 1.0, [])

    def test_the_same_input_gives_the_same_platforms(self) -> None:
        outlines = [Outline(f"m{i}", rectangle(10 + i, 30 - i), 1.5, 1.0) for i in range(20)]
        first = nest(outlines, (100.0, 80.0), search_s_per_model=0.0)
        assert nest(outlines, (100.0, 80.0), search_s_per_model=0.0) == first


class TestConcaveParts:
    """Concave outlines nest where their boxes could not."""

    def test_two_ells_share_a_platform_their_boxes_could_not(self) -> None:
        outlines = [Outline(f"l{i}", ell(60.0, 10.0), 0.5, 1100.0) for i in range(2)]
        bins = nest(outlines, (75.0, 75.0), spill=0.5)
        assert [len(b.placements) for b in bins] == [2]
        check(outlines, bins, (75.0, 75.0), 0.0, 0.5, [])
        # Two 61 x 61 mm grown boxes need 122 mm in one direction: no 75 mm platform has it.


class TestGroupsAndErrors:
    """Groups stay together; what cannot fit is named."""

    def test_a_group_shares_one_platform(self) -> None:
        outlines = [Outline(f"m{i}", rectangle(40, 30), 1.0, 1.0, group=f"g{i % 3}")
                    for i in range(9)]
        bins = nest(outlines, (100.0, 80.0))
        for b in bins:
            groups = {next(o.group for o in outlines if o.key == p.key) for p in b.placements}
            for group in groups:
                members = {o.key for o in outlines if o.group == group}
                assert members <= {p.key for p in b.placements}

    def test_a_model_larger_than_the_platform_is_named_or_set_aside(self) -> None:
        outlines = [Outline("huge", rectangle(150, 20), 1.0, 1.0),
                    Outline("ok", rectangle(20, 20), 1.0, 1.0)]
        with pytest.raises(PlanningError, match="huge"):
            nest(outlines, (100.0, 80.0))
        unfit: list[str] = []
        bins = nest(outlines, (100.0, 80.0), unfit=unfit)
        assert unfit == ["huge"] and [p.key for b in bins for p in b.placements] == ["ok"]


class TestOnePlatformLayout:
    """A build laid out again the way a server does: one plain pass, largest hull first."""

    @staticmethod
    def _boxes(sizes: list[tuple[float, float]]) -> list[Outline]:
        return [Outline(key=str(k), points=rectangle(w, d), grow=0.0, hull_mm2=w * d)
                for k, (w, d) in enumerate(sizes)]

    def test_what_only_another_order_lays_out_is_refused(self) -> None:
        # Largest hull first (109 x 55, 67 x 75, 138 x 37, 36 x 11) leaves no row for the
        # long one; longest side first places all four: the search's test takes that order.
        outlines = self._boxes([(67, 75), (138, 37), (109, 55), (36, 11)])
        assert fits_one_platform(outlines, (200.0, 125.0), allow_rotation=False)
        assert one_platform_layout(outlines, (200.0, 125.0), allow_rotation=False) is None

    def test_a_plain_fit_comes_with_every_placement_inside_and_apart(self) -> None:
        outlines = self._boxes([(90, 60), (90, 60), (60, 40), (30, 30)])
        laid = one_platform_layout(outlines, (200.0, 125.0), allow_rotation=False)
        assert laid is not None
        assert sorted(p.key for p in laid.placements) == ["0", "1", "2", "3"]
        check(outlines, [laid], (200.0, 125.0), margin=0.0, spill=0.0, unfit=[])

    def test_one_that_fits_no_platform_or_none_at_all_has_no_layout(self) -> None:
        outlines = self._boxes([(300, 10), (20, 20)])
        assert one_platform_layout(outlines, (200.0, 125.0), allow_rotation=False) is None
        assert one_platform_layout([], (200.0, 125.0)) is None
