"""Which units a model file is in: stated, or judged from what could print.

STL and OBJ files carry no units. A number like ``8.0`` may be an 8 mm pin or an 8-inch
bracket, and reading it wrongly prints a part 25.4 times too small or too large. The units
are therefore *stated* where possible (the file itself for 3MF, a sidecar, the recipe) and
otherwise *judged*: each reading (millimetres, inches) is plausible when the part, read that
way, fits the machine's build volume as it lies (turned about z if need be, the planner's
own rule) and its thinnest side is at least the minimum feature size. :func:`decide_units`
takes one reading only when it is the only plausible one, and says so in a warning that
names the model, both sizes and the setting that states the units; when both readings are
plausible the model is held unless the recipe names the reading to assume.

:func:`detect_units` is the simpler "under 6 units means inches" rule the simulator applies
to a ``DETECTED`` import, as PreFormServer guesses for itself; the pipeline never sends
``DETECTED`` (it sends the units it decided).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from ..wording import millimetres

if TYPE_CHECKING:
    # For annotations only: a mesh is numpy's, and the units' settings are read (plan
    # warnings, every command's console) where no model is.
    from .mesh import Mesh

__all__ = [
    "DEFAULT_INCH_DETECTION_MAX_EXTENT",
    "DEFAULT_MIN_FEATURE_MM",
    "INCH_MM",
    "STATED_UNITS_HINT",
    "UNITS_SETTINGS",
    "Units",
    "UnitsDecision",
    "UnitsSource",
    "decide_units",
    "detect_units",
    "parse_units",
    "plausible_size",
]

INCH_MM: Final = 25.4

#: Largest extent (in file units) below which the simulator's ``DETECTED`` import reads a
#: file as inches (the server's own guess, modelled independently of the planner).
DEFAULT_INCH_DETECTION_MAX_EXTENT: Final = 6.0

#: Thinnest side a part may have to count as printable when judging units. Formlabs' design
#: guidance gives about 0.2 mm for a supported wall and 0.4 mm for an unsupported one on its
#: SLA printers, and about 0.3 mm for a printed wall on Fuse; 0.3 mm sits between them.
DEFAULT_MIN_FEATURE_MM: Final = 0.3

#: The settings that state units, named in warnings and hold reasons.
UNITS_SETTINGS: Final = (
    "import.units or import.units_by_path in the recipe, or `units:` in the case's sidecar"
)

Units = Literal["MILLIMETERS", "INCHES"]
#: Where the units came from: the file (3MF), the recipe, a sidecar, or a guess.
UnitsSource = Literal["file", "recipe", "sidecar", "guess"]

_ALIASES: Final[dict[str, Units]] = {
    "mm": "MILLIMETERS",
    "millimeter": "MILLIMETERS",
    "millimeters": "MILLIMETERS",
    "millimetre": "MILLIMETERS",
    "millimetres": "MILLIMETERS",
    "in": "INCHES",
    "inch": "INCHES",
    "inches": "INCHES",
}


#: What helps with stated units :func:`parse_units` does not know (a sidecar's ``units: cm``).
#: Centimetres are named: CAD and scanner exports use them, and the recipe's import scale is
#: how they are read.
STATED_UNITS_HINT: Final = (
    "write units: MILLIMETERS or units: INCHES (mm and in also work); a model in centimetres: "
    "export it again in millimetres, or give it a recipe with import: {scale: 10}")


def parse_units(text: str) -> Units | None:
    """``MILLIMETERS``/``INCHES`` (or ``mm``, ``in``, ``inch``... any case), else None."""
    return _ALIASES.get(text.strip().lower())


def _factor(units: Units) -> float:
    return INCH_MM if units == "INCHES" else 1.0


def _scaled(size: Sequence[float], factor: float) -> tuple[float, float, float]:
    x, y, z = (float(v) * factor for v in size)
    return (x, y, z)


def plausible_size(
    size_mm: Sequence[float],
    build_volume_mm: Sequence[float],
    min_feature_mm: float = DEFAULT_MIN_FEATURE_MM,
) -> bool:
    """True when a part of ``size_mm`` (x, y, z) fits the build volume as it lies, turned
    about z if need be (the planner's own fit rule), and its thinnest side is at least
    ``min_feature_mm``."""
    x, y, z = (float(v) for v in size_mm)
    bx, by, bz = (float(v) + 1e-6 for v in build_volume_mm)
    if min(x, y, z) < min_feature_mm or z > bz:
        return False
    return (x <= bx and y <= by) or (y <= bx and x <= by)


@dataclass(frozen=True)
class UnitsDecision:
    """The units a model is read in and where they came from; ``units`` is None when the
    model is held (``reason`` says why, without the model's name, which the caller's error
    carries). ``warning`` is set for a guess and names the model."""

    units: Units | None
    source: UnitsSource | None
    warning: str | None = None
    reason: str | None = None

    @property
    def held(self) -> bool:
        return self.units is None

    @property
    def label(self) -> str:
        """``INCHES (recipe)``, or ``held`` for a held model."""
        return "held" if self.units is None else f"{self.units} ({self.source})"


def decide_units(
    name: str,
    size: Sequence[float],
    *,
    stated: tuple[Units, UnitsSource] | None,
    build_volume_mm: Sequence[float],
    scale: float = 1.0,
    min_feature_mm: float = DEFAULT_MIN_FEATURE_MM,
    assume: Units | None = None,
    machine: str = "the machine",
) -> UnitsDecision:
    """Decide the units of model ``name`` whose extents in file units are ``size``.

    ``stated`` units (with their source) win. Otherwise each reading is judged with
    :func:`plausible_size` (after ``scale``): one plausible reading is taken as a guess with a
    warning; two are taken as ``assume`` when the recipe names one (source ``recipe``), else
    the model is held; none are read as millimetres with a warning (the size checks that
    follow reject a part that cannot print).
    """
    if stated is not None:
        return UnitsDecision(stated[0], stated[1])
    as_mm = _scaled(size, scale)
    as_inch = _scaled(size, scale * INCH_MM)
    mm_ok = plausible_size(as_mm, build_volume_mm, min_feature_mm)
    inch_ok = plausible_size(as_inch, build_volume_mm, min_feature_mm)
    both = f"read as millimetres it is {millimetres(as_mm)}, read as inches {millimetres(as_inch)}"
    if mm_ok and inch_ok:
        if assume is not None:
            return UnitsDecision(assume, "recipe")
        return UnitsDecision(
            None,
            None,
            reason=(
                f"units not stated and both readings could print on {machine} "
                f"({both}); state them with {UNITS_SETTINGS} (or import.ambiguous_units)"
            ),
        )
    units: Units = "INCHES" if inch_ok else "MILLIMETERS"
    why = (
        f"only the {'inch' if inch_ok else 'millimetre'} reading fits {machine} with walls of "
        f"at least {min_feature_mm:g} mm"
        if mm_ok or inch_ok
        else "neither reading fits; millimetres assumed"
    )
    return UnitsDecision(
        units,
        "guess",
        warning=(
            f"{name}: units not stated, guessed {units} ({both}; {why}); "
            f"state them with {UNITS_SETTINGS}"
        ),
    )


def detect_units(
    mesh: Mesh, *, max_inch_extent: float = DEFAULT_INCH_DETECTION_MAX_EXTENT
) -> Units:
    """``"INCHES"`` when the largest extent is below ``max_inch_extent``, else millimetres:
    the simulator's model of the server's own ``DETECTED`` guess. An empty mesh is read as
    millimetres."""
    if mesh.triangle_count == 0:
        return "MILLIMETERS"
    largest = max(mesh.size)
    return "INCHES" if 0.0 < largest < max_inch_extent else "MILLIMETERS"
