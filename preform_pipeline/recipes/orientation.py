"""What the schema cannot say about an orientation (a label's, a drain hole's): a ``linear``
matrix is a rotation, and direction vectors are not zero and at right angles.

The Local API takes ``linear`` as "the linear component of a 3D rigid transform" and an
``x_direction`` "perpendicular to Z direction" (``OrientationModel`` in
local-api-openapi.yaml). A recipe that breaks either was taken by ``validate`` and refused
by the server at the step, its message naming the request's field, not the recipe's line.
Values of the wrong type are left to the schema, numbers that are not finite to the loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from preform_pipeline.yamlerrors import is_finite

__all__ = ["PERPENDICULAR_TOLERANCE", "ROTATION_TOLERANCE", "orientation_problems"]

#: How far a matrix's rows may be from unit length and right angles (each dot product);
#: the simulator refuses beyond it, so validate must not take more.
ROTATION_TOLERANCE: Final = 1e-4
#: How far from 0 the cosine between the two directions may be (the simulator's, likewise).
PERPENDICULAR_TOLERANCE: Final = 1e-3
#: A direction shorter than this has none.
_ZERO_LENGTH: Final = 1e-9

Path = tuple[str | int, ...]
Vector = tuple[float, float, float]


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number; None when not a number (the
    schema's to say) or not finite (the loader's)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not is_finite(value):
        return None
    return float(value)


def _vector(value: Any) -> Vector | None:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        return None
    x, y, z = (_finite(v) for v in value)
    if x is None or y is None or z is None:
        return None
    return x, y, z


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def orientation_problems(orientation: Mapping[str, Any], path: Path
                         ) -> Iterator[tuple[Path, str]]:
    """(path, message) for each thing wrong with ``orientation`` at ``path``."""
    linear = orientation.get("linear")
    if isinstance(linear, Sequence) and not isinstance(linear, str) and len(linear) == 3:
        rows = [_vector(row) for row in linear]
        if all(rows) and not _rotation([r for r in rows if r is not None]):
            yield ((*path, "linear"),
                   "is not a rotation: its rows must be unit vectors at right angles, with "
                   "determinant +1 (the Local API takes the linear part of a rigid transform)")
    z = _vector(orientation.get("z_direction"))
    x = _vector(orientation.get("x_direction"))
    for name, vector in (("z_direction", z), ("x_direction", x)):
        if vector is not None and math.sqrt(_dot(vector, vector)) < _ZERO_LENGTH:
            yield (*path, name), "must not be zero: it is a direction"
            return
    if z is not None and x is not None:
        cosine = _dot(z, x) / math.sqrt(_dot(z, z) * _dot(x, x))
        if abs(cosine) > PERPENDICULAR_TOLERANCE:
            yield ((*path, "x_direction"),
                   f"must be at right angles to z_direction (they are "
                   f"{math.degrees(math.acos(max(-1.0, min(1.0, cosine)))):.1f} degrees apart)")


def _rotation(rows: list[Vector]) -> bool:
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            if abs(_dot(a, b) - (1.0 if i == j else 0.0)) > ROTATION_TOLERANCE:
                return False
    return _dot(rows[0], _cross(rows[1], rows[2])) > 0
