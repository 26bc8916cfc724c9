"""Geometric value types shared by requests and results: positions, orientations, boxes.

Coordinates are scene millimetres: x and y are 0 at the centre of the build platform, z is 0 on
its surface. Angles are degrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from preform_pipeline.api._parse import MalformedResponse, as_object, req_number

__all__ = [
    "BoundingBox",
    "DirectionVectors",
    "EulerAngles",
    "Orientation",
    "Position",
    "TransformMatrix",
    "orientation_body",
]


def _triple(values: Sequence[float], what: str) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError(f"{what} needs exactly 3 numbers, got {len(values)}")
    return (float(values[0]), float(values[1]), float(values[2]))


def _plain_xyz(data: Any) -> tuple[float, float, float] | None:
    """``x``, ``y`` and ``z`` of a decoded JSON object when all three are floats (what a
    server sends: every model of every scene answer has three such points); None for
    anything else, which the general readers then check and explain."""
    if type(data) is dict:
        x, y, z = data.get("x"), data.get("y"), data.get("z")
        if type(x) is float and type(y) is float and type(z) is float:
            return x, y, z
    return None


@dataclass(frozen=True)
class Position:
    """A point in the build volume (the contract's ScenePositionModel)."""

    x: float
    y: float
    z: float

    def to_body(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y, "z": self.z}

    @classmethod
    def from_json(cls, data: Any, what: str = "position") -> Position:
        xyz = _plain_xyz(data)
        if xyz is not None:
            return cls(*xyz)
        obj = as_object(data, what)
        return cls(req_number(obj, "x"), req_number(obj, "y"), req_number(obj, "z"))


@dataclass(frozen=True)
class EulerAngles:
    """Rotation in degrees, applied about z first, then x, then y."""

    x: float
    y: float
    z: float

    def to_body(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y, "z": self.z}

    @classmethod
    def from_json(cls, data: Any, what: str = "orientation") -> EulerAngles:
        xyz = _plain_xyz(data)
        if xyz is not None:
            return cls(*xyz)
        obj = as_object(data, what)
        return cls(req_number(obj, "x"), req_number(obj, "y"), req_number(obj, "z"))


@dataclass(frozen=True)
class TransformMatrix:
    """Rotation as the 3x3 linear part of a rigid transform, row by row."""

    linear: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        rows = tuple(_triple(row, "a TransformMatrix row") for row in self.linear)
        if len(rows) != 3:
            raise ValueError(f"a TransformMatrix needs exactly 3 rows, got {len(rows)}")
        object.__setattr__(self, "linear", rows)

    def to_body(self) -> dict[str, list[list[float]]]:
        return {"linear": [list(row) for row in self.linear]}


@dataclass(frozen=True)
class DirectionVectors:
    """Rotation given by which model-space directions end up pointing up (z) and right (x)."""

    z_direction: tuple[float, float, float]
    x_direction: tuple[float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "z_direction", _triple(self.z_direction, "z_direction"))
        object.__setattr__(self, "x_direction", _triple(self.x_direction, "x_direction"))

    def to_body(self) -> dict[str, list[float]]:
        return {"z_direction": list(self.z_direction), "x_direction": list(self.x_direction)}


#: Any of the three ways the contract's OrientationModel accepts.
Orientation = EulerAngles | TransformMatrix | DirectionVectors


def orientation_body(orientation: Orientation) -> dict[str, Any]:
    body: dict[str, Any] = orientation.to_body()
    return body


@dataclass(frozen=True)
class BoundingBox:
    """Axis-aligned box around a model in scene coordinates."""

    min_corner: Position
    max_corner: Position

    @property
    def size(self) -> tuple[float, float, float]:
        """Extent along x, y and z in millimetres."""
        lo, hi = self.min_corner, self.max_corner
        return (hi.x - lo.x, hi.y - lo.y, hi.z - lo.z)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BoundingBox:
        obj = as_object(data, "bounding_box")
        if "min_corner" not in obj or "max_corner" not in obj:
            raise MalformedResponse("bounding_box: min_corner and max_corner are required")
        return cls(
            Position.from_json(obj["min_corner"], "bounding_box.min_corner"),
            Position.from_json(obj["max_corner"], "bounding_box.max_corner"),
        )
