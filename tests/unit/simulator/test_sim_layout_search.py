"""The simulator's layout keeps looking when its first layouts leave a model out."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
from layout_support import gap, placed_points

from preform_pipeline.simulator.outline_pack import Shape, pack_shapes

AREA = (100.0, 70.0)
GROW = 1.0
#: Boxes (width, depth) and ells (side, arm) that a random search found: the four layouts
#: the simulator used to try leave one box out; another order or rule places all seven.
CROWDED = (
    ("box", 10.5, 33.2), ("ell", 26.6, 7.9), ("ell", 44.4, 6.8), ("box", 30.0, 15.6),
    ("box", 44.7, 24.1), ("ell", 40.2, 8.3), ("box", 32.9, 15.1),
)


def _edge(corners: list[tuple[float, float]]) -> npt.NDArray[np.float64]:
    """Points every 0.5 mm along a closed polygon."""
    points = []
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        steps = max(2, int(math.hypot(b[0] - a[0], b[1] - a[1]) / 0.5) + 1)
        t = np.linspace(0.0, 1.0, steps)[:, None]
        points.append(np.array(a) + t * (np.array(b) - np.array(a)))
    return np.concatenate(points)


def _shape(key: str, kind: str, a: float, b: float) -> Shape:
    if kind == "box":
        corners = [(0.0, 0.0), (a, 0.0), (a, b), (0.0, b)]
    else:  # an L: the a x a square less its upper-right part, arms b wide
        corners = [(0.0, 0.0), (a, 0.0), (a, b), (b, b), (b, a), (0.0, a)]
    return Shape(key, _edge(corners), GROW)


class TestWiderSearch:
    """A crowded platform the first layouts cannot close is laid out by another order or
    rule, still inside the area and apart."""

    def shapes(self) -> list[Shape]:
        return [_shape(f"s{i}", *spec) for i, spec in enumerate(CROWDED)]

    def test_the_first_four_layouts_leave_a_model_out(self) -> None:
        # The premise: stacking both ways with fine and quarter turns, largest first.
        _, unplaced = pack_shapes(self.shapes(), AREA, allow_rotation=True, max_tries=4)
        assert unplaced

    def test_the_search_places_every_model_apart_and_inside(self) -> None:
        shapes = self.shapes()
        placed, unplaced = pack_shapes(shapes, AREA, allow_rotation=True)
        assert unplaced == [] and len(placed) == len(shapes)
        by_key = {s.key: s for s in shapes}
        where = [placed_points(by_key[p.key], p) for p in placed]
        for points in where:
            assert points.min(axis=0).min() >= GROW - 1e-6
            assert points[:, 0].max() <= AREA[0] - GROW + 1e-6
            assert points[:, 1].max() <= AREA[1] - GROW + 1e-6
        for a, b in itertools.combinations(where, 2):
            assert gap(a, b, 2 * GROW - 1e-6) >= 2 * GROW - 1e-6
