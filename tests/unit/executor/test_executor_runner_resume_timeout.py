"""A retry whose checkpoint load times out, before any step of its attempt has started, goes
on to the next server and succeeds; a run without a reporter runs as with one (in-process
simulators on loopback HTTP, scripted faults at the request seam)."""

from __future__ import annotations

from pathlib import Path

from executor_support import (
    HANG_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    plan_for,
    write_box,
    write_recipe,
)

from preform_pipeline.errors import ServerTimeoutError
from preform_pipeline.executor import BuildStatus, NullReporter, RunOptions, run_plan


class TestACheckpointLoadThatTimesOut:
    """The second attempt's checkpoint never loads; the third attempt, on another server,
    resumes from the same checkpoint and the build succeeds."""

    def test_the_build_succeeds_on_the_third_server(self, tmp_path: Path, farm: SimFarm) -> None:
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))  # attempt 1: fails after support
        farm.add(ScriptedFaults(hang=frozenset({"load_form_file"})))  # attempt 2: never loads
        farm.add()
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_support\n  - auto_layout\n"),
                        [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)])
        # A step limit above the request limit: a timed-out step kind is polled on retry
        # (the rule that must not look up a step when none had started). The step limit ends
        # the load that never answers, so it is the one the test waits out; both stay out of
        # reach of the other steps and requests on a loaded machine (executor_support).
        result = run_plan(plan, FakePool([s.url for s in farm.servers]),
                          options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                             step_timeout_s=HANG_LIMIT_S * 1.5,
                                             request_timeout_s=HANG_LIMIT_S),
                          reporter=NullReporter())
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.resumed_from for a in outcome.attempts] == [None, None, "auto_support"]
        assert outcome.attempts[1].error_type == ServerTimeoutError.__name__


class TestARunWithoutAReporter:
    """``run_plan`` without a reporter (a library caller that wants no progress) runs the
    build as with one: the reporter defaults to one that says nothing."""

    def test_the_build_succeeds(self, tmp_path: Path, farm: SimFarm) -> None:
        farm.add()
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_layout\n"),
                        [write_box(tmp_path / "m", "box", 10, 10, 10)])
        result = run_plan(plan, FakePool([s.url for s in farm.servers]),
                          options=RunOptions(output_root=tmp_path / "out", run_id="run-1"))
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.steps_done == ("create_scene", "import_models", "auto_layout")
