"""When a layout's carried models go on: right after that layout, while the build that
carried them still runs its later steps, not when it ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from executor_support import (
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    five_boxes,
    iter_events,
    plan_without_rafts,
    run,
    write_box,
    write_recipe,
)
from test_executor_run_events import CARRY_STEPS

from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    NullReporter,
    RunOptions,
    RunResult,
    run_plan,
)
from preform_pipeline.geometry.stl import write_stl
from preform_pipeline.plan.builds import units_label
from preform_pipeline.simulator.meshops import box_triangles


class TestCarryAfterLayout:
    """The carry is placed as soon as the layout has carried it, before the build saves."""

    def test_the_new_build_is_added_before_the_build_that_carried_it_goes_on(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Four 90 x 60 mm boxes planned without rafts: one build, of which three fit with
        # their rafts; one server, so the carry can only run after it.
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(4)]
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
        assert [len(b.models) for b in plan.builds] == [4]
        farm.add()
        with capture_bound_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        assert [(o.name, o.status, len(o.models), o.children) for o in result.outcomes] == [
            ("unit-001", BuildStatus.SUCCEEDED, 3, ("unit-001+1",)),
            ("unit-001+1", BuildStatus.SUCCEEDED, 1, ()),
        ]
        said = [(e["event"], e.get("build"), e.get("step")) for e in logs if e["event"] in (
            "step_finished", "step_started", "overflow_build_added", "build_finished")
            and e.get("build") == "unit-001"]
        assert said == [
            ("step_started", "unit-001", "create_scene"),
            ("step_finished", "unit-001", "create_scene"),
            ("step_started", "unit-001", "import_models"),
            ("step_finished", "unit-001", "import_models"),
            ("step_started", "unit-001", "auto_support"),
            ("step_finished", "unit-001", "auto_support"),
            ("step_started", "unit-001", "auto_layout"),
            ("step_finished", "unit-001", "auto_layout"),
            ("overflow_build_added", "unit-001", None),
            ("step_started", "unit-001", "save_form"),
            ("step_finished", "unit-001", "save_form"),
            ("build_finished", "unit-001", None),
        ]
        (added,) = iter_events(logs, "overflow_build_added")
        assert (added["carry"], added["models"]) == ("unit-001+1", 1)

    def test_the_build_that_carried_lists_only_the_models_that_stayed(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(4)]
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
        (planned,) = plan.builds
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        parent, carry = result.outcomes
        by_name = {m.path.name: m for m in planned.models}
        assert len(parent.models) == 3 and len(carry.models) == 1
        assert sorted((*parent.models, *carry.models)) == sorted(by_name)
        stayed = [by_name[name] for name in parent.models]
        assert parent.source_files == tuple(str(m.path) for m in stayed)
        assert parent.units == tuple(units_label(m) for m in stayed)
        assert carry.units == (units_label(by_name[carry.models[0]]),)
        # The planned resin is shared by volume: equal boxes, three quarters stay.
        assert parent.estimated_volume_ml == pytest.approx(planned.estimated_volume_ml * 3 / 4)
        assert carry.estimated_volume_ml == pytest.approx(planned.estimated_volume_ml / 4)

    def test_the_resin_is_shared_by_volume_when_the_models_hold_under_a_cubic_millimetre(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Four open 90 x 60 mm sheets, each with a 0.5 mm cube through it: 0.125 mm3 each
        # (the sheet lies in the plane of the mesh's centre, so it adds no volume), 0.5 mm3
        # in all. The share of the planned resin is still by volume, not by a floor of 1 mm3.
        plates = [_plate_with_a_speck(tmp_path / "m", f"plate{i}") for i in range(4)]
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), plates)
        (planned,) = plan.builds
        assert sum(m.volume_mm3 for m in planned.models) == pytest.approx(0.5)
        assert planned.estimated_volume_ml > 0
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        parent, carry = result.outcomes
        assert (len(parent.models), len(carry.models)) == (3, 1)
        assert parent.estimated_volume_ml == pytest.approx(planned.estimated_volume_ml * 3 / 4)
        assert carry.estimated_volume_ml == pytest.approx(planned.estimated_volume_ml / 4)


def _plate_with_a_speck(folder: Path, name: str) -> Path:
    """``name``.stl: an open 90 x 60 mm sheet at z = 0 through a closed 0.5 mm cube centred
    on that plane (a model of 0.125 mm3 with a 90 x 60 mm footprint)."""
    folder.mkdir(parents=True, exist_ok=True)
    sheet = np.array([[[0.0, 0.0, 0.0], [90.0, 0.0, 0.0], [90.0, 60.0, 0.0]],
                      [[0.0, 0.0, 0.0], [90.0, 60.0, 0.0], [0.0, 60.0, 0.0]]])
    speck = box_triangles((0.0, 0.0, -0.25), (0.5, 0.5, 0.25))
    path = folder / f"{name}.stl"
    write_stl(path, np.concatenate([sheet, speck]), name=name)
    return path


class TestFinalBuildRetry:
    """A final build retried after its layout does not wait for the others again: its
    intake closed with that layout."""

    def test_the_retry_of_the_final_build_takes_no_second_intake(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = five_boxes(tmp_path)
        steps = CARRY_STEPS.replace("  - save_form\n", "  - save_form\n  - screenshot\n")
        plan = plan_without_rafts(write_recipe(tmp_path, steps), boxes)
        assert [len(b.models) for b in plan.builds] == [4, 1]
        # Each server fails its first screenshot: both builds fail after their layouts.
        farm.add(ScriptedFaults(fail={"save_screenshot": 1}))
        farm.add(ScriptedFaults(fail={"save_screenshot": 1}))
        with capture_bound_logs() as logs:
            # The final build waits for the other's layout at most a step deadline: one that
            # outlasts every wait keeps a loaded machine from ending that wait early.
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3)
        assert result.ok
        assert [(o.name, len(o.models), len(o.attempts)) for o in result.outcomes] == [
            ("unit-001", 3, 2), ("unit-002", 2, 2)]
        # The final build waited once, before its first layout, and took the carried box.
        waited = [(e["build"], e["taken"]) for e in iter_events(logs, "final_build_waited")]
        assert waited == [("unit-002", 1)]


class _Finished(NullReporter):
    """Sets ``finished[name]`` as each build ends."""

    def __init__(self, names: list[str]) -> None:
        self.finished = {name: threading.Event() for name in names}

    def build_finished(self, outcome: BuildOutcome) -> None:
        self.finished[outcome.name].set()


def _run_two_builds(
    tmp_path: Path, farm: SimFarm, stop_reason: Callable[[str], str | None],
    reporter: _Finished,
) -> RunResult:
    """Five boxes planned without rafts (unit-001 of four, carrying one; unit-002 the final
    build) on two servers, each build asked ``stop_reason`` before each step; a step
    deadline that outlasts every wait of the test."""
    boxes = five_boxes(tmp_path)
    plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
    assert [len(b.models) for b in plan.builds] == [4, 1]
    farm.add()
    farm.add()
    return run_plan(plan, FakePool([s.url for s in farm.servers]),
                    options=RunOptions(output_root=tmp_path / "out", step_timeout_s=WAIT_S * 3,
                                       stop_reason=stop_reason),
                    reporter=reporter)


class TestFinalBuildDoesNotWaitPastALayout:
    """The final build waits for the others only until their layouts: a build that is
    slow after its layout, or that ended before it, does not hold it up."""

    def test_the_final_build_ends_while_the_other_is_held_after_its_layout(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        held, release = threading.Event(), threading.Event()
        asked: list[str] = []

        def hold_after_layout(build: str) -> str | None:
            # Asked before each step: unit-001's fifth step (save_form) follows its layout.
            asked.append(build)
            if build == "unit-001" and asked.count(build) == 5:
                held.set()
                release.wait(WAIT_S * 2)
            return None

        reporter = _Finished(["unit-001", "unit-002"])
        problems: list[str] = []

        def watch() -> None:
            if not held.wait(WAIT_S):
                problems.append("unit-001 never reached its save_form")
            elif not reporter.finished["unit-002"].wait(WAIT_S):
                problems.append("the final build waited for unit-001 past its layout")
            elif reporter.finished["unit-001"].is_set():
                problems.append("unit-001 ended while it was held")
            release.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        with capture_bound_logs() as logs:
            result = _run_two_builds(tmp_path, farm, hold_after_layout, reporter)
        watcher.join(WAIT_S)
        assert problems == []
        assert result.ok
        assert [(o.name, len(o.models)) for o in result.outcomes] == [
            ("unit-001", 3), ("unit-002", 2)]
        assert [(e["build"], e["taken"]) for e in iter_events(logs, "final_build_waited")] == [
            ("unit-002", 1)]

    def test_a_build_that_ends_before_its_layout_does_not_hold_the_final_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        asked: list[str] = []

        def stop_before_layout(build: str) -> str | None:
            # unit-001's fourth step is its layout: its node lost the build before it.
            asked.append(build)
            return "lease lost" if build == "unit-001" and asked.count(build) == 4 else None

        reporter = _Finished(["unit-001", "unit-002"])
        waited: list[bool] = []
        watcher = threading.Thread(
            target=lambda: waited.append(reporter.finished["unit-002"].wait(WAIT_S)))
        watcher.start()
        result = _run_two_builds(tmp_path, farm, stop_before_layout, reporter)
        watcher.join(WAIT_S)
        assert waited == [True], "the final build waited for a build that had ended"
        assert [(o.name, o.status, o.reason) for o in result.outcomes] == [
            ("unit-001", BuildStatus.CANCELLED, "lease lost"),
            ("unit-002", BuildStatus.SUCCEEDED, None),
        ]
