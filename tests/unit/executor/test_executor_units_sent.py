"""The import is sent the units the planner decided, so the server's part is the planned size."""

from __future__ import annotations

from pathlib import Path

import pytest
from executor_support import FakePool, SimFarm, run, write_box, write_recipe

from preform_pipeline.plan.builds import Rejection, plan_builds, read_models, recipe_machine
from preform_pipeline.recipes import load_recipe
from preform_pipeline.simulator.formfile import load_form

HEAD = """\
name: shop
scene:
  machine_type: FORM-4L-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: DETECTED
  repair_behavior: REPAIR
"""
STATED = """\
  units_by_path:
    - match: inch_parts
      units: INCHES
    - match: "*.stl"
      units: MILLIMETERS
"""
STEPS = "steps:\n  - save_form\n"

#: File units and the size the server must hold (mm) when units are stated.
PARTS = {
    ("inch_parts", "bracket"): ((8.0, 3.0, 0.5), (203.2, 76.2, 12.7)),
    ("metric", "pin"): ((5.0, 2.0, 2.0), (5.0, 2.0, 2.0)),
    ("metric", "part50"): ((50.0, 30.0, 20.0), (50.0, 30.0, 20.0)),
    ("metric", "part180"): ((180.0, 100.0, 40.0), (180.0, 100.0, 40.0)),
}


def _served_sizes(tmp_path: Path, farm: SimFarm, head: str) -> tuple[dict[str, tuple[float, ...]],
                                                                      list[Rejection]]:
    paths = [write_box(tmp_path / "models" / folder, name, *size)
             for (folder, name), (size, _) in PARTS.items()]
    recipe = load_recipe(write_recipe(tmp_path, STEPS, head=head))
    rejected: list[Rejection] = []
    models = read_models(paths, import_spec=recipe.import_options, rejected=rejected,
                         machine=recipe_machine(recipe))
    plan = plan_builds(recipe, models, rejected=rejected)
    farm.add()
    result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out", dry_run=True)
    assert result.ok or result.rejected, [o.reason for o in result.outcomes]
    sizes: dict[str, tuple[float, ...]] = {}
    for outcome in result.outcomes:
        form = next(p for p in outcome.outputs if p.suffix == ".form")
        for model in load_form(form, "check").models.values():
            sizes[Path(model.original_file).stem] = tuple(sorted(model.size()))
    return sizes, list(plan.rejected)


class TestUnitsSent:
    """What the server imported matches the units stated or judged by the planner."""

    def test_stated_units_reach_the_server(self, tmp_path: Path, farm: SimFarm) -> None:
        sizes, rejected = _served_sizes(tmp_path, farm, HEAD + STATED)
        assert rejected == []
        for (_, name), (_, served) in PARTS.items():
            assert sizes[name] == pytest.approx(sorted(served), abs=1e-3), name

    def test_unstated_units_send_only_the_judged_parts(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        sizes, rejected = _served_sizes(tmp_path, farm, HEAD)
        assert sorted(r.path.name for r in rejected) == ["bracket.stl", "pin.stl"]
        assert set(sizes) == {"part50", "part180"}
        assert sizes["part50"] == pytest.approx([20.0, 30.0, 50.0], abs=1e-3)
        assert sizes["part180"] == pytest.approx([40.0, 100.0, 180.0], abs=1e-3)
