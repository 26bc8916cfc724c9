"""A run cancelled just as a layout carries models on to a new build: the new build never
runs, and the run's result still lists it, under the build it came from."""

from __future__ import annotations

from pathlib import Path

from executor_support import (
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_without_rafts,
    write_box,
    write_recipe,
)
from test_executor_run_events import CARRY_STEPS

from preform_pipeline.executor import BuildStatus, NullReporter, Runner, RunOptions
from preform_pipeline.plan.builds import BuildPlan

UNFINISHED = "the run was interrupted before this build finished"


class _CancelOnAdd(NullReporter):
    """A reporter that notes each added build with its parent, and cancels the run there
    (as a person pressing Ctrl-C the moment the new build is announced)."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.added: list[tuple[str, str | None, int]] = []

    def build_added(self, build: BuildPlan, *, parent: str | None = None) -> None:
        self.added.append((build.name, parent, len(build.models)))
        assert self.runner is not None
        self.runner.cancel()


class TestCancelledAsTheCarryIsAdded:
    """The carried build is announced with its parent, never started, and listed as not
    finished with its parent, its model and its share of the resin."""

    def test_the_result_lists_the_carry_that_never_ran(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Four 90 x 60 mm boxes planned without rafts: one build, three fit with their rafts.
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(4)]
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
        (planned,) = plan.builds
        farm.add()
        reporter = _CancelOnAdd()
        runner = Runner(plan, FakePool([s.url for s in farm.servers]),
                        options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                           step_timeout_s=30.0, cancel_grace_s=2.0),
                        reporter=reporter)
        reporter.runner = runner
        with capture_bound_logs() as logs:
            result = runner.run()
        assert reporter.added == [("unit-001+1", "unit-001", 1)]
        assert result.cancelled and not result.ok
        parent, carry = result.outcomes
        assert (parent.name, len(parent.models), parent.children) == (
            "unit-001", 3, ("unit-001+1",))
        assert parent.status is BuildStatus.CANCELLED
        assert (carry.name, carry.status, carry.reason, carry.parent) == (
            "unit-001+1", BuildStatus.CANCELLED, UNFINISHED, "unit-001")
        assert carry.index > parent.index and carry.attempts == ()
        by_name = {m.path.name: m for m in planned.models}
        assert sorted((*parent.models, *carry.models)) == sorted(by_name)
        (left,) = carry.models
        assert carry.source_files == (str(by_name[left].path),)
        assert carry.estimated_volume_ml is not None
        assert abs(carry.estimated_volume_ml - planned.estimated_volume_ml / 4) < 1e-9
        # It never started: no event of its own, and no lease was taken for it.
        assert [e for e in logs if e.get("build") == "unit-001+1"] == []
        (added,) = iter_events(logs, "overflow_build_added")
        assert (added["build"], added["carry"], added["models"]) == ("unit-001", "unit-001+1", 1)
