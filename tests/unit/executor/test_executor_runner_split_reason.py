"""A build that does not fit its platform: split with the layout's reason, or, when the run
was cancelled meanwhile, cancelled instead of split."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from executor_support import (
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import BuildStatus, NullReporter, Runner, RunOptions
from preform_pipeline.plan.builds import Plan
from preform_pipeline.plan.graph import compile_graph

#: The Fuse 1's chamber takes one 150 mm cube at a time, never two.
FUSE_HEAD = (
    "name: fuse\nscene:\n  machine_type: FS30-1-0\n  material_code: FLP12G01\n"
    "  layer_thickness_mm: 0.11\nimport:\n  units: MILLIMETERS\n"
    "  repair_behavior: REPAIR\n"
)


def _two_cubes_in_one_build(tmp_path: Path) -> Plan:
    recipe = write_recipe(
        tmp_path,
        "steps:\n  - auto_pack\n  - save_form\nbatching:\n  on_overflow: split\n",
        head=FUSE_HEAD,
    )
    cubes = [write_box(tmp_path / "m", f"cube{i}", 150, 150, 150) for i in range(2)]
    plan = plan_for(recipe, cubes)
    models = tuple(m for b in plan.builds for m in b.models)
    first = replace(plan.builds[0], models=models, graph=compile_graph(plan.recipe, models))
    return replace(plan, builds=(first,))


class _CancelAtPacking(NullReporter):
    """Cancels the run as the packing step starts: the step still runs to its end (within
    the cancel grace), so the overflow is met in a cancelled run."""

    def __init__(self) -> None:
        self.runner: Runner | None = None

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        if step == "auto_pack" and self.runner is not None:
            self.runner.cancel()


class TestTheSplitsReason:
    """The split build's outcome and its ``build_split`` event say why it was split."""

    def test_the_outcome_and_the_event_carry_the_layout_s_reason(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        runner = Runner(
            _two_cubes_in_one_build(tmp_path), FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                               step_timeout_s=STEP_LIMIT_S),
            reporter=NullReporter(),
        )
        with capture_bound_logs() as logs:
            result = runner.run()
        parent = result.outcome("fuse-001")
        assert parent.status is BuildStatus.SPLIT
        # Either cube may be the one left out: the packing's order is the server's.
        assert parent.reason in {
            "2 models do not fit after 3 layout attempts (last spacing 0.5 mm): 1 of 2 models "
            f"does not fit in the build volume ({cube}); the scene is unchanged"
            for cube in ("cube0", "cube1")}
        (split,) = iter_events(logs, "build_split")
        assert split["reason"] == parent.reason


class TestOverflowInACancelledRun:
    """An overflow met after the run was cancelled ends the build as cancelled, unsplit."""

    def test_the_build_is_cancelled_as_interrupted_and_nothing_is_split(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        reporter = _CancelAtPacking()
        runner = Runner(
            _two_cubes_in_one_build(tmp_path), FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                               step_timeout_s=STEP_LIMIT_S, cancel_grace_s=30.0),
            reporter=reporter,
        )
        reporter.runner = runner
        with capture_bound_logs() as logs:
            result = runner.run()
        assert result.cancelled
        (outcome,) = result.outcomes
        assert (outcome.name, outcome.status, outcome.reason, outcome.children) == (
            "fuse-001", BuildStatus.CANCELLED, "the run was interrupted", ())
        assert list(iter_events(logs, "build_split")) == []
