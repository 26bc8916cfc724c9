"""Footprints as the server will make them: orientation, raft border, spacing.

The server changes a model's footprint before it lays the build out: ``auto_orient`` turns it
(the largest flat face down), ``auto_support`` stands it on a raft that reaches beyond the
model, and ``auto_layout`` keeps ``model_spacing_mm`` between rafts. Planning with the file's
own bounding box, as earlier versions did, made every dense build overflow on the server.

:class:`Shadow` is what the planner keeps of a model's shape: the boundary points of its
shadow on the platform (relative to the footprint centre) as the file lies and, when that
differs, after the flat-face orientation; plus their convex-hull areas. :func:`predict` picks
the one the recipe's steps will produce and how far to grow it (:class:`Footprint`).

**Raft border.** PreForm draws a full raft under the support roots with a sloped rim; the
Local API contract gives no width for it. The planner takes the rim as wide as the default raft
is thick, 2 mm per side (:data:`RAFT_BORDER_MM`), 1 mm for mini rafts, 0.5 mm for rafts per
support root on the platform; with ``allow_overlapping_supports`` rafts may overlap and add
nothing. Two grown footprints that do not overlap are at least the spacing apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.geometry import Mesh, best_flat_orientation
from preform_pipeline.geometry.projection import hull_area, projected_points
from preform_pipeline.recipes.model import Recipe

__all__ = [
    "DEFAULT_LAYOUT_SPACING_MM",
    "RAFT_BORDER_MM",
    "Footprint",
    "Shadow",
    "measure_shadow",
    "predict",
    "raft_border_mm",
]

#: The server's ``model_spacing_mm`` when an auto_layout step does not set one.
DEFAULT_LAYOUT_SPACING_MM: Final = 2.0
#: How far the raft reaches beyond the model's shadow, per side, by ``raft_type``.
RAFT_BORDER_MM: Final[Mapping[str, float]] = MappingProxyType(
    {"FULL_RAFT": 2.0, "MINI_RAFT": 1.0, "MINI_RAFTS_ON_BP": 0.5}
)

_Points = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Shadow:
    """A model's shadow on the platform (boundary points, mm, relative to the footprint
    centre) as the file lies, and after the flat-face orientation (the same object when the
    orientation does not change it)."""

    as_is: _Points
    flat: _Points
    as_is_hull_mm2: float
    flat_hull_mm2: float


@dataclass(frozen=True, eq=False)
class Footprint:
    """What the packer needs of one model: shadow points, hull area, growth per side."""

    points: _Points
    hull_mm2: float
    grow_mm: float
    #: The gap kept between grown footprints' models (half of it is inside ``grow_mm``).
    spacing_mm: float


def _centred(points: _Points) -> _Points:
    if len(points) == 0:
        return points
    low, high = points.min(axis=0), points.max(axis=0)
    centred: _Points = points - (low + high) / 2.0
    return centred


def measure_shadow(mesh: Mesh) -> Shadow:
    """The shadow of ``mesh`` (already in millimetres) as it lies and flat-face down."""
    as_is = _centred(projected_points(mesh))
    rotation = best_flat_orientation(mesh)
    as_is_hull = hull_area(as_is)
    # Turns about z only turn the shadow: the packer tries turns itself.
    if np.allclose(np.abs(rotation[2]), [0.0, 0.0, 1.0]):
        return Shadow(as_is, as_is, as_is_hull, as_is_hull)
    flat = _centred(projected_points(mesh, rotation=rotation))
    return Shadow(as_is, flat, as_is_hull, hull_area(flat))


def raft_border_mm(options: Mapping[str, Any]) -> float:
    """Raft reach beyond the shadow for an auto_support step's options."""
    kind = str(options.get("raft_type", "FULL_RAFT"))
    return RAFT_BORDER_MM.get(kind, RAFT_BORDER_MM["FULL_RAFT"])


def predict(shadow: Shadow, recipe: Recipe, *, supported: bool) -> Footprint:
    """The footprint the recipe's steps will give: oriented when it has auto_orient, grown
    by the raft border when ``supported`` (rafts may not overlap) and by half the larger of
    the recipe's spacing and its layout step's ``model_spacing_mm``."""
    oriented = recipe.has_step("auto_orient")
    points = shadow.flat if oriented else shadow.as_is
    hull = shadow.flat_hull_mm2 if oriented else shadow.as_is_hull_mm2
    layout = recipe.step("auto_layout")
    layout_options: Mapping[str, Any] = layout.api_options() if layout is not None else {}
    spacing = max(
        recipe.batching.spacing_mm,
        float(layout_options.get("model_spacing_mm", DEFAULT_LAYOUT_SPACING_MM)),
    )
    border = 0.0
    support = recipe.step("auto_support")
    if supported and support is not None and not layout_options.get(
        "allow_overlapping_supports", False
    ):
        border = raft_border_mm(support.api_options())
    return Footprint(points, hull, border + spacing / 2.0, spacing)
