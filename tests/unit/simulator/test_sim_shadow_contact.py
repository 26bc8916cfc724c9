"""The simulator's interference check: placed shadows, not boxes, decide contact."""

from __future__ import annotations

import math

import numpy as np

from preform_pipeline.simulator.outline_pack import shadows_overlap


def ring(radius: float, width: float, steps: int = 720) -> np.ndarray:
    """Points covering an annulus's shadow (its two circles, half a millimetre apart)."""
    angles = np.linspace(0.0, 2.0 * math.pi, steps, endpoint=False)
    circles = [
        np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)
        for r in (radius, radius - width)
    ]
    return np.concatenate(circles)


def square(x: float, y: float, side: float) -> np.ndarray:
    ticks = np.linspace(0.0, side, int(side * 4) + 1)
    edges = [np.stack([ticks, np.zeros_like(ticks)], axis=1),
             np.stack([ticks, np.full_like(ticks, side)], axis=1),
             np.stack([np.zeros_like(ticks), ticks], axis=1),
             np.stack([np.full_like(ticks, side), ticks], axis=1)]
    return np.concatenate(edges) + np.array([x, y])


class TestShadowContact:
    """Nested parts are apart; parts whose shadows meet are not."""

    def test_an_l_nested_in_another_l_does_not_touch_it(self) -> None:
        # Two L shapes, the second turned and tucked into the first's corner: their boxes
        # overlap, their shadows do not.
        first = np.concatenate([square(0.0, 0.0, 10.0), square(0.0, 10.0, 10.0),
                                square(10.0, 0.0, 10.0)])
        second = np.concatenate([square(12.0, 22.0, 10.0), square(22.0, 22.0, 10.0),
                                 square(22.0, 12.0, 10.0)])
        assert not shadows_overlap(first, second)

    def test_a_pin_in_a_washers_hole_counts_as_touching(self) -> None:
        # Shadows are judged by their extent per column, as the layout packs them: a hole
        # closed on every side is not room for another part.
        assert shadows_overlap(ring(20.0, 4.0), square(-3.0, -3.0, 6.0))

    def test_squares_that_overlap_touch(self) -> None:
        assert shadows_overlap(square(0.0, 0.0, 10.0), square(8.0, 2.0, 10.0))

    def test_squares_side_by_side_are_apart_until_the_gap_reaches_them(self) -> None:
        left, right = square(0.0, 0.0, 10.0), square(13.0, 0.0, 10.0)
        assert not shadows_overlap(left, right)
        assert shadows_overlap(left, right, gap=4.0)

    def test_a_part_across_a_washer_touches_it(self) -> None:
        bar = square(-25.0, -1.0, 2.0)
        bar = np.concatenate([bar + np.array([dx, 0.0]) for dx in range(0, 50, 2)])
        assert shadows_overlap(ring(20.0, 4.0), bar)
