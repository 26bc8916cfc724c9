"""The simulator's layout keeps looking when its first layouts leave a model out."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
from layout_support import gap, placed_points

from preform_pipeline.simulator.outline_pack import _LOWEST, _SNUG, Shape, _try, pack_shapes

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


class TestTheSnugRule:
    """Of two nearly equal tops, the snug rule takes the one leaving less empty area under
    the model; the lowest-top rule takes the lower top however much it leaves empty."""

    #: A block 5.05 mm deep, and an L lying on its leg (4.6 mm wide, to the floor) with its
    #: arm (5 mm wide) standing 5 mm up, to the left: set over the block the L's top is
    #: 0.05 mm higher than on the floor beside it, where 25 mm2 under its arm stay empty.
    BLOCK = Shape("block", _edge([(0.0, 0.0), (4.6, 0.0), (4.6, 5.05), (0.0, 5.05)]), 0.0)
    ELL = Shape("ell", _edge([(0.0, 5.0), (5.0, 5.0), (5.0, 0.0), (9.6, 0.0), (9.6, 10.0),
                              (0.0, 10.0)]), 0.0)

    def _where_the_ell_goes(self, rule: str) -> tuple[float, float]:
        placed, unplaced = _try([self.BLOCK, self.ELL], (30.0, 30.0), 0, 1.0, (0.0,), rule)
        assert unplaced == [] and placed[0].key == "block"
        return round(placed[1].dx, 6), round(placed[1].dy, 6)

    def test_the_snug_rule_sets_the_arm_over_the_block(self) -> None:
        assert self._where_the_ell_goes(_SNUG) == (0.0, 0.05)

    def test_the_lowest_top_rule_puts_it_on_the_floor_beside_the_block(self) -> None:
        assert self._where_the_ell_goes(_LOWEST) == (5.0, 0.0)
