"""The times a run reports, read from the run's clock: each attempt's busy time, each step's
elapsed time, the build's duration and the run's wall time."""

from __future__ import annotations

from pathlib import Path

import pytest
from executor_support import (
    STEP_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)

from preform_pipeline.clock import ManualClock
from preform_pipeline.executor import BuildStatus, NullReporter, RunOptions, run_plan
from preform_pipeline.simulator.protocol import ProgressCallback, SimError

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


class _Slow(ScriptedFaults):
    """Scripted faults whose operations in ``takes`` move the run's clock on by their time,
    as if the server had worked that long (before answering, or before failing)."""

    def __init__(self, clock: ManualClock, takes: dict[str, float],
                 fail: dict[str, int] | None = None) -> None:
        super().__init__(fail=fail or {})
        self.clock = clock
        self.takes = takes

    def simulated_error(self, operation_id: str) -> SimError | None:
        error = super().simulated_error(operation_id)
        if error is not None:
            self.clock.advance(self.takes.get(operation_id, 0.0))
        return error

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        self.clock.advance(self.takes.get(operation_id, 0.0))
        super().during_operation(operation_id, progress)


class _Steps(NullReporter):
    """Keeps each step start as a progress display gets it."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, int, int]] = []

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        self.started.append((build, step, index, total))


class TestTimesOnTheRunsClock:
    """A build whose first attempt spent 3.0008 s up to a server fault and whose retry
    spent 5.0004 s reports those busy times, their sum as its duration, and step times to
    match, rounded to the millisecond in the events."""

    def test_attempts_steps_build_and_run_report_the_clocks_time(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        clock = ManualClock()
        farm.add(_Slow(clock, {"auto_support": 2.0004, "auto_layout": 1.0004},
                       fail={"auto_layout": 1}))
        farm.add(_Slow(clock, {"auto_layout": 5.0004}))
        boxes = [write_box(tmp_path / "m", f"box{i}", 20, 20, 10) for i in range(2)]
        reporter = _Steps()
        with capture_bound_logs() as logs:
            result = run_plan(
                plan_for(write_recipe(tmp_path, STEPS), boxes),
                FakePool([s.url for s in farm.servers]),
                options=RunOptions(output_root=tmp_path / "out", step_timeout_s=STEP_LIMIT_S),
                reporter=reporter, clock=clock,
            )
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [(a.number, a.server, a.error_type, a.resumed_from)
                for a in outcome.attempts] == [
            (1, "server-1", "ServerInternalError", None), (2, "server-2", None, "auto_support")]
        assert [a.busy_s for a in outcome.attempts] == [pytest.approx(3.0008),
                                                        pytest.approx(5.0004)]
        assert outcome.duration_s == pytest.approx(8.0012)
        assert result.wall_s == pytest.approx(8.0012)
        # The events round to the millisecond.
        (finished,) = iter_events(logs, "build_finished")
        assert finished["duration_s"] == 8.001
        (closing,) = iter_events(logs, "run_finished")
        assert closing["wall_s"] == 8.001
        steps = [(e["event"], e["step"], e["kind"], e["server"], e["elapsed_s"]) for e in logs
                 if e["event"] in ("step_finished", "step_failed")]
        # (Each step's id is its kind in this recipe.)
        assert steps == [
            ("step_finished", "create_scene", "create_scene", "server-1", 0.0),
            ("step_finished", "import_models", "import_models", "server-1", 0.0),
            ("step_finished", "auto_support", "auto_support", "server-1", 2.0),
            ("step_failed", "auto_layout", "auto_layout", "server-1", 1.0),
            ("step_finished", "auto_layout", "auto_layout", "server-2", 5.0),
            ("step_finished", "save_form", "save_form", "server-2", 0.0),
        ]
        assert all(isinstance(e["elapsed_s"], float) for e in logs if "elapsed_s" in e)
        # Each start, numbered within the attempt's steps, for the display and the log.
        order = ["create_scene", "import_models", "auto_support", "auto_layout", "save_form"]
        assert reporter.started == [
            *(("unit-001", step, i, 5) for i, step in enumerate(order[:4], start=1)),
            # The retry resumes after auto_support: its later steps keep their numbers.
            ("unit-001", "auto_layout", 4, 5), ("unit-001", "save_form", 5, 5)]
        starts = [(e["step"], e["kind"], e["index"], e["of"])
                  for e in iter_events(logs, "step_started")]
        assert starts == [(step, step, index, 5) for _, step, index, _ in reporter.started]
        (failed,) = iter_events(logs, "step_failed")
        assert (failed["kind"], failed["error_type"]) == ("auto_layout", "ServerInternalError")
        assert failed["error"] == outcome.attempts[0].error
