"""``preform-pipeline run`` states units or holds the model: plan line, report and reason."""

from __future__ import annotations

from pathlib import Path

from run_e2e_support import command, run_cli, write_settings

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles

RECIPE = """\
name: shop
scene:
  machine_type: FORM-4L-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: DETECTED
  repair_behavior: REPAIR
steps:
  - save_form
"""


class TestSidecarUnits:
    """Sidecars state units (a file's own over its case's); without them an ambiguous part is
    held."""

    def test_sidecar_units_reach_the_report_and_their_absence_holds(
        self, tmp_path: Path
    ) -> None:
        case = tmp_path / "inbox" / "C-7"
        case.mkdir(parents=True)
        write_stl(case / "bracket.stl", box_triangles((0.0, 0.0, 0.0), (8.0, 3.0, 0.5)))
        write_stl(case / "housing.stl", box_triangles((0.0, 0.0, 0.0), (180.0, 100.0, 40.0)))
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        settings = write_settings(tmp_path, count=1)
        argv = command(tmp_path, recipe, [case.parent], "--dry-run", "--settings", str(settings))

        held = run_cli(tmp_path, argv)
        assert held.returncode == 1
        rejection, with_it = held.report["rejected"]
        assert rejection["path"].endswith("bracket.stl")
        assert "8.0 x 3.0 x 0.5 mm" in rejection["reason"]
        assert "203.2 x 76.2 x 12.7 mm" in rejection["reason"]
        # A case prints whole or not at all (plan/held.py): the housing waits with it.
        assert with_it["path"].endswith("housing.stl")
        assert "held with its case C-7: bracket.stl cannot be prepared" in with_it["reason"]
        assert held.builds() == []

        # The case says millimetres; the bracket's own sidecar says inches and wins.
        (case / "C-7.yaml").write_text("units: mm\n", encoding="utf-8")
        (case / "bracket.yaml").write_text("units: INCHES\n", encoding="utf-8")
        stated = run_cli(tmp_path, argv)
        assert stated.returncode == 0, stated.stderr[-3000:]
        assert "units: 1 INCHES (sidecar), 1 MILLIMETERS (sidecar)" in stated.stdout
        units = sorted(u for b in stated.builds() for u in b["units"])
        assert units == ["bracket.stl: INCHES (sidecar)", "housing.stl: MILLIMETERS (sidecar)"]
