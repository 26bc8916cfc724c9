"""A build's walk through its steps on a retry: what the checkpoint it resumes from must
hold (not the models dropped with their case), what the resume or the start over logs,
what the second server is asked to do again, and the final build's wait before its layout
ending at a cancel."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

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
    write_recipe,
)
from test_executor_drop_case import LONG, _plan
from test_executor_final_intake_wait import watched_logs
from test_executor_run_events import CARRY_STEPS, STEPS, DamagingFaults, _run_logged
from test_executor_runner_carry_timing import _Finished

from preform_pipeline.executor import BuildOutcome, BuildStatus, Runner, RunOptions
from preform_pipeline.simulator.formfile import load_form


def _dropped_then_retried(tmp_path: Path, farm: SimFarm) -> tuple[
    BuildOutcome, list[dict[str, Any]]
]:
    """Three cases, one too long for its label (dropped with both its models); a checkpoint
    after the labels; the first server fails the layout, the second finishes the build."""
    plan = _plan(tmp_path, "drop_case")
    farm.add(ScriptedFaults(fail={"auto_layout": 1}))
    farm.add()
    with capture_bound_logs() as logs:
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     checkpoint_kinds=frozenset({"label"}))
    (outcome,) = result.outcomes
    return outcome, logs


class TestResumeAfterADroppedCase:
    """A checkpoint saved after a case was dropped lacks that case's models, and is still
    the one the retry resumes from."""

    def test_the_retry_resumes_from_the_labels_without_the_dropped_case(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome, logs = _dropped_then_retried(tmp_path, farm)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.resumed_from) for a in outcome.attempts] == [
            ("server-1", None), ("server-2", "label")]
        assert all(Path(p).parent.name == LONG for p, _ in outcome.dropped)
        assert len(outcome.dropped) == 2
        assert list(iter_events(logs, "checkpoint_unusable")) == []
        (resumed,) = iter_events(logs, "build_resumed")
        assert (resumed["after_step"], resumed["attempt"], resumed["server"]) == (
            "label", 2, "server-2")
        assert Path(resumed["checkpoint"]).name == "after-label.form"
        # The second server loaded the checkpoint and neither imported nor labelled again.
        asked = [op for op in farm.faults[1].seen if not op.startswith("get_")]
        assert asked == ["load_form_file", "auto_layout", "save_form_file", "delete_scene"]
        # The saved scene holds the two cases that stayed, with their labels' names.
        (form,) = [p for p in outcome.outputs if p.suffix == ".form"]
        scene = load_form(form, "check")
        assert sorted(m.name for m in scene.models.values()) == ["case-1 upper", "case-2 upper"]


class TestCheckpointWithoutTheModels:
    """A checkpoint that lacks many of the build's models is not used; the warning names
    the first five missing, not all of them."""

    def test_the_warning_names_the_first_five_missing_models(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        names = [f"box{i}" for i in range(7)]
        checkpoint = tmp_path / "out" / ".checkpoints" / "run-1" / "unit-001"
        farm.add(DamagingFaults(checkpoint / "after-auto_support.form", *names))
        farm.add()
        result, _, logs = _run_logged(tmp_path, farm, STEPS, len(names))
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.resumed_from for a in outcome.attempts] == [None, None]
        (unusable,) = iter_events(logs, "checkpoint_unusable")
        assert Path(unusable["checkpoint"]).name == "after-auto_support.form"
        # All seven are missing; the event keeps five of them, in the build's import order.
        imported = [op for op in farm.faults[1].seen if op == "import_model"]
        assert len(imported) == len(names)
        assert unusable["missing"] == [Path(m).stem for m in outcome.models][:5]
        assert list(iter_events(logs, "build_resumed")) == []


class TestFinalBuildWaitEndsAtACancel:
    """The final build waiting for another build's layout stops waiting when the run is
    cancelled, instead of sitting out its step deadline."""

    def test_the_final_build_ends_while_the_other_is_still_before_its_layout(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = five_boxes(tmp_path)
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
        assert [b.name for b in plan.builds] == ["unit-001", "unit-002"]
        farm.add()
        farm.add()
        held, release = threading.Event(), threading.Event()
        asked: list[str] = []

        def hold_before_layout(build: str) -> str | None:
            # Asked before each step; the fourth is each build's layout. unit-001 is held
            # there, so the final build (unit-002), once laid out, waits for it.
            asked.append(build)
            if build == "unit-001" and asked.count(build) == 4:
                held.set()
                release.wait(WAIT_S * 2)
            return None

        reporter = _Finished(["unit-001", "unit-002"])
        runner = Runner(plan, FakePool([s.url for s in farm.servers]),
                        options=RunOptions(output_root=tmp_path / "out",
                                           step_timeout_s=WAIT_S * 3, cancel_grace_s=WAIT_S * 3,
                                           stop_reason=hold_before_layout),
                        reporter=reporter)
        problems: list[str] = []

        def watch() -> None:
            if not (held.wait(WAIT_S) and final_laid_out.wait(WAIT_S)):
                problems.append("the builds never reached their layouts")
            else:
                runner.cancel()
                if not reporter.finished["unit-002"].wait(WAIT_S):
                    problems.append("the final build kept waiting after the cancel")
            release.set()

        with watched_logs("step_finished", build="unit-002", kind="auto_layout") as (
            logs, final_laid_out
        ):
            watcher = threading.Thread(target=watch)
            watcher.start()
            result = runner.run()
            watcher.join(WAIT_S)
        assert problems == []
        assert result.cancelled
        final = next(o for o in result.outcomes if o.name == "unit-002")
        assert final.status is BuildStatus.CANCELLED
        (waited,) = iter_events(logs, "final_build_waited")
        assert (waited["build"], waited["taken"]) == ("unit-002", 0)
        # Logged in seconds to the millisecond, as measured on the run's clock (the cancel
        # may come just before the wait begins: then it is 0).
        assert isinstance(waited["waited_s"], float)
        assert 0 <= waited["waited_s"] == round(waited["waited_s"], 3) < WAIT_S
