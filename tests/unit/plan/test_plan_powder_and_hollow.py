"""Hollowed parts are priced as shells; SLS builds fill up to the recipe's packing density."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.plan.builds import plan_builds, read_model
from preform_pipeline.recipes.model import ImportSpec
from tests.unit.plan.planning_factories import box_triangles, make_recipe, make_step

MM = ImportSpec(units="MILLIMETERS")


class TestHollowPricing:
    """A hollowed box costs its shell, a part too thin to hollow its solid."""

    def test_the_shell_is_priced_not_the_solid(self, tmp_path: Path) -> None:
        path = tmp_path / "box.stl"
        write_stl(path, box_triangles(40, 40, 40))
        model = read_model(path, import_spec=MM)
        hollow = make_step("hollow", options={"wall_thickness_mm": 2.0})
        solid_plan = plan_builds(make_recipe(steps=("auto_layout",)), [model])
        hollow_plan = plan_builds(make_recipe(steps=(hollow, "auto_layout")), [model])
        assert solid_plan.total_volume_ml == pytest.approx(64.0)
        assert hollow_plan.total_volume_ml == pytest.approx(6 * 40 * 40 * 2.0 / 1000)

    def test_a_thin_plate_stays_solid(self, tmp_path: Path) -> None:
        path = tmp_path / "plate.stl"
        write_stl(path, box_triangles(40, 40, 1))
        model = read_model(path, import_spec=MM)
        hollow = make_step("hollow", options={"wall_thickness_mm": 2.0})
        plan = plan_builds(make_recipe(steps=(hollow, "auto_layout")), [model])
        assert plan.total_volume_ml == pytest.approx(1.6)


class TestPackingDensity:
    """The recipe's batching.packing_density decides how much one SLS build is offered."""

    def test_a_denser_recipe_needs_fewer_builds(self, tmp_path: Path) -> None:
        path = tmp_path / "cube.stl"
        write_stl(path, box_triangles(50, 50, 50))
        model = read_model(path, import_spec=MM)
        models = [replace(model, path=tmp_path / f"cube_{i}.stl") for i in range(24)]
        base = make_recipe(machine="FS30-1-0", material="FLP12G01", steps=("auto_pack",),
                           technology="SLS")
        # 24 x 125 ml = 3000 ml against an 8168 ml chamber: 0.1 needs 4 builds, 0.4 one.
        sparse = replace(base, batching=replace(base.batching, packing_density=0.1))
        dense = replace(base, batching=replace(base.batching, packing_density=0.4))
        assert len(plan_builds(sparse, models).builds) == 4
        assert len(plan_builds(dense, models).builds) == 1


class TestPowderEstimate:
    """An SLS build's plan carries its bed, powder, print and cooling figures."""

    def test_the_figures_are_consistent(self, tmp_path: Path) -> None:
        path = tmp_path / "cube.stl"
        write_stl(path, box_triangles(50, 50, 50))
        model = read_model(path, import_spec=MM)
        models = [replace(model, path=tmp_path / f"cube_{i}.stl") for i in range(10)]
        recipe = make_recipe(machine="FS30-1-0", material="FLP12G01", steps=("auto_pack",),
                             technology="SLS")
        recipe = replace(recipe, batching=replace(recipe.batching, packing_density=0.2))
        (build,) = plan_builds(recipe, models).builds
        powder = build.powder
        assert powder is not None
        assert powder.sintered_powder_ml == pytest.approx(1250.0)
        assert powder.sintered_powder_kg == pytest.approx(1.25 * 1.01)
        # 1250 ml at 0.2 of a 165 x 165 mm floor: a bed about 230 mm high.
        assert powder.bed_height_mm == pytest.approx(1250e3 / (165 * 165 * 0.2))
        assert powder.packing_density == pytest.approx(0.2)
        assert powder.total_powder_kg > powder.sintered_powder_kg
        assert powder.cool_to_removal_s > 0 and powder.cool_to_room_temperature_s > 0
        assert powder.print_time_s > 0
        assert plan_builds(make_recipe(), [model]).builds[0].powder is None
