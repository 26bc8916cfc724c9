"""Property tests: whatever the items, packing never overlaps or leaves the platform."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from packing_checks import assert_valid

from preform_pipeline.plan.packing import Rect, pack, pack_into_bins

sizes = st.floats(min_value=0.5, max_value=90.0, allow_nan=False, allow_infinity=False)
item_lists = st.lists(st.tuples(sizes, sizes), min_size=0, max_size=40).map(
    lambda dims: [Rect(f"k{i}", w, d) for i, (w, d) in enumerate(dims)]
)
platforms = st.tuples(st.floats(100.0, 400.0), st.floats(100.0, 400.0))
gaps = st.floats(min_value=0.0, max_value=5.0)


class TestPackingProperties:
    """Random items on random platforms always give valid, complete, repeatable results."""

    @settings(max_examples=150, deadline=None)
    @given(items=item_lists, platform=platforms, spacing=gaps, margin=gaps,
           rotate=st.booleans())
    def test_single_platform_is_valid_and_accounts_for_every_item(
        self, items: list[Rect], platform: tuple[float, float], spacing: float, margin: float,
        rotate: bool,
    ) -> None:
        result = pack(items, platform, spacing=spacing, margin=margin, allow_rotation=rotate)
        assert_valid(result, items, spacing, margin)
        placed = [p.key for p in result.placements]
        assert sorted(placed + list(result.unplaced)) == sorted(i.key for i in items)
        assert 0.0 <= result.fill_ratio <= 1.0
        assert pack(items, platform, spacing=spacing, margin=margin,
                    allow_rotation=rotate) == result

    @settings(max_examples=60, deadline=None)
    @given(items=item_lists, spacing=gaps, margin=gaps, groups=st.integers(1, 6))
    def test_bins_are_valid_and_keep_groups_together(
        self, items: list[Rect], spacing: float, margin: float, groups: int
    ) -> None:
        grouped = [
            Rect(i.key, min(i.width, 40), min(i.depth, 40),
                 group=f"g{n % groups}" if n % 3 == 0 else None)
            for n, i in enumerate(items)
        ]
        bins = pack_into_bins(grouped, (200.0, 125.0), spacing=spacing, margin=margin)
        for result in bins:
            assert_valid(result, grouped, spacing, margin)
            assert result.unplaced == ()
        home: dict[str, int] = {}
        for index, result in enumerate(bins):
            for p in result.placements:
                group = next(i.group for i in grouped if i.key == p.key)
                if group is not None:
                    assert home.setdefault(group, index) == index
        assert sum(len(b.placements) for b in bins) == len(grouped)
