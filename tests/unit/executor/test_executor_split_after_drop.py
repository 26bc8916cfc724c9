"""A build split after one of its cases was dropped: the halves hold only the models still
in the build, so a dropped case is never imported again and its files stay failed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from preform_pipeline.executor import BuildStatus
from preform_pipeline.plan.graph import compile_graph
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)

FUSE = (
    "name: fuse\nscene:\n  machine_type: FS30-1-0\n  material_code: FLP12G01\n"
    "  layer_thickness_mm: 0.11\nimport:\n  units: MILLIMETERS\n"
    "  repair_behavior: REPAIR\n"
)
STEPS = """\
on_model_failure: drop_case
steps:
  - label:
      text: "{case_id}"
      font_size_mm: 3
      depth_mm: 0.5
      placement: {face: front, margin_mm: 1, fit: fail}
  - auto_pack
  - save_form
batching:
  on_overflow: split
"""
#: A case id too long for its label: that case fails the label step and is dropped.
LONG = "case-" + "x" * 40


class TestASplitAfterADroppedCase:
    """The dropped case is not part of either half."""

    def test_the_halves_hold_only_the_cases_left_and_the_dropped_one_is_not_run_again(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        root = tmp_path / "models"
        write_box(root / "case-1", "first", 150, 150, 150)
        write_box(root / LONG, "small", 30, 20, 15)
        write_box(root / "case-2", "second", 150, 150, 150)
        plan = plan_for(write_recipe(tmp_path, STEPS, head=FUSE),
                        [root / "case-1", root / LONG, root / "case-2"])
        # The two 150 mm cubes fit the chamber one at a time, never together: one build of
        # all three cases makes the pack overflow after the long case was dropped.
        models = tuple(m for b in plan.builds for m in b.models)
        assert len(models) == 3
        only = replace(plan.builds[0], models=models, graph=compile_graph(plan.recipe, models))
        plan = replace(plan, builds=(only,))
        farm.add()
        dropped: list[tuple[str, Path, str]] = []
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     on_model_dropped=lambda b, p, r: dropped.append((b, p, r)))
        parent = result.outcome(only.name)
        assert parent.status is BuildStatus.SPLIT, parent.reason
        assert [p.parent.name for _, p, _ in dropped] == [LONG]
        halves = [result.outcome(name) for name in parent.children]
        assert [h.status for h in halves] == [BuildStatus.SUCCEEDED] * 2
        assert sorted(Path(m).name for h in halves for m in h.models) == [
            "first.stl", "second.stl"
        ]
        assert all(not h.dropped for h in halves)
