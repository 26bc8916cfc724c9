"""Emptying platforms after the search: the emptiest platform's models move into the others
when a plain pass still lays each receiving platform out; never more platforms, always the
same plan, every footprint inside its platform and apart from the others."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.geometry.projection import hull_area
from preform_pipeline.plan import nesting
from preform_pipeline.plan.builds import ModelInfo, plan_builds
from preform_pipeline.plan.footprint import Shadow
from preform_pipeline.plan.nesting import (
    EMPTYING_SAFETY_S_PER_CHECK,
    NestedBin,
    nest,
    one_platform_layout,
)
from tests.unit.plan.planning_factories import make_model, make_recipe
from tests.unit.plan.test_plan_nesting import check
from tests.unit.plan.test_plan_nesting_search import outlines_of, parts, shape

PLATFORM = (100.0, 80.0)

#: Twenty parts the search puts on four 100 x 80 mm platforms; one of them empties into the
#: others only when a part that fits nowhere changes places with a smaller part of a
#: receiving platform, which then moves on in its turn.
BY_A_SWAP = [
    ("ell", 32.2, 25.8), ("rect", 44.2, 9.6), ("ell", 33.2, 26.6), ("ell", 12.3, 9.8),
    ("rect", 12.9, 40.0), ("ell", 44.1, 28.9), ("rect", 25.2, 16.0), ("ell", 37.2, 26.1),
    ("ell", 33.1, 26.5), ("rect", 32.2, 37.9), ("rect", 39.4, 36.1), ("ell", 28.7, 12.4),
    ("ell", 15.9, 8.9), ("ell", 17.9, 14.3), ("ell", 33.3, 24.4), ("ell", 29.2, 10.2),
    ("rect", 27.7, 23.5), ("ell", 20.4, 16.2), ("rect", 34.6, 34.5), ("ell", 25.9, 15.2),
]

#: Twelve parts on three platforms whose third one's parts each move into a gap of the
#: others as they are: no swap needed.
BY_MOVES = [
    ("ell", 44.6, 32.3), ("ell", 25.8, 13.0), ("ell", 44.3, 27.9), ("ell", 26.3, 15.1),
    ("rect", 17.1, 24.2), ("rect", 39.7, 23.5), ("ell", 22.1, 9.7), ("rect", 14.3, 12.8),
    ("ell", 42.2, 22.8), ("rect", 28.9, 25.9), ("ell", 18.9, 15.1), ("ell", 43.5, 28.1),
]

#: Nine parts on two platforms: some of the second one's parts find room on the first, not
#: all, so the second platform stays and nothing of the try may be kept.
HALF_WAY = [
    ("ell", 29.9, 23.9), ("ell", 24.2, 19.4), ("ell", 12.8, 10.2), ("ell", 42.6, 34.1),
    ("rect", 24.8, 13.4), ("rect", 16.8, 27.9), ("rect", 19.6, 19.3), ("rect", 32.9, 39.0),
    ("ell", 20.5, 10.5),
]


def layout(bins: list[NestedBin]) -> list[list[tuple[str, float, float, float]]]:
    return [[(p.key, p.x, p.y, p.angle_deg) for p in b.placements] for b in bins]


class TestEmptying:
    """The emptiest platform goes when its models find room elsewhere."""

    @pytest.mark.parametrize(("found", "before"), [(BY_MOVES, 3), (BY_A_SWAP, 4)],
                             ids=["moves", "a-swap"])
    def test_a_platform_goes_and_every_model_stays_inside_and_apart(
        self, found: list[tuple[str, float, float]], before: int
    ) -> None:
        outlines = outlines_of(found)
        assert len(nest(outlines, PLATFORM)) == before
        bins = nest(outlines, PLATFORM, empty_platforms=True)
        assert len(bins) == before - 1
        check(outlines, bins, PLATFORM, 0.0, 0.0, [])

    @pytest.mark.parametrize("found", [BY_MOVES, BY_A_SWAP], ids=["moves", "a-swap"])
    def test_every_platform_is_the_plain_pass_of_its_models(
        self, found: list[tuple[str, float, float]]
    ) -> None:
        # What the server's one pass would do with the build: the planner's own plain pass
        # (largest first, from empty) lays each platform out exactly so.
        outlines = outlines_of(found)
        by_key = {o.key: o for o in outlines}
        for laid in nest(outlines, PLATFORM, empty_platforms=True):
            again = one_platform_layout([by_key[p.key] for p in laid.placements], PLATFORM)
            assert again is not None
            assert layout([again]) == layout([laid])

    def test_off_by_default(self) -> None:
        assert len(nest(outlines_of(BY_MOVES), PLATFORM)) == 3

    def test_the_same_input_gives_the_same_platforms(self) -> None:
        outlines = outlines_of(BY_A_SWAP)
        first = layout(nest(outlines, PLATFORM, empty_platforms=True))
        for _ in range(3):
            assert layout(nest(outlines, PLATFORM, empty_platforms=True)) == first

    def test_without_work_left_nothing_moves(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The budget is counted in plain passes, never the clock: none allowed, none tried.
        monkeypatch.setattr(nesting, "EMPTYING_CHECKS_PER_MODEL", 0)
        assert len(nest(outlines_of(BY_MOVES), PLATFORM, empty_platforms=True)) == 3

    def test_a_machine_where_moves_cost_most_of_their_allowance_tries_them_all(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Two moves per model (40): more CPU than the least safety limit (5 s) hides, so
        # the limit must grow with the moves allowed, or a slower machine tries fewer.
        monkeypatch.setattr(nesting, "EMPTYING_CHECKS_PER_MODEL", 2)
        tried: list[float] = []
        extra = [0.0]
        cost = [0.0]
        real = nesting._Prefixes.with_newcomer

        def move(prefixes: nesting._Prefixes, *args: object) -> object:
            tried.append(cost[0])
            extra[0] += cost[0]
            return real(prefixes, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(nesting._Prefixes, "with_newcomer", move)
        # The planning thread's CPU clock as the nester reads it, each move costing ``cost``.
        monkeypatch.setattr(nesting, "time", SimpleNamespace(
            thread_time=lambda: time.thread_time() + extra[0]))
        outlines = outlines_of(BY_A_SWAP)
        fast = layout(nest(outlines, PLATFORM, empty_platforms=True))
        moves = len(tried)
        assert moves > 5.0 / (0.8 * EMPTYING_SAFETY_S_PER_CHECK)
        tried.clear()
        cost[0] = 0.8 * EMPTYING_SAFETY_S_PER_CHECK
        assert layout(nest(outlines, PLATFORM, empty_platforms=True)) == fast
        assert len(tried) == moves

    def test_a_platform_that_cannot_empty_is_left_as_it_was(self) -> None:
        outlines = outlines_of(HALF_WAY)
        bins = nest(outlines, PLATFORM, empty_platforms=True)
        assert layout(bins) == layout(nest(outlines, PLATFORM))
        check(outlines, bins, PLATFORM, 0.0, 0.0, [])


class TestNeverWorse:
    """Whatever the parts, emptying never adds a platform and every placement is valid."""

    @settings(max_examples=15, deadline=None)
    @given(st.lists(parts, min_size=2, max_size=12))
    def test_never_more_platforms_and_every_model_inside_and_apart(
        self, drawn: list[tuple[str, float, float]]
    ) -> None:
        found = [(kind, size, size * share) for kind, size, share in drawn]
        outlines = outlines_of(found)
        bins = nest(outlines, PLATFORM, empty_platforms=True)
        assert len(bins) <= len(nest(outlines, PLATFORM))
        check(outlines, bins, PLATFORM, 0.0, 0.0, [])


#: Ten flat parts (mm) that a Form 4 recipe with full rafts plans in three builds, and in two
#: when it empties builds.
TEN_PARTS = [
    ("ell", 78.4, 62.7), ("ell", 40.5, 32.4), ("ell", 36.6, 21.6), ("ell", 78.9, 45.2),
    ("ell", 68.4, 54.7), ("ell", 38.3, 30.6), ("rect", 78.8, 72.5), ("rect", 83.0, 52.0),
    ("rect", 49.9, 27.4), ("rect", 48.6, 24.9),
]


def flat_models(found: list[tuple[str, float, float]]) -> list[ModelInfo]:
    """Models 10 mm tall whose shadow is the given rectangle or ell."""
    models = []
    for number, (kind, a, b) in enumerate(found):
        points = shape(kind, a, b)
        area = hull_area(points)
        size = (float(np.ptp(points[:, 0])), float(np.ptp(points[:, 1])), 10.0)
        models.append(replace(make_model(f"part-{number}", size),
                              shadow=Shadow(points, points, area, area)))
    return models


class TestTheRecipeAsks:
    """``batching.empty_builds`` reaches the planner; without it the plan is today's."""

    def test_a_recipe_with_empty_builds_gets_fewer_builds_and_every_model_once(self) -> None:
        models = flat_models(TEN_PARTS)
        plain = plan_builds(make_recipe(keep_cases_together=False, margin_mm=0.0), models)
        emptied = plan_builds(
            make_recipe(keep_cases_together=False, margin_mm=0.0, empty_builds=True), models
        )
        assert (len(plain.builds), len(emptied.builds)) == (3, 2)
        planned = sorted(m.path for b in emptied.builds for m in b.models)
        assert planned == sorted(m.path for m in models)
