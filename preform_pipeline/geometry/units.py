"""Guessing whether a unitless file (STL, OBJ) was modelled in inches."""

from __future__ import annotations

from typing import Final, Literal

from .mesh import Mesh

__all__ = ["DEFAULT_INCH_DETECTION_MAX_EXTENT", "INCH_MM", "Units", "detect_units"]

INCH_MM: Final = 25.4

#: Largest extent (in file units) below which a file is assumed to be in inches. Read as
#: millimetres such a model would be smaller than 6 mm on its longest side, below almost any
#: part worth printing on its own; read as inches it is up to 152 mm, which is a typical part
#: and still fits a Form 4 build volume on its tallest axis.
DEFAULT_INCH_DETECTION_MAX_EXTENT: Final = 6.0

Units = Literal["MILLIMETERS", "INCHES"]


def detect_units(
    mesh: Mesh, *, max_inch_extent: float = DEFAULT_INCH_DETECTION_MAX_EXTENT
) -> Units:
    """``"INCHES"`` when the largest extent is below ``max_inch_extent``, else millimetres.

    The rule is a heuristic for files that carry no units: STL and OBJ. It will call a
    genuinely tiny millimetre part (a 4 mm bead) inches, so recipes should state units
    explicitly when that matters; 3MF files state their unit and are read in millimetres.
    An empty mesh is reported as millimetres.
    """
    if mesh.triangle_count == 0:
        return "MILLIMETERS"
    largest = max(mesh.size)
    return "INCHES" if 0.0 < largest < max_inch_extent else "MILLIMETERS"
