"""Which steps a build saves a checkpoint after, which checkpoint files it keeps, and which
steps its outcome says were done (a dry run's print is not; a resumed step counts once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
from test_executor_runner_split_reason import _two_cubes_in_one_build

from preform_pipeline.executor import BuildOutcome, BuildStatus, NullReporter, RunOptions, run_plan
from preform_pipeline.simulator.protocol import SimError

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


def _run(tmp_path: Path, farm: SimFarm, steps: str = STEPS, **options: Any) -> tuple[
    BuildOutcome, list[str], Path
]:
    """One build of two boxes on the farm (one plain server unless it has some): its
    outcome, the steps it saved checkpoints after, and its checkpoint folder."""
    outcome, logs = _run_logged(tmp_path, farm, steps, **options)
    saved = [e["after_step"] for e in iter_events(logs, "checkpoint_saved")]
    return outcome, saved, tmp_path / "out" / ".checkpoints" / "run-1" / "unit-001"


def _run_logged(tmp_path: Path, farm: SimFarm, steps: str = STEPS, **options: Any) -> tuple[
    BuildOutcome, list[dict[str, Any]]
]:
    """The same run: its outcome and its log events."""
    plan = plan_for(write_recipe(tmp_path, steps),
                    [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)])
    if not farm.servers:
        farm.add()
    # No step here hangs: the limit only has to outlast a screenshot on a loaded machine
    # (10 s did not, at load 10-15, and the retry made a third attempt).
    options.setdefault("step_timeout_s", 60.0)
    with capture_bound_logs() as logs:
        result = run_plan(plan, FakePool([s.url for s in farm.servers]),
                          options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                             **options),
                          reporter=NullReporter())
    (outcome,) = result.outcomes
    return outcome, logs


class TestCheckpointFiles:
    """A checkpoint follows each expensive step that is not the last; the files go once the
    build succeeded, unless they are to be kept."""

    def test_a_succeeded_run_leaves_no_checkpoint_folder(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Session 42: every run with builds left `.checkpoints/<run id>/<build>/journal.json`
        # for good, though nothing reads a journal after its build's outcome.
        outcome, saved, folder = _run(tmp_path, farm)
        assert outcome.status is BuildStatus.SUCCEEDED
        assert saved == ["auto_support"]
        assert not folder.parent.exists()
        assert (tmp_path / "out" / ".checkpoints").is_dir()  # another run's may be below it

    def test_the_journal_kept_names_the_build_the_run_and_the_last_checkpoint(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome, _, folder = _run(tmp_path, farm, keep_checkpoints=True)
        assert outcome.status is BuildStatus.SUCCEEDED
        journal = json.loads((folder / "journal.json").read_text(encoding="utf-8"))
        assert (journal["build"], journal["run_id"], journal["checkpoint_step"]) == (
            "unit-001", "run-1", "auto_support")

    def test_a_failed_build_keeps_its_checkpoint_and_journal(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # What the build reached, for a person to open in PreForm (docs/running.md).
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        outcome, saved, folder = _run(tmp_path, farm, max_build_attempts=1)
        assert outcome.status is BuildStatus.FAILED
        assert saved == ["auto_support"]
        assert sorted(p.name for p in folder.iterdir()) == [
            "after-auto_support.form", "journal.json"]

    def test_kept_checkpoints_stay_after_success(self, tmp_path: Path, farm: SimFarm) -> None:
        outcome, _, folder = _run(tmp_path, farm, keep_checkpoints=True)
        assert outcome.status is BuildStatus.SUCCEEDED
        assert sorted(p.name for p in folder.iterdir()) == [
            "after-auto_support.form", "journal.json"]

    def test_the_chosen_kinds_are_checkpointed_but_never_after_the_last_step(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _, saved, _ = _run(tmp_path, farm,
                           checkpoint_kinds=frozenset({"auto_layout", "save_form"}))
        assert saved == ["auto_layout"]

    def test_no_kinds_no_checkpoint(self, tmp_path: Path, farm: SimFarm) -> None:
        outcome, saved, folder = _run(tmp_path, farm, checkpoint_kinds=frozenset())
        assert (outcome.status, saved, folder.exists()) == (BuildStatus.SUCCEEDED, [], False)


class TestASplitBuildsCheckpoint:
    """A split build's halves start from scratch: nothing reads the checkpoint it saved of
    all its models, which went unprinted (review rv42-litter: it stayed, and with it the
    run's `.checkpoints/<run id>/`, though every model was printed)."""

    def _split(self, tmp_path: Path, farm: SimFarm, **options: Any) -> Path:
        farm.add()
        result = run_plan(
            _two_cubes_in_one_build(tmp_path), FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                               step_timeout_s=STEP_LIMIT_S,
                               # A checkpoint before the packing that does not fit.
                               checkpoint_kinds=frozenset({"import_models"}), **options),
            reporter=NullReporter())
        assert [o.status for o in result.outcomes] == [
            BuildStatus.SPLIT, BuildStatus.SUCCEEDED, BuildStatus.SUCCEEDED]
        return tmp_path / "out" / ".checkpoints" / "run-1"

    def test_the_run_leaves_no_checkpoint_folder(self, tmp_path: Path, farm: SimFarm) -> None:
        assert not self._split(tmp_path, farm).exists()

    def test_kept_checkpoints_keep_the_split_builds(self, tmp_path: Path, farm: SimFarm) -> None:
        folder = self._split(tmp_path, farm, keep_checkpoints=True) / "fuse-001"
        assert sorted(p.name for p in folder.iterdir()) == [
            "after-import_models.form", "journal.json"]


class TestStepsDone:
    """The outcome lists each step done once, in the graph's order; a dry run's print was
    not done."""

    def test_a_resumed_build_lists_each_step_once(self, tmp_path: Path, farm: SimFarm) -> None:
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        farm.add()
        outcome, saved, _ = _run(tmp_path, farm)
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.resumed_from for a in outcome.attempts] == [None, "auto_support"]
        assert outcome.steps_done == ("create_scene", "import_models", "auto_support",
                                      "auto_layout", "save_form")
        # the second attempt resumed after auto_support: nothing to save again
        assert saved == ["auto_support"]

    def test_a_step_done_again_after_the_checkpoint_is_listed_once(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # The screenshot fails on the first server: the retry resumes after auto_support
        # and lays out again.
        farm.add(ScriptedFaults(fail={"save_screenshot": 1}))
        farm.add()
        outcome, _, _ = _run(tmp_path, farm,
                             "steps:\n  - auto_support\n  - auto_layout\n  - screenshot\n")
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.resumed_from for a in outcome.attempts] == [None, "auto_support"]
        assert outcome.steps_done == ("create_scene", "import_models", "auto_support",
                                      "auto_layout", "screenshot")

    def test_a_dry_runs_print_and_verify_are_not_done(self, tmp_path: Path, farm: SimFarm) -> None:
        outcome, _, _ = _run(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - print:\n      printer: SimulatedForm4-1\n  - verify\n",
            dry_run=True,
        )
        assert (outcome.status, outcome.verify) == (BuildStatus.SUCCEEDED, "skipped")
        assert outcome.steps_done == ("create_scene", "import_models", "auto_layout")
        assert farm.jobs() == []


class TestPrintedOnce:
    """A build that fails after its print is retried without printing again."""

    def test_a_retry_after_the_print_does_not_send_it_again(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"save_screenshot": 1}))
        farm.add()
        outcome, _, _ = _run(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - print:\n      printer: SimulatedForm4-1\n"
            "  - screenshot\n",
        )
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        (job,) = farm.jobs()
        assert outcome.job_id == job["job_id"]
        assert "print" in farm.faults[0].seen and "print" not in farm.faults[1].seen
        assert outcome.steps_done == ("create_scene", "import_models", "auto_layout", "print",
                                      "screenshot")


class _RefusesCheckpoints(ScriptedFaults):
    """A server that cannot read a checkpoint .form (another PreForm version): it answers
    ``load_form_file`` with a 400."""

    def simulated_error(self, operation_id: str) -> SimError | None:
        if operation_id == "load_form_file":
            with self.lock:
                self.seen.append(operation_id)
            return SimError(400, "INVALID_FORM_FILE", "the file was saved by another version")
        return super().simulated_error(operation_id)


class TestCheckpointRefused:
    """A retry on a server that cannot read the checkpoint starts the build over and says
    why."""

    def test_the_retry_starts_over_and_logs_the_servers_answer(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        farm.add(_RefusesCheckpoints())
        outcome, logs = _run_logged(tmp_path, farm)
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [(a.server, a.resumed_from) for a in outcome.attempts] == [
            ("server-1", None), ("server-2", None)]
        (unusable,) = iter_events(logs, "checkpoint_unusable")
        assert Path(unusable["checkpoint"]).name == "after-auto_support.form"
        assert "INVALID_FORM_FILE" in unusable["error"] and unusable["server"] == "server-2"
        assert list(iter_events(logs, "build_resumed")) == []
        # started over: both models imported and supported again on the second server
        assert farm.faults[1].seen.count("import_model") == 2
        assert "auto_support" in farm.faults[1].seen
