"""A step's progress reaches the reporter (a progress bar) under the build's and the running
step's names, while that step runs."""

from __future__ import annotations

import threading
from pathlib import Path

from executor_support import FakePool, SimFarm, plan_for, write_box, write_recipe

from preform_pipeline.executor import BuildStatus, NullReporter, RunOptions, run_plan

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


class _Progress(NullReporter):
    """Keeps each progress report with the step the reporter was last told had started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: str | None = None
        self.reports: list[tuple[str, str, float, str | None]] = []

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        with self._lock:
            self.running = step

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        with self._lock:
            self.reports.append((build, step, fraction, self.running))


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
                          options=RunOptions(output_root=tmp_path / "out", step_timeout_s=10.0),
                          reporter=progress)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert {(b, s, f) for b, s, f, _ in progress.reports} == {
            ("unit-001", "import_models", 0.5), ("unit-001", "import_models", 1.0),
            ("unit-001", "auto_support", 1.0), ("unit-001", "auto_layout", 1.0),
            ("unit-001", "save_form", 1.0)}
        assert all(step == running for _, step, _, running in progress.reports)
