"""``preform-pipeline run`` splits a build whose models do not fit the platform after all.

The planner packs bare footprints; the server's layout also keeps room for each supported
model's raft (2 mm around it). Four 90 x 50 mm boxes fit one platform bare but not with
rafts, so the build is split in two, and each half fits.
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
    """After the recipe's layout attempts a build that does not fit is split and both halves
    are prepared."""

    def test_the_build_is_split_and_every_model_is_prepared_once(self, tmp_path: Path) -> None:
        models = boxes(tmp_path / "models", 4)
        recipe = write_recipe(tmp_path, STEPS)
        settings = write_settings(tmp_path, count=2)
        run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings)))

        assert run.returncode == 0, run.stderr[-3000:]
        by_name = {b["build"]: b for b in run.builds()}
        parent = by_name["e2e-001"]
        assert parent["status"] == "split"
        assert parent["layout_calls"] == 2  # the recipe's two layout attempts
        assert parent["outputs"] == []
        assert parent["children"] == ["e2e-001.1", "e2e-001.2"]
        children = [by_name[name] for name in parent["children"]]
        assert all(c["status"] == "succeeded" and c["parent"] == "e2e-001" for c in children)
        assert sorted(f for c in children for f in c["source_files"]) == sorted(map(str, models))
        forms = sorted(Path(p).name for c in children for p in c["outputs"])
        assert forms == ["e2e-001.1.form", "e2e-001.2.form"]
        assert [e["spacing_mm"] for e in run.events_named("layout_retry")] == [1.0]
        assert [e["build"] for e in run.events_named("build_split")] == ["e2e-001"]
