"""``preform-pipeline run`` with a recipe whose scene settings come from an ``.fps`` file:
``{material}`` in its output names and job name is the material the scene reports.

Real subprocesses throughout: the command line, its server pool, one simulator process. The
``.fps`` file is the simulator's own (what its save-fps-file writes), for Black V5.
"""

from __future__ import annotations

import json
from pathlib import Path

from run_e2e_support import command, fleet_jobs, printed_name, run_cli, write_settings

from preform_pipeline.simulator.options import write_fps
from preform_pipeline.simulator.scene import SceneSettings

RECIPE = """\
name: e2e
scene:
  machine_type: FORM-4-0
  fps_file: black.fps
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_layout
  - save_form
  - print:
      printer: SimulatedForm4-1
      job_name: "{material} {build}"
outputs:
  form: "{machine}-{material}/{build}.form"
  report: "{material}/{build}.json"
"""


class TestARecipeWithAnFpsFile:
    """The run's outputs and print are named by the material of the .fps file."""

    def test_the_form_report_and_print_carry_the_scenes_material(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        write_fps(SceneSettings("FORM-4-0", "FLGPBK05", 0.05), tmp_path / "black.fps")
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        model = sample_models_dir / "parts" / "l_bracket.stl"
        settings = write_settings(tmp_path, count=1)
        run = run_cli(tmp_path, command(tmp_path, recipe, [model], "--settings", str(settings)))
        assert run.returncode == 0, run.stderr[-3000:]
        (build,) = run.builds()
        name = build["build"]
        named = sorted(p.relative_to(run.out).as_posix() for p in run.out.rglob("*")
                       if p.is_file() and p.parts[len(run.out.parts)] not in (
                           "reports", "logs", ".checkpoints"))
        assert named == [f"FLGPBK05/{name}.json", f"FORM-4-0-FLGPBK05/{name}.form"]
        # The build's report names the scene's material too (the dashboard reads it there).
        report = json.loads((run.out / "FLGPBK05" / f"{name}.json").read_text(encoding="utf-8"))
        assert (report["machine_type"], report["material"]) == ("FORM-4-0", "FLGPBK05")
        (job,) = fleet_jobs(tmp_path)
        assert printed_name(job) == f"FLGPBK05 {name}"
