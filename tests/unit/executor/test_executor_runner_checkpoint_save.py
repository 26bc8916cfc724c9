"""A checkpoint's save, as the build's steps do it: its log events name the step it follows,
and it waits for the step's limit, not the request limit, so a slow save of a large scene
still checkpoints in one attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_executor_steps_requests import _serve
from test_executor_steps_s15_outputs import REQUEST_LIMIT_S, SlowSaveEngine

from preform_pipeline.executor import BuildStatus
from tests.unit.executor.executor_support import (
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

__all__: list[str] = []

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


def _boxes(tmp_path: Path) -> list[Path]:
    return [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)]


class TestCheckpointEventsNameTheirStep:
    """A checkpoint's events carry the step it follows in their ``step`` field, as that
    step's own events do (the save runs after the step's own context has ended)."""

    def test_each_checkpoint_saved_event_names_its_step(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        with capture_bound_logs() as logs:
            result = run(plan_for(write_recipe(tmp_path, STEPS), _boxes(tmp_path)),
                         FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         run_id="run-1",
                         checkpoint_kinds=frozenset({"auto_support", "auto_layout"}))
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(e.get("step"), e["after_step"], e["build"])
                for e in iter_events(logs, "checkpoint_saved")] == [
            ("auto_support", "auto_support", "unit-001"),
            ("auto_layout", "auto_layout", "unit-001"),
        ]


class SlowCheckpointSaveEngine(SlowSaveEngine):
    """An engine whose save of a checkpoint (a file below ``.checkpoints``) alone is slow:
    the build's own save of its form, whose limit ``test_executor_steps_s15_outputs`` checks,
    answers at once instead of adding another slow save to the test's time. The slow save is
    chosen by its file, not by its place among the saves (review rv46-suiteunita: "the first
    save" stayed fast, and the test green whatever the checkpoint's limit, had the build saved
    anything before its checkpoint)."""

    def slow(self, body: Any) -> bool:
        return ".checkpoints" in Path(body["file"]).parts


class TestCheckpointSaveLongerThanTheRequestLimit:
    """A checkpoint whose save takes longer than the request limit (but not than the step's
    limit) is saved in the build's one attempt."""

    def test_the_build_checkpoints_and_succeeds_in_one_attempt(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        slow = SlowCheckpointSaveEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                        work_dir=farm.folder / "work-slow")
        _serve(farm, slow)
        with capture_bound_logs() as logs:
            result = run(plan_for(write_recipe(tmp_path, STEPS), _boxes(tmp_path)),
                         FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         run_id="run-1", keep_checkpoints=True, step_timeout_s=STEP_LIMIT_S,
                         request_timeout_s=REQUEST_LIMIT_S)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.error_type) for a in outcome.attempts] == [("server-1", None)]
        (saved,) = iter_events(logs, "checkpoint_saved")
        checkpoint = tmp_path / "out" / ".checkpoints" / "run-1" / "unit-001"
        assert Path(saved["checkpoint"]) == checkpoint.resolve() / "after-auto_support.form"
        assert (checkpoint / "after-auto_support.form").stat().st_size > 0
        assert list(iter_events(logs, "build_attempt_failed")) == []
