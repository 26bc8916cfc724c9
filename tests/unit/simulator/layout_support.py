"""Helpers for the simulator's layout tests: where a packed shape's points went."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from preform_pipeline.simulator.outline_pack import PackedShape, Shape

__all__ = ["gap", "placed_points"]


def placed_points(shape: Shape, placed: PackedShape) -> npt.NDArray[np.float64]:
    """``shape``'s points turned by ``placed.angle_deg`` (counter-clockwise) and moved."""
    turn = math.radians(placed.angle_deg)
    c, s = math.cos(turn), math.sin(turn)
    moved: npt.NDArray[np.float64] = shape.points @ np.array([[c, s], [-s, c]]) + np.array(
        [placed.dx, placed.dy]
    )
    return moved


def gap(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], enough: float) -> float:
    """The least distance between a point of ``a`` and one of ``b``; or, when their bounding
    boxes are already ``enough`` apart, the boxes' distance: no two points are nearer than
    their boxes, so the check ``gap(...) >= enough`` holds either way, and far pairs (most
    on a platform) skip the point-by-point matrix, which cost seconds a test.

    The boxes' distance is worked out as each pair's is (a difference a coordinate, squared,
    summed, the root), so in floating point too it is never above the pairs' least:
    ``np.hypot``, more exact, came out a unit in the last place above the matrix's answer
    for a pair whose nearest points are two corners, and passed a pair the full check
    failed."""
    apart = np.maximum(np.maximum(a.min(axis=0) - b.max(axis=0), b.min(axis=0) - a.max(axis=0)),
                       0.0)
    boxes = float(np.sqrt((apart ** 2).sum()))
    if boxes >= enough:
        return boxes
    return float(np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)).min())
