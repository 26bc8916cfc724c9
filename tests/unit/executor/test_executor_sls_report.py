"""A Fuse 1+ recipe on the simulator: reports carry the SLS figures, fills respect the recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe

from preform_pipeline.report import SLS_COLUMNS, build_to_dict, csv_rows

HEAD = """\
name: fuse
scene:
  machine_type: FS30-1-0
  material_code: FLP12G01
  layer_thickness_mm: 0.11
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
"""
BODY = """\
steps:
  - auto_pack:
      model_spacing_mm: 2
  - estimate
  - save_form
batching:
  packing_density: 0.1
"""
CHAMBER_ML = 165 * 165 * 300 / 1000


class TestFuseReport:
    """Each build's report has packing density, powder (ml, kg) and cooling times."""

    def test_sls_fields_and_the_recipes_density(self, tmp_path: Path, farm: SimFarm) -> None:
        parts = [write_box(tmp_path / "models", f"cube_{i:02d}", 40, 40, 40) for i in range(16)]
        plan = plan_for(write_recipe(tmp_path, BODY, head=HEAD), parts)
        # 16 x 64 ml against 0.1 of the chamber (817 ml): at most 12 cubes per build.
        assert len(plan.builds) == 2
        assert all(b.fill_ratio <= 0.1 for b in plan.builds)
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     dry_run=True)
        assert result.ok, [o.reason for o in result.outcomes]
        for outcome in result.outcomes:
            data = build_to_dict(outcome)
            sls = data["sls"]
            assert sls is not None and set(SLS_COLUMNS) <= set(sls)
            parts_ml = 64.0 * len(outcome.models)
            assert sls["sintered_powder_ml"] >= parts_ml - 1e-3
            assert sls["sintered_powder_ml"] / CHAMBER_ML <= 0.1
            assert 0 < sls["packing_density"] <= 1 and 0 < sls["mass_packing_density"] <= 1
            assert sls["total_powder_kg"] >= sls["sintered_powder_kg"]
            assert sls["cool_to_removal_s"] > 0 and sls["cool_to_room_temperature_s"] > 0
            assert data["estimated_print_time_s"] == pytest.approx(sls["print_time_s"], abs=0.1)
        row = csv_rows(result)[0]
        assert all(row[column] for column in SLS_COLUMNS)
