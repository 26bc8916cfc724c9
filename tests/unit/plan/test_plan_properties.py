"""Properties any correct planner keeps, whatever the models and batching settings.

Tested through ``plan_builds`` only (the packer behind it may change): every model ends in
exactly one build or one rejection; every planned footprint lies on the platform inside the
recipe's margin and covers the model; no two footprints of a build overlap; a build never
holds more models than the recipe allows.
"""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from planning_factories import make_model, make_recipe

from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.plan.builds import BuildPlan, ModelPlacement, plan_builds
from preform_pipeline.recipes.model import Recipe

#: Rounding slack for positions computed in floating point (mm).
EPS_MM = 1e-6
SLA_MACHINES = ("FORM-4-0", "FORM-4L-0")

sizes = st.tuples(
    st.floats(1.0, 420.0, allow_nan=False), st.floats(1.0, 420.0, allow_nan=False),
    st.floats(1.0, 400.0, allow_nan=False),
)
model_lists = st.lists(st.tuples(sizes, st.sampled_from([None, "case-a", "case-b"])),
                       max_size=24)
recipes = st.builds(
    lambda machine, per_build, spacing, margin, rotate, cases: make_recipe(
        machine=machine, max_models_per_build=per_build, spacing_mm=spacing, margin_mm=margin,
        allow_rotation=rotate, keep_cases_together=cases,
    ),
    machine=st.sampled_from(SLA_MACHINES),
    per_build=st.one_of(st.none(), st.integers(1, 8)),
    spacing=st.floats(0.0, 6.0),
    margin=st.floats(0.0, 12.0),
    rotate=st.booleans(),
    cases=st.booleans(),
)


def _platform(recipe: Recipe) -> tuple[float, float]:
    machine = DEFAULT_CATALOGUE.machine(str(recipe.scene.machine_type))
    assert machine is not None
    return machine.build_volume_mm[0], machine.build_volume_mm[1]


def _bounds(p: ModelPlacement) -> tuple[float, float, float, float]:
    return (p.x_mm - p.width_mm / 2, p.y_mm - p.depth_mm / 2,
            p.x_mm + p.width_mm / 2, p.y_mm + p.depth_mm / 2)


def _corners(p: ModelPlacement, size: tuple[float, float]) -> list[tuple[float, float]]:
    """The model's footprint rectangle turned by its angle about the placement centre."""
    turn = math.radians(p.angle_deg)
    cos, sin = math.cos(turn), math.sin(turn)
    half_x, half_y = size[0] / 2, size[1] / 2
    return [(p.x_mm + cos * x - sin * y, p.y_mm + sin * x + cos * y)
            for x, y in ((-half_x, -half_y), (half_x, -half_y), (half_x, half_y),
                         (-half_x, half_y))]


def _separated(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """Two convex outlines are apart when some edge direction separates them."""
    for shape in (a, b):
        for i in range(len(shape)):
            (x0, y0), (x1, y1) = shape[i], shape[(i + 1) % len(shape)]
            nx, ny = y0 - y1, x1 - x0
            span_a = [nx * x + ny * y for x, y in a]
            span_b = [nx * x + ny * y for x, y in b]
            scale = math.hypot(nx, ny)
            if (max(span_a) <= min(span_b) + EPS_MM * scale
                    or max(span_b) <= min(span_a) + EPS_MM * scale):
                return True
    return False


def _assert_laid_out(build: BuildPlan, recipe: Recipe) -> None:
    width, depth = _platform(recipe)
    margin = recipe.batching.margin_mm
    assert sorted(p.path for p in build.placements) == sorted(build.paths)
    footprints = {m.path: m.footprint_mm for m in build.models}
    outlines: list[list[tuple[float, float]]] = []
    for placement in build.placements:
        fx, fy = footprints[placement.path]
        # The placed area covers the model turned by its angle (a packer may add room, e.g.
        # for supports): the bounding box of the footprint rectangle at that angle.
        turn = math.radians(placement.angle_deg)
        cos, sin = abs(math.cos(turn)), abs(math.sin(turn))
        need_x, need_y = fx * cos + fy * sin, fx * sin + fy * cos
        assert placement.width_mm >= need_x - EPS_MM and placement.depth_mm >= need_y - EPS_MM
        assert recipe.batching.allow_rotation or not placement.rotated
        left, front, right, back = _bounds(placement)
        assert left >= -width / 2 + margin - EPS_MM and right <= width / 2 - margin + EPS_MM
        assert front >= -depth / 2 + margin - EPS_MM and back <= depth / 2 - margin + EPS_MM
        # Outlines nest: turned parts may share box corners, never area.
        outlines.append(_corners(placement, (fx, fy)))
    for i, a in enumerate(outlines):
        for b in outlines[i + 1:]:
            assert _separated(a, b), f"footprints overlap: {a} and {b}"


class TestPlanProperties:
    """Random models and batching settings give complete, valid plans."""

    @settings(max_examples=60, deadline=None)
    @given(recipe=recipes, specs=model_lists)
    def test_every_model_is_planned_once_on_the_platform_without_overlap(
        self, recipe: Recipe, specs: list[tuple[tuple[float, float, float], str | None]]
    ) -> None:
        models = [make_model(f"m{n}", size, case=case) for n, (size, case) in enumerate(specs)]
        plan = plan_builds(recipe, models)
        seen = Counter(p for b in plan.builds for p in b.paths)
        seen.update(r.path for r in plan.rejected)
        assert seen == Counter(m.path for m in models)
        limit = recipe.batching.max_models_per_build
        for build in plan.builds:
            assert build.models, "an empty build"
            assert limit is None or len(build.models) <= limit
            _assert_laid_out(build, recipe)
