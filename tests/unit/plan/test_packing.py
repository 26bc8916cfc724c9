"""Footprint packing onto one platform and across several."""

from __future__ import annotations

import pytest
from packing_checks import assert_valid

from preform_pipeline.errors import PlanningError
from preform_pipeline.plan.packing import (
    DEFAULT_MARGIN_MM,
    DEFAULT_SPACING_MM,
    Rect,
    pack,
    pack_into_bins,
)

FORM_4 = (200.0, 125.0)


class TestPack:
    """A single platform: placements are valid, centred coordinates, deterministic."""

    def test_one_item_goes_to_the_front_left_corner_inside_the_margin(self) -> None:
        result = pack([Rect("a", 20, 10)], FORM_4, spacing=2, margin=5)
        (p,) = result.placements
        # Best-short-side-fit may turn it; either way its corner sits at the margin.
        assert p.bounds[:2] == pytest.approx((-100 + 5, -62.5 + 5))
        assert {p.width, p.depth} == {20, 10}
        assert result.unplaced == ()
        assert result.fill_ratio == pytest.approx(200 / (200 * 125))

    def test_items_exactly_filling_the_platform_all_fit(self) -> None:
        # 4 x 2 items of 48 x 58.5 with spacing 2 and margin 0 fill 200 x 125 exactly... less
        # one spacing: 4 * 48 + 3 * 2 = 198, 2 * 58.5 + 2 = 119.
        items = [Rect(f"k{i}", 48, 58.5) for i in range(8)]
        result = pack(items, (198, 119), spacing=2, margin=0, allow_rotation=False)
        assert result.unplaced == ()
        assert_valid(result, items, 2, 0)

    def test_overflow_is_reported_as_unplaced_in_input_order(self) -> None:
        items = [Rect(f"k{i}", 60, 50) for i in range(10)]
        result = pack(items, FORM_4, spacing=2, margin=3)
        assert len(result.placements) == 6  # 3 across x 2 deep
        assert result.unplaced == ("k6", "k7", "k8", "k9")
        assert_valid(result, items, 2, 3)

    def test_centres_follow_the_local_api_axes(self) -> None:
        result = pack([Rect("a", 20, 10)], FORM_4, spacing=2, margin=5, allow_rotation=False)
        (p,) = result.placements
        assert (p.x, p.y, p.rotated) == (-100 + 5 + 10, -62.5 + 5 + 5, False)

    def test_rotation_is_used_when_it_makes_an_item_fit(self) -> None:
        result = pack([Rect("long", 20, 150)], FORM_4, spacing=0, margin=0)
        (p,) = result.placements
        assert p.rotated and (p.width, p.depth) == (150, 20)

    def test_without_rotation_a_too_deep_item_is_unplaced(self) -> None:
        result = pack([Rect("long", 20, 150)], FORM_4, allow_rotation=False)
        assert result.unplaced == ("long",)

    def test_spacing_and_margin_defaults_are_honoured(self) -> None:
        items = [Rect(f"k{i}", 11, 7) for i in range(60)]
        result = pack(items, FORM_4)
        assert_valid(result, items, DEFAULT_SPACING_MM, DEFAULT_MARGIN_MM)

    def test_packing_is_deterministic_and_independent_of_input_order(self) -> None:
        items = [Rect(f"k{i:02d}", 5 + (i * 7) % 23, 4 + (i * 5) % 17) for i in range(40)]
        first = pack(items, FORM_4)
        assert pack(items, FORM_4) == first
        shuffled = pack(list(reversed(items)), FORM_4)
        assert sorted(shuffled.placements, key=lambda p: p.key) == sorted(
            first.placements, key=lambda p: p.key
        )

    def test_a_group_is_placed_whole_or_not_at_all(self) -> None:
        items = [Rect("big", 190, 80)] + [Rect(f"g{i}", 30, 30, group="case") for i in range(7)]
        result = pack(items, FORM_4, spacing=2, margin=3)
        assert [p.key for p in result.placements] == ["big"]
        assert result.unplaced == tuple(f"g{i}" for i in range(7))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"spacing": -1.0}, "spacing"),
            ({"margin": float("nan")}, "margin"),
        ],
    )
    def test_invalid_settings_are_refused(self, kwargs: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            pack([Rect("a", 1, 1)], FORM_4, **kwargs)

    @pytest.mark.parametrize(
        ("items", "fragment"),
        [
            ([Rect("a", 1, 1), Rect("a", 2, 2)], "'a' appears more than once"),
            ([Rect("zero", 0, 5)], "'zero' has an invalid footprint"),
            ([Rect("inf", float("inf"), 5)], "'inf' has an invalid footprint"),
        ],
    )
    def test_invalid_items_raise_planning_error(self, items: list[Rect], fragment: str) -> None:
        with pytest.raises(PlanningError, match=fragment):
            pack(items, FORM_4)


class TestPackIntoBins:
    """First-fit decreasing over platforms, groups together, limits respected."""

    def test_everything_is_placed_once_across_bins(self) -> None:
        items = [Rect(f"k{i}", 40 + i % 5, 30 + i % 3) for i in range(30)]
        bins = pack_into_bins(items, FORM_4, spacing=2, margin=3)
        keys = [p.key for b in bins for p in b.placements]
        assert sorted(keys) == sorted(item.key for item in items)
        assert all(b.unplaced == () for b in bins)
        for b in bins:
            assert_valid(b, items, 2, 3)
        assert len(bins) == 3  # about 12 such items fit a Form 4 platform

    def test_groups_share_a_bin(self) -> None:
        items = [
            Rect(f"{case}-{part}", 35, 28, group=case)
            for case in ("case-a", "case-b", "case-c", "case-d")
            for part in ("upper", "lower", "die")
        ] + [Rect(f"loose{i}", 45, 45) for i in range(5)]
        bins = pack_into_bins(items, FORM_4, spacing=2, margin=3)
        assert len(bins) > 1
        for case in ("case-a", "case-b", "case-c", "case-d"):
            holding = [i for i, b in enumerate(bins) if any(p.key.startswith(case)
                                                            for p in b.placements)]
            assert len(holding) == 1, case

    def test_max_items_limits_each_bin(self) -> None:
        items = [Rect(f"k{i}", 5, 5) for i in range(23)]
        bins = pack_into_bins(items, FORM_4, spacing=1, margin=1, max_items=5)
        assert [len(b.placements) for b in bins] == [5, 5, 5, 5, 3]

    def test_an_item_larger_than_an_empty_platform_raises_naming_it(self) -> None:
        items = [Rect("ok", 10, 10), Rect("long_bar_260mm", 260, 60)]
        with pytest.raises(PlanningError, match="'long_bar_260mm'") as caught:
            pack_into_bins(items, FORM_4, spacing=2, margin=3)
        assert "260.0 x 60.0" in caught.value.message
        assert caught.value.hint

    def test_an_item_that_only_fits_without_the_margin_raises(self) -> None:
        with pytest.raises(PlanningError, match="'edge'"):
            pack_into_bins([Rect("edge", 198, 50)], FORM_4, spacing=2, margin=3)

    def test_a_group_that_cannot_share_one_platform_raises_naming_it(self) -> None:
        items = [Rect(f"p{i}", 90, 60, group="big-case") for i in range(5)]
        with pytest.raises(PlanningError, match="'big-case'"):
            pack_into_bins(items, FORM_4, spacing=2, margin=3)

    def test_a_group_larger_than_max_items_raises(self) -> None:
        items = [Rect(f"p{i}", 5, 5, group="case") for i in range(4)]
        with pytest.raises(PlanningError, match="max_items=3"):
            pack_into_bins(items, FORM_4, spacing=2, margin=3, max_items=3)

    def test_no_items_give_no_bins(self) -> None:
        assert pack_into_bins([], FORM_4, spacing=2, margin=3) == []

    def test_a_thousand_items_pack_deterministically(self) -> None:
        items = [
            Rect(f"m{i:04d}", 6 + (i * 37) % 29, 5 + (i * 53) % 31,
                 group=f"case{i // 4}" if i < 200 else None)
            for i in range(1000)
        ]
        first = pack_into_bins(items, FORM_4, spacing=2, margin=3, max_items=60)
        assert pack_into_bins(items, FORM_4, spacing=2, margin=3, max_items=60) == first
        assert sum(len(b.placements) for b in first) == 1000
        assert all(len(b.placements) <= 60 for b in first)
        for b in first:
            assert_valid(b, items, 2, 3)
