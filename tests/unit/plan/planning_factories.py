"""Small builders of recipes and model infos for the planning tests (no files involved)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from preform_pipeline.plan.builds import ModelInfo
from preform_pipeline.recipes.model import (
    BatchingSpec,
    ImportSpec,
    OutputSpec,
    Position,
    Recipe,
    SceneSpec,
    Step,
    frozen_mapping,
)

__all__ = ["FULL_SLA_STEPS", "box_triangles", "make_model", "make_recipe", "make_step"]

#: Every SLA step kind, in the order a complete recipe lists them.
FULL_SLA_STEPS: tuple[str, ...] = (
    "auto_orient",
    "auto_support",
    "hollow",
    "add_drain_holes",
    "label",
    "auto_layout",
    "validate",
    "estimate",
    "save_form",
    "screenshot",
    "print",
    "verify",
)


def make_step(
    kind: str,
    *,
    id: str | None = None,
    after: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    line: int | None = None,
) -> Step:
    position = Position("recipe.yaml", line, 5) if line is not None else None
    return Step(
        id=id or kind,
        kind=kind,
        options=frozen_mapping(options or {}),
        after=tuple(after),
        position=position,
    )


def make_recipe(
    *,
    machine: str | None = "FORM-4-0",
    material: str = "FLGPGR05",
    steps: Sequence[Step | str] = ("auto_orient", "auto_support", "auto_layout"),
    technology: str = "SLA",
    scan_to_model: Mapping[str, Any] | None = None,
    units: str = "MILLIMETERS",
    scale: float = 1.0,
    name: str = "test-recipe",
    **batching: Any,
) -> Recipe:
    built = tuple(make_step(s) if isinstance(s, str) else s for s in steps)
    return Recipe(
        name=name,
        source=Path("recipes") / f"{name}.yaml",
        scene=SceneSpec(machine, material, 0.1),
        import_options=ImportSpec(
            units=units,
            scale=scale,
            scan_to_model=frozen_mapping(scan_to_model) if scan_to_model is not None else None,
        ),
        steps=built,
        batching=BatchingSpec(**batching),
        outputs=OutputSpec(),
        technology=technology,  # type: ignore[arg-type]
    )


def make_model(
    name: str,
    size: tuple[float, float, float] = (20.0, 20.0, 20.0),
    *,
    case: str | None = None,
    volume: float | None = None,
    support: float = 0.0,
) -> ModelInfo:
    sx, sy, sz = size
    return ModelInfo(
        path=Path("models") / f"{name}.stl",
        name=name,
        size_mm=size,
        footprint_mm=(sx, sy),
        volume_mm3=sx * sy * sz if volume is None else volume,
        support_estimate_mm3=support,
        triangle_count=12,
        case_id=case,
    )


def box_triangles(sx: float, sy: float, sz: float) -> list[list[list[float]]]:
    """The 12 outward-facing triangles of an axis-aligned box with a corner at the origin."""
    c = [
        (x, y, z)
        for z in (0.0, sz)
        for y in (0.0, sy)
        for x in (0.0, sx)
    ]
    # Corner indices: bit 0 = x, bit 1 = y, bit 2 = z.
    quads = [
        (0, 2, 3, 1),  # bottom, facing -z
        (4, 5, 7, 6),  # top, +z
        (0, 1, 5, 4),  # front, -y
        (2, 6, 7, 3),  # back, +y
        (0, 4, 6, 2),  # left, -x
        (1, 3, 7, 5),  # right, +x
    ]
    triangles = []
    for a, b, d, e in quads:
        triangles.append([list(c[a]), list(c[b]), list(c[d])])
        triangles.append([list(c[a]), list(c[d]), list(c[e])])
    return triangles
