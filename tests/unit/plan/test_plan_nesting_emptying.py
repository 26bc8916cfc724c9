"""Emptying platforms after the search: the emptiest platform's models move into the others
when a plain pass still lays each receiving platform out; never more platforms, always the
same plan, every footprint inside its platform and apart from the others."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.plan import nesting
from preform_pipeline.plan.nesting import NestedBin, nest
from tests.unit.plan.test_plan_nesting import check
from tests.unit.plan.test_plan_nesting_search import outlines_of, parts

PLATFORM = (100.0, 80.0)

#: Twelve parts the search puts on three 100 x 80 mm platforms; the third one's parts move
#: into the first two, the largest of them only by changing places with a smaller part of
#: a receiving platform, which then moves on in its turn.
BY_A_SWAP = [
    ("rect", 30.4, 33.9), ("ell", 21.7, 17.4), ("rect", 28.0, 19.5), ("ell", 27.2, 21.8),
    ("ell", 32.8, 26.2), ("rect", 32.9, 18.8), ("ell", 38.6, 12.1), ("ell", 21.8, 17.3),
    ("ell", 26.5, 18.2), ("ell", 37.1, 28.1), ("rect", 37.8, 27.7), ("ell", 25.5, 12.2),
]

#: Twelve parts on three platforms whose third one's parts each move into a gap of the
#: others as they are: no swap needed.
BY_MOVES = [
    ("ell", 44.6, 32.3), ("ell", 25.8, 13.0), ("ell", 44.3, 27.9), ("ell", 26.3, 15.1),
    ("rect", 17.1, 24.2), ("rect", 39.7, 23.5), ("ell", 22.1, 9.7), ("rect", 14.3, 12.8),
    ("ell", 42.2, 22.8), ("rect", 28.9, 25.9), ("ell", 18.9, 15.1), ("ell", 43.5, 28.1),
]


def layout(bins: list[NestedBin]) -> list[list[tuple[str, float, float, float]]]:
    return [[(p.key, p.x, p.y, p.angle_deg) for p in b.placements] for b in bins]


class TestEmptying:
    """The emptiest platform goes when its models find room elsewhere."""

    @pytest.mark.parametrize("found", [BY_MOVES, BY_A_SWAP], ids=["moves", "a-swap"])
    def test_the_emptiest_platform_goes_and_every_model_stays_inside_and_apart(
        self, found: list[tuple[str, float, float]]
    ) -> None:
        outlines = outlines_of(found)
        assert len(nest(outlines, PLATFORM)) == 3
        bins = nest(outlines, PLATFORM, empty_platforms=True)
        assert len(bins) == 2
        check(outlines, bins, PLATFORM, 0.0, 0.0, [])

    def test_off_by_default(self) -> None:
        assert len(nest(outlines_of(BY_MOVES), PLATFORM)) == 3

    def test_the_same_input_gives_the_same_platforms(self) -> None:
        outlines = outlines_of(BY_A_SWAP)
        first = nest(outlines, PLATFORM, empty_platforms=True)
        again = nest(outlines, PLATFORM, empty_platforms=True)
        assert layout(first) == layout(again)

    def test_without_work_left_nothing_moves(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The budget is counted in plain passes, never the clock: none allowed, none tried.
        monkeypatch.setattr(nesting, "EMPTYING_CHECKS_PER_MODEL", 0)
        assert len(nest(outlines_of(BY_MOVES), PLATFORM, empty_platforms=True)) == 3

    def test_a_platform_that_cannot_empty_is_left_as_it_was(self) -> None:
        outlines = outlines_of(BY_MOVES[:6])
        assert layout(nest(outlines, PLATFORM, empty_platforms=True)) == layout(
            nest(outlines, PLATFORM)
        )


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
