"""A step's progress reaches the reporter (a progress bar) under the build's and the running
step's names, while that step runs."""

from __future__ import annotations

import threading
from pathlib import Path

from executor_support import (
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    five_boxes,
    plan_for,
    plan_without_rafts,
    write_box,
    write_recipe,
)
from test_executor_run_events import CARRY_STEPS

from preform_pipeline.executor import BuildStatus, NullReporter, RunOptions, run_plan

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


class _Progress(NullReporter):
    """Keeps each progress report with the step the reporter was last told had started in
    that build."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: dict[str, str] = {}
        self.reports: list[tuple[str, str, float, str | None]] = []

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        with self._lock:
            self.running[build] = step

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        with self._lock:
            self.reports.append((build, step, fraction, self.running.get(build)))


class TestStepProgress:
    """Each step's fractions are reported under its build and its own name, ending at 1."""

    def test_the_progress_names_the_build_and_the_running_step(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 20, 20, 10) for i in range(2)]
        farm.add()
        progress = _Progress()
        result = run_plan(plan_for(write_recipe(tmp_path, STEPS), boxes),
                          FakePool([s.url for s in farm.servers]),
                          options=RunOptions(output_root=tmp_path / "out",
                                             step_timeout_s=STEP_LIMIT_S),
                          reporter=progress)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert {(b, s, f) for b, s, f, _ in progress.reports} == {
            ("unit-001", "import_models", 0.5), ("unit-001", "import_models", 1.0),
            ("unit-001", "auto_support", 1.0), ("unit-001", "auto_layout", 1.0),
            ("unit-001", "save_form", 1.0)}
        assert [r for r in progress.reports if r[1] != r[3]] == []


class TestNoProgressBetweenSteps:
    """The final build imports the models carried into it between its steps, before its
    layout: that work reports no progress under any step's name."""

    def test_the_intake_reports_no_progress_of_its_own(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Five 90 x 60 mm boxes planned without rafts as builds of four and one; three fit
        # with their rafts, and the fourth is carried into the final build beside.
        boxes = five_boxes(tmp_path)
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
        farm.add()
        farm.add()
        progress = _Progress()
        result = run_plan(plan, FakePool([s.url for s in farm.servers]),
                          options=RunOptions(output_root=tmp_path / "out",
                                             step_timeout_s=STEP_LIMIT_S),
                          reporter=progress)
        assert result.ok
        assert [(o.name, len(o.models)) for o in result.outcomes] == [
            ("unit-001", 3), ("unit-002", 2)]
        steps = {(build, step) for build, step, _, _ in progress.reports}
        assert ("unit-002", "auto_layout") in steps
        assert [r for r in progress.reports if r[1] != r[3]] == []
