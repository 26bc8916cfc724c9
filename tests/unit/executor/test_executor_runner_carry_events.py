"""Where a layout's carried models go, as the result and the log say it: into a build that
has not started (which is then no child of the build they came from), into the final build,
or into a new build, also when the build they came from failed. Each event names the build
the models came from by itself: the last place is reached after the build's own thread has
left its log context, so the plain ``capture_logs`` here (no context variables) is what a
log reader gets there."""

from __future__ import annotations

from pathlib import Path

from executor_support import (
    FakePool,
    SimFarm,
    five_boxes,
    iter_events,
    plan_without_rafts,
    run,
    write_recipe,
)
from structlog.testing import capture_logs
from test_executor_overflow_shed import _full, _plan, _serve_refusing
from test_executor_run_events import CARRY_STEPS

from preform_pipeline.executor import BuildStatus
from preform_pipeline.simulator.layout import MODELS_DO_NOT_FIT


class TestCarryIntoAWaitingBuild:
    """On one server the second build has not started when the first one's layout carries a
    model: the model joins it, and it is not a child of the first build."""

    def test_the_waiting_build_takes_the_model_and_is_no_child(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), five_boxes(tmp_path))
        assert [len(b.models) for b in plan.builds] == [4, 1]
        farm.add()
        with capture_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        assert result.ok
        assert [(o.name, len(o.models), o.children, o.parent) for o in result.outcomes] == [
            ("unit-001", 3, (), None), ("unit-002", 2, (), None)]
        (joined,) = iter_events(logs, "overflow_joined_build")
        assert (joined["build"], joined["into"], joined["models"]) == ("unit-001", "unit-002", 1)
        assert list(iter_events(logs, "overflow_build_added")) == []


class TestCarryIntoTheFinalBuild:
    """On two servers the final build is running beside, waiting for the other's layout:
    the carried model joins it, and the event names both builds and the count."""

    def test_the_event_names_the_build_the_model_came_from(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), five_boxes(tmp_path))
        farm.add()
        farm.add()
        with capture_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        assert result.ok
        assert [(o.name, len(o.models), o.children) for o in result.outcomes] == [
            ("unit-001", 3, ()), ("unit-002", 2, ())]
        (joined,) = iter_events(logs, "overflow_joined_build")
        assert (joined["build"], joined["into"], joined["models"]) == ("unit-001", "unit-002", 1)


class TestCarryOfAFailedBuild:
    """A build whose last model still does not fit after the others were carried fails, and
    its carried model still goes on to a new build, which the event names with its origin."""

    def test_the_new_build_is_logged_with_the_build_it_came_from(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve_refusing(farm, _full(), (MODELS_DO_NOT_FIT, "still too large: 1 of 1"))
        plan = _plan(tmp_path, {"big": (60.0, 40.0), "little": (20.0, 20.0)})
        with capture_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        parent, carry = result.outcome("unit-001"), result.outcome("unit-001+1")
        assert parent.status is BuildStatus.FAILED
        assert (parent.models, parent.children) == (("little.stl",), ("unit-001+1",))
        assert (carry.status, carry.models, carry.parent) == (
            BuildStatus.SUCCEEDED, ("big.stl",), "unit-001")
        (added,) = iter_events(logs, "overflow_build_added")
        assert (added["build"], added["carry"], added["models"]) == ("unit-001", "unit-001+1", 1)
        assert list(iter_events(logs, "overflow_joined_build")) == []


#: CARRY_STEPS with a label before the layout: a step the final build could not repeat for
#: models joining it after its own import.
LABELLED_CARRY_STEPS = CARRY_STEPS.replace(
    "steps:\n",
    "steps:\n  - label:\n      text: \"{job}\"\n      font_size_mm: 3\n      depth_mm: 0.5\n"
    "      placement: {face: front, margin_mm: 1, fit: fail}\n",
    1,
)


class TestNoIntakeWhenTheFinalBuildCannotRepeatItsSteps:
    """With a label before the layout the final build takes no newcomers: a model carried
    while it runs beside goes on to a build of its own, labelled like the others."""

    def test_the_carried_model_gets_a_new_build_not_the_running_final_one(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = plan_without_rafts(
            write_recipe(tmp_path, LABELLED_CARRY_STEPS), five_boxes(tmp_path))
        assert [len(b.models) for b in plan.builds] == [4, 1]
        farm.add()
        farm.add()
        with capture_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        assert result.ok
        assert sorted((o.name, len(o.models), o.parent) for o in result.outcomes) == [
            ("unit-001", 3, None), ("unit-001+1", 1, "unit-001"), ("unit-002", 1, None)]
        assert list(iter_events(logs, "overflow_joined_build")) == []
        (added,) = iter_events(logs, "overflow_build_added")
        assert (added["build"], added["carry"], added["models"]) == ("unit-001", "unit-001+1", 1)
