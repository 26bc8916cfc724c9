"""The simulator's interference check: the placed shadows' own cells, not boxes or column
extents, decide contact."""

from __future__ import annotations

import math

import numpy as np

from preform_pipeline.geometry import Mesh
from preform_pipeline.simulator.contact import ShadowGrid
from preform_pipeline.simulator.meshops import box_triangles


def blocks(*corners: tuple[float, float, float, float], turn_deg: float = 0.0) -> Mesh:
    """A part made of 5 mm tall blocks ``(x, y, width, depth)``, turned about the origin."""
    parts = [box_triangles((x, y, 0.0), (x + w, y + d, 5.0)) for x, y, w, d in corners]
    triangles = np.concatenate(parts).astype(np.float64)
    a = math.radians(turn_deg)
    rotation = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0],
                         [0.0, 0.0, 1.0]])
    return Mesh((triangles @ rotation.T).astype(np.float32), "part")


def washer(radius: float, width: float) -> Mesh:
    """A ring of 72 small blocks around the origin."""
    spots = [(radius - width / 2) * np.array([math.cos(t), math.sin(t)])
             for t in np.linspace(0.0, 2 * math.pi, 72, endpoint=False)]
    return blocks(*[(x - width / 2, y - width / 2, width, width) for x, y in spots])


def near(first: Mesh, second: Mesh, reach: float) -> bool:
    low = np.minimum(first.triangles.reshape(-1, 3).min(0), second.triangles.reshape(-1, 3).min(0))
    high = np.maximum(first.triangles.reshape(-1, 3).max(0),
                      second.triangles.reshape(-1, 3).max(0))
    grid = ShadowGrid(low[:2] - reach, high[:2] + reach)
    return grid.within(grid.covered(first), grid.covered(second), reach)


#: A U 40 mm wide with 10 mm legs, its opening (20 x 30 mm) towards +y.
U = ((0.0, 0.0, 40.0, 10.0), (0.0, 10.0, 10.0, 30.0), (30.0, 10.0, 10.0, 30.0))


class TestShadowContact:
    """Nested parts are apart, at any angle; parts whose shadows come within reach meet."""

    def test_a_block_in_a_u_s_opening_turned_at_a_slant_is_apart(self) -> None:
        # Turned 30 degrees together: no column across x or y keeps them apart, the cells do.
        u = blocks(*U, turn_deg=30.0)
        block = blocks((15.0, 15.0, 10.0, 20.0), turn_deg=30.0)
        assert not near(u, block, 4.0)
        assert near(u, block, 5.5)

    def test_a_pin_in_a_washer_s_hole_is_apart_until_the_reach_closes_the_gap(self) -> None:
        pin = blocks((-3.0, -3.0, 6.0, 6.0))
        assert not near(washer(20.0, 4.0), pin, 5.0)
        assert near(washer(20.0, 4.0), pin, 14.0)

    def test_blocks_that_overlap_meet(self) -> None:
        assert near(blocks((0.0, 0.0, 10.0, 10.0)), blocks((8.0, 2.0, 10.0, 10.0)), 0.0)

    def test_blocks_side_by_side_are_apart_until_the_reach_reaches_them(self) -> None:
        left, right = blocks((0.0, 0.0, 10.0, 10.0)), blocks((13.0, 0.0, 10.0, 10.0))
        assert not near(left, right, 2.0)
        assert near(left, right, 3.0)

    def test_a_bar_across_a_washer_meets_it(self) -> None:
        assert near(washer(20.0, 4.0), blocks((-25.0, -1.0, 50.0, 2.0)), 0.0)
