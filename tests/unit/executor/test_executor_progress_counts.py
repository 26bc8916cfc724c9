"""Progress counts builds as the summary does, and shows a run waiting for verification."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe

from preform_pipeline.cloud import BudgetSnapshot
from preform_pipeline.executor import (
    AttemptRecord,
    BuildOutcome,
    BuildStatus,
    PlainReporter,
    RichReporter,
    RunResult,
)
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.verify.poller import PollOutcome

WAITING = PollOutcome((), (), (), 1, 1, 30.0, BudgetSnapshot(4, 1496, 1500, 3600.0))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _outcome(name: str, status: BuildStatus) -> BuildOutcome:
    return BuildOutcome(
        name=name, index=1, status=status, models=("a.stl",), source_files=(),
        attempts=(AttemptRecord(1, "server-1", 1.0),), server="server-1",
    )


def _builds(tmp_path: Path, sample_models_dir: Path) -> tuple[BuildPlan, ...]:
    recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n")
    return plan_for(recipe, [sample_models_dir / "parts" / "gear.obj"]).builds


class TestCounts:
    """A split build leaves the total; its halves are the builds that count."""

    def test_plain_lines_count_like_the_summary(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        (build,) = _builds(tmp_path, sample_models_dir)
        reporter.run_started("run-1", (build,), servers=1, simulated=True)
        reporter.build_added(build, parent="unit-001")
        reporter.build_added(build, parent="unit-001")
        reporter.build_finished(_outcome("unit-001", BuildStatus.SPLIT))
        reporter.build_finished(_outcome("unit-001.1", BuildStatus.SUCCEEDED))
        reporter.build_finished(_outcome("unit-001.2", BuildStatus.SUCCEEDED))
        lines = stream.getvalue().splitlines()
        assert lines[-3].endswith("(0/2 builds done)")
        assert lines[-1].endswith("(2/2 builds done)")
        result = RunResult("run-1", "r", True, False, (
            _outcome("unit-001", BuildStatus.SPLIT),
            _outcome("unit-001.1", BuildStatus.SUCCEEDED),
            _outcome("unit-001.2", BuildStatus.SUCCEEDED),
        ))
        reporter.run_finished(result)
        assert "2 of 2 builds succeeded" in stream.getvalue().splitlines()[-1]


class TestVerifyStatus:
    """A run waiting for its prints says what is pending, the next poll and the budget."""

    def test_a_log_gets_a_line_per_wait(self) -> None:
        stream = io.StringIO()
        PlainReporter(stream).verify_waiting(WAITING, 3)
        assert stream.getvalue() == (
            "verify: 3 prints pending, next poll in 30 s, 4/1500 requests this hour\n"
        )

    def test_a_terminal_gets_a_live_line_that_goes_when_the_run_ends(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        stream = _Terminal()
        reporter = RichReporter(stream)
        reporter.run_started("run-1", _builds(tmp_path, sample_models_dir), servers=1,
                             simulated=True)
        reporter.verify_waiting(WAITING, 2)
        reporter.verify_waiting(WAITING, 1)
        reporter.run_finished(RunResult("run-1", "r", True, False, ()))
        reporter.close()
        text = stream.getvalue()
        assert "verify: 1 print pending, next poll in 30 s" in text


class _SlowVerification:
    """Print hooks whose verification takes a known while (what the Web API wait costs)."""

    VERIFY_S = 0.3

    def __init__(self) -> None:
        self.ended_at = 0.0

    def for_build(self, build: BuildPlan) -> object:
        return None

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        threading.Event().wait(self.VERIFY_S)  # the modelled duration, not a wait for a state
        self.ended_at = time.monotonic()
        return result


class TestRunTime:
    """The run's time is the person's wait: verification included."""

    def test_wall_time_includes_verification(self, tmp_path: Path, farm: SimFarm) -> None:
        write_box(tmp_path / "models", "cube", 10, 10, 10)
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_layout\n"),
                        [tmp_path / "models" / "cube.stl"])
        farm.add()
        hooks = _SlowVerification()
        started = time.monotonic()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     print_tracking=hooks)
        assert result.ok
        assert result.wall_s >= hooks.VERIFY_S
        assert result.wall_s <= hooks.ended_at - started + 0.5
