"""Helpers for the simulator's layout tests: where a packed shape's points went."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from preform_pipeline.simulator.outline_pack import PackedShape, Shape

__all__ = ["placed_points"]


def placed_points(shape: Shape, placed: PackedShape) -> npt.NDArray[np.float64]:
    """``shape``'s points turned by ``placed.angle_deg`` (counter-clockwise) and moved."""
    turn = math.radians(placed.angle_deg)
    c, s = math.cos(turn), math.sin(turn)
    moved: npt.NDArray[np.float64] = shape.points @ np.array([[c, s], [-s, c]]) + np.array(
        [placed.dx, placed.dy]
    )
    return moved
