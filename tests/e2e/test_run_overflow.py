"""``preform-pipeline run`` carries on the models of a build that does not fit after all.

The planner leaves room for each supported model's raft as PreForm draws it (2 mm around
it); these simulated servers draw wider rafts (5 mm, ``--raft-border-mm``), so they disagree
with the plan: four 90 x 50 mm boxes planned onto one platform do not fit there. The build
takes the models that do not fit out of its scene and goes on; a new build prepares only
those.
"""

from __future__ import annotations

from pathlib import Path

from run_e2e_support import command, run_cli, write_recipe, write_settings

from preform_pipeline.geometry.stl import write_stl
from preform_pipeline.simulator.meshops import box_triangles

STEPS = """\
steps:
  - auto_support
  - auto_layout:
      model_spacing_mm: 2
  - save_form
batching:
  spacing_mm: 2
  margin_mm: 0
  layout_attempts: 2
  on_overflow: split
"""


def boxes(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"box{i}.stl"
        write_stl(path, box_triangles((0.0, 0.0, 0.0), (90.0, 50.0, 10.0)))
        paths.append(path)
    return paths


class TestLayoutOverflow:
    """After the recipe's layout attempts, a build that does not fit keeps its prepared models
    and carries only the overflow on to a new build."""

    def test_the_overflow_is_carried_on_and_the_rest_is_prepared_once(
        self, tmp_path: Path
    ) -> None:
        models = boxes(tmp_path / "models", 4)
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=2, extra_args='["--raft-border-mm", "5"]')
        run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings)))

        assert run.returncode == 0, run.stderr[-3000:]
        by_name = {b["build"]: b for b in run.builds()}
        parent = by_name["e2e-001"]
        assert parent["status"] == "succeeded"
        assert parent["layout_calls"] == 3  # the recipe's two attempts, then one after shedding
        assert parent["children"] == ["e2e-001+1"]
        carry = by_name["e2e-001+1"]
        assert carry["status"] == "succeeded" and carry["parent"] == "e2e-001"
        files = [*parent["source_files"], *carry["source_files"]]
        assert sorted(files) == sorted(map(str, models))
        forms = sorted(Path(p).name for b in (parent, carry) for p in b["outputs"])
        assert forms == ["e2e-001+1.form", "e2e-001.form"]
        assert [e["spacing_mm"] for e in run.events_named("layout_retry")] == [1.0]
        carried = run.events_named("overflow_carried")
        assert carried and carried[-1]["staying"] == len(parent["source_files"])
        assert run.events_named("build_split") == []


class TestOverflowIntoTheFinalBuild:
    """On several servers the last builds start together; models one of them carries on
    join the final (roomiest) build before its layout instead of opening a build."""

    def test_the_carried_model_joins_the_running_final_build(self, tmp_path: Path) -> None:
        # Planned: four boxes on one platform (2 mm rafts), four small cubes on another:
        # builds of the same work, so balancing them over the two servers moves nothing
        # (one cube alone would take a box into its build). The servers' 5 mm rafts fit
        # only three boxes: one is carried on while the cubes' build runs.
        models = boxes(tmp_path / "models", 4)
        for i in range(4):
            cube = tmp_path / "models" / f"cube{i}.stl"
            write_stl(cube, box_triangles((0.0, 0.0, 0.0), (30.0, 30.0, 10.0)))
            models.append(cube)
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=2, extra_args='["--raft-border-mm", "5"]')
        run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings)))

        assert run.returncode == 0, run.stderr[-3000:]
        builds = run.builds()
        assert sorted(b["build"] for b in builds) == ["e2e-001", "e2e-002"]
        by_name = {b["build"]: b for b in builds}
        assert all(b["status"] == "succeeded" for b in builds)
        assert by_name["e2e-001"]["children"] == []
        assert len(by_name["e2e-001"]["source_files"]) == 3
        assert len(by_name["e2e-002"]["source_files"]) == 5
        files = [f for b in builds for f in b["source_files"]]
        assert sorted(files) == sorted(map(str, models))
        taken = run.events_named("overflow_taken_in")
        carried = run.events_named("overflow_carried")[-1]["carried"]
        assert [e["models"] for e in taken] == [carried]
        # Bound on builds: ceil(sum of hull areas / platform area) + 1.
        assert len(builds) <= -(-(4 * 90 * 50 + 4 * 30 * 30) // (200 * 125)) + 1
