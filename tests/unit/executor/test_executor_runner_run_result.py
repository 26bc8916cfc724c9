"""What a run's result says about itself, about the builds it never finished, and how the
verification of its prints joins it."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from executor_support import (
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)
from test_executor_runner_rules import RECIPE

from preform_pipeline.clock import ManualClock
from preform_pipeline.executor import BuildStatus, NullReporter, Runner, RunOptions, RunResult
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan, Rejection
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.settings.servers import PoolMode
from preform_pipeline.verify.tracking import PrintTracking
from tests.unit.plan.planning_factories import make_model


class _MixedPool(FakePool):
    """The fake pool, saying what it runs (local and remote servers) as the real pool does."""

    mode = PoolMode.MIXED


def _build(index: int, models: tuple[ModelInfo, ...], volume_ml: float) -> BuildPlan:
    return BuildPlan(index=index, name=f"test-recipe-{index:03d}", models=models, placements=(),
                     fill_ratio=0.5, estimated_volume_ml=volume_ml,
                     graph=compile_graph(RECIPE, models))


class TestCancelledBeforeItRan:
    """A run cancelled before it starts lists every planned build as not finished, with the
    build's own models, files, cases and resin, in build order."""

    def test_the_result_describes_the_run_and_each_unfinished_build(
        self, tmp_path: Path
    ) -> None:
        late = _build(2, (make_model("m0", case="A"), make_model("m1", case="A"),
                          make_model("m2", case="B")), 12.5)
        early = _build(1, (make_model("m3"),), 3.0)
        rejected = (Rejection(Path("huge.stl"), "larger than the platform"),)
        plan = Plan(recipe=RECIPE, builds=(late, early), rejected=rejected,
                    warnings=("case A is split over two builds",))
        pool = _MixedPool(["http://127.0.0.1:9", "http://127.0.0.1:10"])
        runner = Runner(plan, pool,
                        options=RunOptions(output_root=tmp_path, run_id="run-7", dry_run=True),
                        reporter=NullReporter(), clock=ManualClock())
        runner.cancel()
        result = runner.run()
        assert (result.run_id, result.recipe, result.simulated, result.dry_run) == (
            "run-7", "test-recipe", True, True)
        assert (result.cancelled, result.ok, result.wall_s) == (True, False, 0.0)
        assert (result.server_count, result.pool_mode) == (2, "LOCAL+REMOTE")
        assert (result.output_root, result.rejected, result.warnings) == (
            tmp_path, rejected, ("case A is split over two builds",))
        assert [o.name for o in result.outcomes] == ["test-recipe-001", "test-recipe-002"]
        for outcome, build in zip(result.outcomes, (early, late), strict=True):
            assert outcome.index == build.index
            assert outcome.status is BuildStatus.CANCELLED
            assert outcome.reason == "the run was interrupted before this build finished"
            assert outcome.models == tuple(m.path.name for m in build.models)
            assert outcome.source_files == tuple(str(m.path) for m in build.models)
            assert outcome.units == build.units and outcome.units
            assert outcome.estimated_volume_ml == build.estimated_volume_ml
            assert (outcome.parent, outcome.dry_run, outcome.attempts) == (None, True, ())
        assert [o.case_ids for o in result.outcomes] == [(), ("A", "B")]
        assert pool.leases == [] and pool.closed

    def test_a_pool_without_a_mode_reads_as_none_given(self, tmp_path: Path) -> None:
        plan = Plan(recipe=RECIPE, builds=(_build(1, (make_model("m0"),), 1.0),))
        runner = Runner(plan, FakePool(["http://127.0.0.1:9"]),
                        options=RunOptions(output_root=tmp_path), reporter=NullReporter())
        runner.cancel()
        result = runner.run()
        assert (result.pool_mode, result.server_count, result.dry_run) == ("", 1, False)
        assert result.outcomes[0].dry_run is False


class _TimedVerification(PrintTracking):
    """Print tracking whose verification after the run takes ``VERIFY_S`` on the run's clock
    and notes what it was handed."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self._clock = clock
        self.handed: list[tuple[RunResult, bool]] = []

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        self.handed.append((result, stop.is_set()))
        self._clock.advance(VERIFY_S)
        return replace(result, verification={"prints": 0})


VERIFY_S = 7.25


class _Finished(NullReporter):
    def __init__(self) -> None:
        self.finished: list[RunResult] = []

    def run_finished(self, result: RunResult) -> None:
        self.finished.append(result)


class TestVerificationAfterTheRun:
    """Once every build is done, the run's prints are verified (unless it was a dry run or
    cancelled), and the run's time includes that wait."""

    def _run(self, tmp_path: Path, farm: SimFarm, *, cancel: bool = False,
             dry_run: bool = False) -> tuple[RunResult, _TimedVerification, _Finished,
                                             list[dict[str, Any]]]:
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_layout\n"),
                        [write_box(tmp_path / "m", "box0", 10, 10, 10)])
        farm.add()
        clock = ManualClock()
        tracking = _TimedVerification(clock)
        reporter = _Finished()
        runner = Runner(plan, FakePool([s.url for s in farm.servers]),
                        options=RunOptions(output_root=tmp_path / "out", print_tracking=tracking,
                                           dry_run=dry_run, cancel_grace_s=1.0),
                        reporter=reporter, clock=clock)
        if cancel:
            runner.cancel()
        with capture_bound_logs() as logs:
            result = runner.run()
        return result, tracking, reporter, logs

    def test_the_verified_result_is_returned_and_timed_with_the_wait(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        result, tracking, reporter, logs = self._run(tmp_path, farm)
        ((handed, stopped),) = tracking.handed
        assert [o.status for o in handed.outcomes] == [BuildStatus.SUCCEEDED]
        assert handed.verification is None and not stopped
        # The builds took no time on the run's clock: the run's time is the verification's.
        assert (result.verification, result.wall_s) == ({"prints": 0}, VERIFY_S)
        assert reporter.finished == [result]
        (finished,) = iter_events(logs, "run_finished")
        assert (finished["wall_s"], finished["ok"]) == (VERIFY_S, True)

    def test_a_dry_run_is_not_verified(self, tmp_path: Path, farm: SimFarm) -> None:
        result, tracking, reporter, _ = self._run(tmp_path, farm, dry_run=True)
        assert tracking.handed == []
        assert (result.verification, result.wall_s, result.ok) == (None, 0.0, True)
        assert reporter.finished == [result]

    def test_a_cancelled_run_is_not_verified(self, tmp_path: Path, farm: SimFarm) -> None:
        result, tracking, reporter, _ = self._run(tmp_path, farm, cancel=True)
        assert tracking.handed == []
        assert (result.verification, result.cancelled) == (None, True)
        assert reporter.finished == [result]
