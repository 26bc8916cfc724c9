"""The layout tests' ``gap`` shortcut decides every check as the full point-by-point one does."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from layout_support import gap


def _full(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """The check the layout tests made before the shortcut: every pair of points."""
    return float(np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)).min())


class TestGap:
    """``gap(a, b, enough) >= enough`` exactly when the full check's least distance is."""

    def test_it_passes_what_the_full_check_passes_to_the_last_bit(self) -> None:
        rng = np.random.default_rng(46)
        differ = []
        for _ in range(3000):
            a = rng.normal(size=(int(rng.integers(1, 6)), 2)) * rng.uniform(0.1, 5.0)
            b = rng.normal(size=(int(rng.integers(1, 6)), 2)) * rng.uniform(0.1, 5.0)
            b += rng.uniform(-10.0, 10.0, 2)
            full = _full(a, b)
            # At the full check's answer, one unit above it (where a box's distance a unit
            # too large passed), below it, and well below (the shortcut taken).
            for enough in (full, np.nextafter(full, np.inf), np.nextafter(full, 0.0), full / 2):
                if (gap(a, b, enough) >= enough) != (full >= enough):
                    differ.append((a.tolist(), b.tolist(), float(enough)))
        assert differ == []

    def test_far_apart_sets_are_measured_by_their_boxes(self) -> None:
        a = np.array([[0.0, 0.0], [1.0, 1.0]])
        b = np.array([[4.0, 5.0], [9.0, 9.0]])
        assert gap(a, b, 5.0) == 5.0  # the boxes' corners (1, 1) and (4, 5)
        assert gap(a, b, 5.1) == 5.0  # the nearest points, (1, 1) and (4, 5) again
        overlapping = np.array([[0.5, 3.0], [0.5, 9.0]])
        assert gap(a, overlapping, 1.0) == 2.0  # x overlaps: the box gap is 2.0 in y
        assert gap(a, overlapping, 2.5) == _full(a, overlapping)  # (1, 1) and (0.5, 3)
