"""What a run leaves in the job store: a build per planned build, the refused models failed,
each build settled from its outcome, splits and dead runs' sends accounted for."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from preform_pipeline.executor.ledger import RUN_FIELD, RunLedger, Skipped, summarize_skipped
from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan, Rejection
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.printing import FleetFolderLocator, PrintOwner, SendHolder
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.store import (
    Build,
    Job,
    JobState,
    JobStore,
    SqliteJobStore,
    content_hash,
)
from tests.unit.plan.planning_factories import make_recipe

RECIPE = make_recipe()





def _ledger(store: SqliteJobStore, me: SendHolder | None = None) -> RunLedger:
    # The fleet folder reports at once: an empty folder proves a send absent.
    fleet = FleetFolderLocator(Path(store.path).parent / "fleet", report_delay_s=0.0)
    owner = PrintOwner(store, [fleet])
    return RunLedger(store, owner, "recipe", "run-1",
                     me or SendHolder.local("run", os.getpid(), 0.0))


def _build(name: str, models: list[ModelInfo]) -> BuildPlan:
    return BuildPlan(index=1, name=name, models=tuple(models), placements=(), fill_ratio=0.5,
                     estimated_volume_ml=1.0, graph=compile_graph(RECIPE, models))


def _dead_run_with_a_build(store: SqliteJobStore, models: list[ModelInfo]) -> RunLedger:
    """A run whose process is gone, that claimed two models and recorded build r-001."""
    dead = _ledger(store, reaped_holder())
    taken, _ = dead.claim(models[:2])
    dead.record(Plan(recipe=RECIPE, builds=(_build("r-001", taken),)))
    return dead


def _outcome(name: str, status: BuildStatus, reason: str | None = None) -> BuildOutcome:
    return BuildOutcome(name=name, index=1, status=status, models=(), source_files=(),
                        reason=reason)


def _result(*outcomes: BuildOutcome) -> RunResult:
    return RunResult("run-1", "recipe", True, False, outcomes)


def _recorded(store: SqliteJobStore, models: list[ModelInfo], *names: str) -> RunLedger:
    """A ledger that claimed ``models`` and recorded one build per name, two models each."""
    ledger = _ledger(store)
    taken, _ = ledger.claim(models)
    builds = tuple(_build(n, taken[2 * i:2 * i + 2]) for i, n in enumerate(names))
    ledger.record(Plan(recipe=RECIPE, builds=builds))
    return ledger


def _state(store: SqliteJobStore, ledger: RunLedger, name: str) -> tuple[JobState, str]:
    build = store.get_build(ledger.build_ids[name])
    return build.state, build.reason


def _jobs(store: SqliteJobStore, ledger: RunLedger, name: str) -> list[JobState]:
    return [j.state for j in store.build_members(ledger.build_ids[name])]


class TestSkippedSays:
    """A skipped model says what the other job did with its content."""

    @pytest.mark.parametrize(("state", "verb"), [
        (JobState.PRINT_SENT, "already printed"),
        (JobState.VERIFYING, "already printed"),
        (JobState.FINISHED, "already printed"),
        (JobState.DONE, "already prepared"),
        (JobState.UNVERIFIED, "sent before, unverified (settle it: jobs resolve)"),
        (JobState.PREPARING, "being prepared or printed"),
    ])
    def test_the_other_jobs_state_is_named(
        self, store: SqliteJobStore, tmp_path: Path, state: JobState, verb: str
    ) -> None:
        job = store.create_job(recipe="recipe", source_path=tmp_path / "a.stl",
                               state=JobState.PROCESSING)
        other = Job(**{**job.__dict__, "state": state})
        assert Skipped(tmp_path / "in" / "part.stl", other).describe() == (
            f"skipped part.stl: {verb} as job {job.job_key} ({state.value}); "
            "--reprint prints it again")


class TestSkippedSaidInOneLine:
    """Many models skipped are said in one line, counted by why; one is described whole."""

    def _skipped(self, store: SqliteJobStore, tmp_path: Path, *states: JobState) -> list[Skipped]:
        job = store.create_job(recipe="recipe", source_path=tmp_path / "a.stl",
                               state=JobState.PROCESSING)
        return [Skipped(tmp_path / f"part_{i}.stl", Job(**{**job.__dict__, "state": state}))
                for i, state in enumerate(states)]

    def test_a_repeat_of_the_same_command_is_one_line(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        skipped = self._skipped(store, tmp_path, *[JobState.PRINT_SENT] * 30)
        assert summarize_skipped(skipped, 30) == (
            "skipped 30 of 30 models (30 already printed); --reprint prints them again, "
            "-v lists each")

    def test_the_reasons_are_counted_in_the_order_met(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        skipped = self._skipped(store, tmp_path, JobState.PREPARING, JobState.FINISHED,
                                JobState.PREPARING)
        assert summarize_skipped(skipped, 5) == (
            "skipped 3 of 5 models (2 being prepared or printed, 1 already printed); "
            "--reprint prints them again, -v lists each")

    def test_one_is_described_whole(self, store: SqliteJobStore, tmp_path: Path) -> None:
        (one,) = self._skipped(store, tmp_path, JobState.DONE)
        assert summarize_skipped([one], 1) == one.describe()


class TestRecord:
    """Every planned build gets a store build of its own jobs; refused models fail."""

    def test_each_build_holds_its_own_models_jobs(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        assert set(ledger.build_ids) == {"r-001", "r-002"}
        paths = [[j.source_path for j in store.build_members(ledger.build_ids[n])]
                 for n in ("r-001", "r-002")]
        assert paths == [[m.path for m in models[:2]], [m.path for m in models[2:]]]
        assert store.get_build(ledger.build_ids["r-001"]).reason == "planned by run run-1"

    def test_a_refused_model_fails_with_the_planners_reason(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _ledger(store)
        ledger.claim(models[:2])
        ledger.record(Plan(recipe=RECIPE, builds=(_build("r-001", models[:1]),), rejected=(
            Rejection(models[1].path, "too tall for the machine"),
            Rejection(models[3].path, "never claimed"),
        )))
        refused = store.find_by_path(models[1].path)
        assert refused is not None
        assert (refused.state, refused.reason) == (JobState.FAILED, "too tall for the machine")
        assert store.find_by_path(models[3].path) is None


class TestFinish:
    """Each build's store state follows its outcome; builds that never ran are freed."""

    def test_a_prepared_build_is_done_and_a_failed_one_fails_with_its_reason(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        ledger.finish(_result(_outcome("r-001", BuildStatus.SUCCEEDED),
                              _outcome("r-002", BuildStatus.FAILED, "layout does not fit")))
        assert _state(store, ledger, "r-001") == (JobState.DONE, "prepared (not printed)")
        assert _jobs(store, ledger, "r-001") == [JobState.DONE, JobState.DONE]
        assert _state(store, ledger, "r-002") == (JobState.FAILED, "layout does not fit")
        assert _jobs(store, ledger, "r-002") == [JobState.FAILED, JobState.FAILED]

    def test_a_failure_for_want_of_room_keeps_its_folder_in_the_store(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        full = replace(_outcome("r-001", BuildStatus.FAILED, "saveFormFile refused"),
                       full_disk=tmp_path / "out")
        ledger.finish(_result(full, _outcome("r-002", BuildStatus.FAILED, "not a mesh")))
        assert store.get_build(ledger.build_ids["r-001"]).full_disk == tmp_path / "out"
        assert store.get_build(ledger.build_ids["r-002"]).full_disk is None

    def test_a_prepared_build_records_its_saved_form_for_the_dashboard(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        day = tmp_path / "2026-12-05"
        saved = BuildOutcome(
            name="r-001", index=1, status=BuildStatus.SUCCEEDED, models=(), source_files=(),
            outputs=(day / "r-001.png", day / "r-001-draft.FORM", day / "r-001.form",
                     day / "r-001.json"))
        unsaved = BuildOutcome(name="r-002", index=2, status=BuildStatus.SUCCEEDED, models=(),
                               source_files=(), outputs=(day / "r-002.png",))
        ledger.finish(_result(saved, unsaved))
        first = store.get_build(ledger.build_ids["r-001"])
        assert (first.state, first.form_path) == (JobState.DONE, day / "r-001.form")
        second = store.get_build(ledger.build_ids["r-002"])
        assert (second.state, second.form_path) == (JobState.DONE, None)

    def test_a_build_already_preparing_goes_straight_to_done(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        store.transition_build(ledger.build_ids["r-001"], JobState.PREPARING, "step 1")
        ledger.finish(_result(_outcome("r-001", BuildStatus.SUCCEEDED)))
        assert _state(store, ledger, "r-001") == (JobState.DONE, "prepared (not printed)")

    def test_a_failure_without_a_reason_says_its_status(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        ledger.finish(_result(_outcome("r-001", BuildStatus.PRINT_UNCONFIRMED)))
        assert _state(store, ledger, "r-001") == (JobState.FAILED, "print_unconfirmed")

    @pytest.mark.parametrize("outcome", [
        pytest.param(replace(_outcome("r-001", BuildStatus.SUCCEEDED), waiting=True),
                     id="its-outcome-says-waiting"),
        # Interrupted before the build's thread gave its outcome: the runner's stand-in
        # (cancelled) says nothing of the hand-over; the store's record of it does.
        pytest.param(_outcome("r-001", BuildStatus.CANCELLED), id="the-runners-stand-in"),
        pytest.param(None, id="no-outcome"),
    ])
    def test_a_build_left_waiting_that_a_watch_is_sending_is_left_to_the_watch(
        self, store: SqliteJobStore, models: list[ModelInfo], outcome: BuildOutcome | None
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        build_id = ledger.build_ids["r-001"]
        store.transition_build(build_id, JobState.PREPARING, "being prepared")
        store.transition_build(build_id, JobState.PREPARED, "prepared")
        watch = PrintOwner(store)
        watch.wait_for_printer(build_id, {"auto": True}, job_name="r-001", priority=0,
                               describe="any printer")
        # A watch on the store began sending it (a live process: its send is no orphan)
        # before the run that left it waiting ended.
        watch.begin(build_id, "r-001", "Form4-A", SendHolder.local("watch", os.getpid(), 0.0))
        ledger.finish(_result(*([outcome] if outcome is not None else [])))
        assert _state(store, ledger, "r-001")[0] is JobState.PRINT_SENDING
        watch.sent(build_id, "job-1", "Form4-A")  # the watch's own record stands
        assert store.get_build(build_id).print_job_id == "job-1"

    def test_cancelled_and_never_run_builds_are_cancelled(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        ledger.finish(_result(_outcome("r-001", BuildStatus.CANCELLED, "interrupted")))
        assert _state(store, ledger, "r-001") == (JobState.CANCELLED, "interrupted")
        assert _state(store, ledger, "r-002") == (JobState.CANCELLED, "cancelled")

    def test_a_split_build_and_a_settled_one_are_left_as_they_are(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        store.transition_build(ledger.build_ids["r-002"], JobState.FAILED, "by hand")
        ledger.finish(_result(_outcome("r-001", BuildStatus.SPLIT),
                              _outcome("r-002", BuildStatus.SUCCEEDED)))
        assert _state(store, ledger, "r-001")[0] is JobState.PROCESSING
        assert _state(store, ledger, "r-002") == (JobState.FAILED, "by hand")

    def test_a_build_the_store_cannot_settle_is_logged_and_the_others_still_settle(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001", "r-002")
        recorded = dict(ledger.build_ids)
        ledger.build_ids.clear()
        ledger.build_ids.update({"gone": 9999, **recorded})  # settled first, and fails
        with capture_logs() as logs:
            ledger.finish(_result(_outcome("r-001", BuildStatus.SUCCEEDED),
                                  _outcome("r-002", BuildStatus.SUCCEEDED)))
        [event] = [e for e in logs if e["event"] == "run_build_unrecorded"]
        assert event["build"] == "gone" and event["log_level"] == "error"
        assert "9999" in event["error"]
        assert _state(store, ledger, "r-002")[0] is JobState.DONE


class TestDropped:
    """A model the runner took out of its build (its case dropped, its file gone) fails now,
    and the build's later states leave it failed: never recorded as printed."""

    def test_its_job_fails_with_the_reason_and_the_build_goes_on_without_it(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models[:2], "r-001")
        ledger.on_dropped("r-001", models[1].path, "model b.stl: gone")
        ledger.finish(_result(_outcome("r-001", BuildStatus.SUCCEEDED)))
        members = {j.source_path.name: (j.state, j.reason) for j in store.list_jobs()}
        assert members == {models[0].path.name: (JobState.DONE, "prepared (not printed)"),
                           models[1].path.name: (JobState.FAILED, "model b.stl: gone")}


class TestSplit:
    """A split build gives up its jobs and is cancelled; each half gets a build."""

    def test_the_halves_take_the_jobs_and_the_parent_says_where_they_went(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _ledger(store)
        taken, _ = ledger.claim(models)
        whole = _build("r-001", taken)
        ledger.record(Plan(recipe=RECIPE, builds=(whole,)))
        parent_id = ledger.build_ids["r-001"]
        store.transition_build(parent_id, JobState.PREPARING, "step 1")
        halves = (_build("r-001.1", taken[:2]), _build("r-001.2", taken[2:]))
        ledger.on_split(whole, halves)
        parent = store.get_build(parent_id)
        assert (parent.state, parent.reason) == (JobState.CANCELLED,
                                                 "split into r-001.1 and r-001.2")
        assert store.list_jobs(build_id=parent_id) == ()
        for half, part in zip(halves, (taken[:2], taken[2:]), strict=True):
            stored = store.get_build(ledger.build_ids[half.name])
            assert stored.reason == f"half of build {parent.job_key}"
            assert [j.source_path for j in store.build_members(stored.id)] == [
                m.path for m in part]
            assert {j.state for j in store.build_members(stored.id)} == {JobState.PROCESSING}

    def test_a_build_the_run_never_recorded_is_left_alone(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _ledger(store)
        ledger.on_split(_build("r-009", models), (_build("a", models[:2]),
                                                  _build("b", models[2:])))
        assert ledger.build_ids == {}


class TestDeadRunsSends:
    """A dead run's interrupted send is settled through the print owner, never resent."""

    def test_a_send_proven_absent_is_released(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _dead_run_with_a_build(store, models)
        build_id = dead.build_ids["r-001"]
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build_id, state, "test")
        sending = dead.owner.begin(build_id, "r-001", "Form4-1", reaped_holder())
        [line] = _ledger(store).recover()
        assert line.startswith(f"interrupted send {sending.job_key}: absent (")
        settled = store.get_build(build_id)
        assert (settled.state, settled.reason) == (JobState.FAILED,
                                                   "proven not printed after its run died")

    def test_unsent_work_of_a_dead_run_is_released_with_a_line_saying_so(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _dead_run_with_a_build(store, models)
        build = store.get_build(dead.build_ids["r-001"])
        assert _ledger(store).recover() == [
            f"released {build.job_key}: its run died before printing it"]
        settled = store.get_build(build.id)
        assert (settled.state, settled.reason) == (JobState.FAILED,
                                                   "its run died before printing it")

    def test_the_hot_folders_builds_are_not_a_runs_to_settle(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        job = store.create_job(recipe="recipe", source_path=tmp_path / "a.stl",
                               state=JobState.PROCESSING)
        build = store.create_build(recipe="recipe", job_ids=[job.id])
        assert _ledger(store).recover() == []
        assert store.get_build(build.id).state is JobState.PROCESSING


class _AnotherWriter:
    """The run's job store, with another connection (another process, as the hot folder or
    a `jobs` command would be) moving a build just after the ledger read it."""

    def __init__(self, store: SqliteJobStore, build_id: int, to: JobState,
                 *, after: JobState | None = None) -> None:
        self._store = store
        self._build_id = build_id
        self._to = to
        #: Move the build once the ledger itself moved it to this state (None: once read).
        self._after = after
        self.moved = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def _move(self, build: Build, *, written: bool = False) -> None:
        if written != (self._after is not None) or (written and build.state is not self._after):
            return
        if build.id == self._build_id and not self.moved:
            self.moved = True
            with SqliteJobStore(self._store.path) as other:
                other.transition_build(build.id, self._to, "another writer",
                                       expect=build.state)

    def get_build(self, build_id: int) -> Build:
        build = self._store.get_build(build_id)
        self._move(build)
        return build

    def transition_build(self, build_id: int, to: JobState, reason: str,
                         **options: Any) -> Build:
        build = self._store.transition_build(build_id, to, reason, **options)
        self._move(build, written=True)
        return build

    def list_builds(self, **filters: Any) -> tuple[Build, ...]:
        builds = self._store.list_builds(**filters)
        for build in builds:
            self._move(build)
        return builds


def _with_writer(ledger: RunLedger, writer: _AnotherWriter) -> RunLedger:
    ledger.store = cast(JobStore, writer)
    return ledger


class TestAnotherWriter:
    """A build another writer moved after the ledger read it keeps that writer's state."""

    def test_a_failed_outcome_does_not_overwrite_a_build_moved_meanwhile(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        build_id = ledger.build_ids["r-001"]
        writer = _AnotherWriter(store, build_id, JobState.PREPARING)
        with capture_logs() as logs:
            _with_writer(ledger, writer).finish(
                _result(_outcome("r-001", BuildStatus.FAILED, "no fit")))
        assert writer.moved
        assert store.get_build(build_id).state is JobState.PREPARING
        [event] = [e for e in logs if e["event"] == "run_build_unrecorded"]
        assert event["build"] == "r-001" and "preparing" in event["error"]

    def test_a_prepared_outcome_does_not_overwrite_a_build_moved_meanwhile(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        build_id = ledger.build_ids["r-001"]
        # between the ledger's PREPARING and its DONE, another writer takes it on
        writer = _AnotherWriter(store, build_id, JobState.PREPARED, after=JobState.PREPARING)
        with capture_logs() as logs:
            _with_writer(ledger, writer).finish(
                _result(_outcome("r-001", BuildStatus.SUCCEEDED)))
        assert writer.moved
        assert store.get_build(build_id).state is JobState.PREPARED
        [event] = [e for e in logs if e["event"] == "run_build_unrecorded"]
        assert event["error"].startswith(f"build {build_id} is prepared, expected preparing")

    def test_a_build_cancelled_meanwhile_is_reported_as_changed_not_as_refused(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        build_id = ledger.build_ids["r-001"]
        writer = _AnotherWriter(store, build_id, JobState.CANCELLED)
        with capture_logs() as logs:
            _with_writer(ledger, writer).finish(
                _result(_outcome("r-001", BuildStatus.SUCCEEDED)))
        assert store.get_build(build_id).state is JobState.CANCELLED
        [event] = [e for e in logs if e["event"] == "run_build_unrecorded"]
        assert event["error"].startswith(f"build {build_id} is cancelled, expected processing")

    def test_a_dead_runs_build_moved_meanwhile_is_not_released(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _dead_run_with_a_build(store, models)
        build_id = dead.build_ids["r-001"]
        writer = _AnotherWriter(store, build_id, JobState.PREPARING)
        with capture_logs() as logs:
            _with_writer(_ledger(store), writer).recover()
        assert store.get_build(build_id).state is JobState.PREPARING
        [event] = [e for e in logs if e["event"] == "run_release_failed"]
        assert event["build_id"] == build_id and event["log_level"] == "warning"
        assert "preparing" in event["error"]


class TestRecordedDetails:
    """What the store holds for each claim, split and settled build."""

    def test_each_claim_records_its_content_run_and_reason(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        copy = tmp_path / "copy.stl"
        copy.write_bytes(models[0].path.read_bytes())
        copy_info = ModelInfo(path=copy, name="copy", size_mm=(10, 10, 10),
                              footprint_mm=(10, 10), volume_mm3=1000.0,
                              support_estimate_mm3=0.0, triangle_count=12)
        me = SendHolder.local("run", os.getpid(), 0.0)
        _ledger(store, me).claim([models[0], copy_info])
        for path in (models[0].path, copy):
            job = store.find_by_path(path)
            assert job is not None
            assert job.content_hash == content_hash(path)
            assert (job.state, job.reason) == (JobState.PROCESSING, "taken by run run-1")
            assert job.fields[RUN_FIELD] == me.to_json()

    def test_a_ledger_shares_its_build_ids_and_skips_duplicates_by_default(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        shared: dict[str, int] = {}
        owner = PrintOwner(store)
        first = RunLedger(store, owner, "recipe", "run-1", SendHolder.local("run", 1, 0.0),
                          build_ids=shared)
        taken, _ = first.claim(models[:2])
        first.record(Plan(recipe=RECIPE, builds=(_build("r-001", taken),)))
        assert shared == first.build_ids and set(shared) == {"r-001"}
        second = RunLedger(store, owner, "recipe", "run-2", SendHolder.local("run", 1, 0.0))
        again, skipped = second.claim(models[:2])
        assert (again, len(skipped)) == ([], 2)

    def test_a_split_says_why_and_a_job_that_failed_stays_with_its_build(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _ledger(store)
        taken, _ = ledger.claim(models)
        whole, other = _build("r-001", taken[:3]), _build("r-002", taken[3:])
        ledger.record(Plan(recipe=RECIPE, builds=(whole, other)))
        parent_id = ledger.build_ids["r-001"]
        store.transition_build(parent_id, JobState.PREPARING, "step 1")
        failed = store.build_members(parent_id)[2]
        store.transition(failed.id, JobState.FAILED, "dropped with its case")
        ledger.on_split(whole, (_build("r-001.1", taken[:1]), _build("r-001.2", taken[1:2])))
        reasons = [t.reason for t in store.build_history(parent_id)]
        assert "split: the models did not fit one platform" in reasons
        assert store.get_job(failed.id).build_id == parent_id
        assert [j.source_path for j in store.list_jobs(build_id=ledger.build_ids["r-002"])] == [
            taken[3].path]

    def test_a_prepared_build_records_each_step_to_done(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        ledger.finish(_result(_outcome("r-001", BuildStatus.SUCCEEDED)))
        reasons = [t.reason for t in store.build_history(ledger.build_ids["r-001"])]
        assert reasons[-2:] == ["prepared", "prepared (not printed)"]

    def test_an_unanswered_send_at_the_end_is_settled_by_the_print_owner(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        ledger = _recorded(store, models, "r-001")
        build_id = ledger.build_ids["r-001"]
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build_id, state, "test")
        ledger.owner.begin(build_id, "r-001", "Form4-1", reaped_holder())
        ledger.finish(_result(_outcome("r-001", BuildStatus.PRINT_UNCONFIRMED)))
        settled = store.get_build(build_id)
        assert settled.state is JobState.PREPARED
        assert settled.reason.startswith("proven not printed: ")


class TestRecoverPicks:
    """Recovery looks at unsent and sending builds of dead runs only, each of them."""

    def test_a_dead_runs_finished_build_is_left_as_it_is(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _dead_run_with_a_build(store, models)
        dead.finish(_result(_outcome("r-001", BuildStatus.SUCCEEDED)))
        assert _ledger(store).recover() == []
        assert store.get_build(dead.build_ids["r-001"]).state is JobState.DONE

    def test_a_build_of_the_hot_folder_does_not_stop_the_look_at_the_next(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        job = store.create_job(recipe="recipe", source_path=tmp_path / "hot.stl",
                               state=JobState.PROCESSING)
        store.create_build(recipe="recipe", job_ids=[job.id])
        dead = _dead_run_with_a_build(store, models)
        [line] = _ledger(store).recover()
        assert line.startswith("released ")
        assert store.get_build(dead.build_ids["r-001"]).state is JobState.FAILED

    def test_a_send_still_within_its_grace_period_is_left_sending(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _dead_run_with_a_build(store, models)
        build_id = dead.build_ids["r-001"]
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build_id, state, "test")
        dead.owner.begin(build_id, "r-001", "Form4-1", reaped_holder())
        # The fleet folder may take a minute to report a print: too early to call it absent.
        slow = FleetFolderLocator(Path(store.path).parent / "fleet", report_delay_s=60.0)
        fresh = RunLedger(store, PrintOwner(store, [slow]), "recipe", "run-2",
                          SendHolder.local("run", os.getpid(), 0.0))
        [line] = fresh.recover()
        assert " unknown (" in line
        assert store.get_build(build_id).state is JobState.PRINT_SENDING


class _CancelledMeanwhile:
    """The run's job store, with a `jobs cancel` from another connection landing on one job
    just after the ledger listed the claims."""

    def __init__(self, store: SqliteJobStore, job_id: int) -> None:
        self._store = store
        self._job_id = job_id

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def list_jobs(self, **filters: Any) -> tuple[Job, ...]:
        jobs = self._store.list_jobs(**filters)
        if any(job.id == self._job_id for job in jobs):
            with SqliteJobStore(self._store.path) as other:
                other.transition(self._job_id, JobState.CANCELLED, "cancelled by a person")
        return jobs


class TestClaimsOfARunKilledBeforeItsBuilds:
    """A dead run's claims that never joined a build are released; nobody else's are."""

    def test_only_the_dead_runs_claims_are_released_with_a_line_each(
        self, store: SqliteJobStore, models: list[ModelInfo], tmp_path: Path
    ) -> None:
        _ledger(store).claim(models[:1])  # a run still planning
        store.create_job(recipe="recipe", source_path=tmp_path / "inbox" / "h.stl",
                               content_hash="h" * 64, state=JobState.PROCESSING)
        _ledger(store, reaped_holder()).claim(models[1:3])
        lines = _ledger(store).recover()
        assert lines == [f"released {m.path.name}: its run died before building it"
                         for m in models[1:3]]
        states = {Path(j.source_path).name: (j.state, j.reason) for j in store.list_jobs()}
        assert states == {
            "m0.stl": (JobState.PROCESSING, "taken by run run-1"),
            "h.stl": (JobState.PROCESSING, "created"),
            "m1.stl": (JobState.FAILED, "its run died before building it"),
            "m2.stl": (JobState.FAILED, "its run died before building it"),
        }

    def test_a_dead_runs_settled_jobs_are_left_as_they_are(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        dead = _ledger(store, reaped_holder())
        dead.claim(models[:1])
        [job] = store.list_jobs()
        store.transition(job.id, JobState.FAILED, "cannot be read")
        with capture_logs() as logs:
            assert _ledger(store).recover() == []
        assert store.get_job(job.id).reason == "cannot be read"
        assert [e for e in logs if e["log_level"] == "warning"] == []

    def test_a_claim_cancelled_meanwhile_is_not_released_and_the_next_one_is(
        self, store: SqliteJobStore, models: list[ModelInfo]
    ) -> None:
        _ledger(store, reaped_holder()).claim(models[:2])
        job, other = store.list_jobs()
        ledger = _ledger(store)
        ledger.store = cast(JobStore, _CancelledMeanwhile(store, job.id))
        with capture_logs() as logs:
            assert ledger.recover() == [
                f"released {models[1].path.name}: its run died before building it"]
        assert store.get_job(job.id).state is JobState.CANCELLED
        assert store.get_job(other.id).state is JobState.FAILED
        [event] = [e for e in logs if e["event"] == "run_release_failed"]
        assert event["job_id"] == job.id and event["log_level"] == "warning"
        assert "cancelled" in event["error"]
