"""The print step's send as the job store records it: a build the caller did not mark
prepared, a build already sent, and the print the run then verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs
from verify_support import run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.errors import PipelineError, PrintLookupError
from preform_pipeline.printing import SendHolder
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.simulator.cloud.testing import FakeWebApi
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify import PrintTracking
from preform_pipeline.verify.tracking import BuildTracker


class _Plan:
    """The part of a BuildPlan the tracking reads: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


def _build_in(store: SqliteJobStore, *states: JobState) -> int:
    """A build of one job, moved through ``states`` (none: it stays as created)."""
    job = store.create_job(recipe="r", source_path="a.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    for state in states:
        store.transition_build(build.id, state, "test")
    return build.id


def _prepared(store: SqliteJobStore, *then: JobState) -> int:
    """A build its run recorded as prepared, then moved through ``then``."""
    return _build_in(store, JobState.PREPARING, JobState.PREPARED, *then)


def _tracking(store: SqliteJobStore, build_id: int, clock: ManualClock,
              client: WebApiClient | None = None) -> PrintTracking:
    locators = [WebApiLocator(client)] if client is not None else []
    return PrintTracking(store=store, build_ids={"b-001": build_id}, clock=clock,
                         locators=locators)


def _tracker(store: SqliteJobStore, build_id: int, clock: ManualClock,
             client: WebApiClient | None = None) -> BuildTracker:
    tracking = _tracking(store, build_id, clock, client)
    return tracking.for_build(_Plan("b-001"))  # type: ignore[arg-type]


def _trail(store: SqliteJobStore, build_id: int) -> list[tuple[JobState | None, JobState, str]]:
    return [(t.from_state, t.to_state, t.reason) for t in store.build_history(build_id)]


class TestAPrintStepBeforePreparationWasRecorded:
    """A build still processing or preparing at its print step is recorded as prepared first."""

    def test_a_processing_build_is_recorded_preparing_then_prepared_then_sending(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = _build_in(store)
        assert store.get_build(build_id).state is JobState.PROCESSING
        tracker = _tracker(store, build_id, clock)
        name = tracker.job_name("case")
        assert tracker.before_send(name, "Form4-Lab") is None
        build = store.get_build(build_id)
        assert (build.state, build.job_name, build.printer) == (
            JobState.PRINT_SENDING, name, "Form4-Lab")
        assert _trail(store, build_id)[-3:-1] == [
            (JobState.PROCESSING, JobState.PREPARING, "being prepared"),
            (JobState.PREPARING, JobState.PREPARED, "prepared"),
        ]
        assert _trail(store, build_id)[-1][:2] == (JobState.PREPARED, JobState.PRINT_SENDING)

    def test_a_preparing_build_is_recorded_prepared_once_then_sending(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = _build_in(store, JobState.PREPARING)
        tracker = _tracker(store, build_id, clock)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") is None
        trail = _trail(store, build_id)
        assert [t[2] for t in trail].count("being prepared") == 0
        assert trail[-2] == (JobState.PREPARING, JobState.PREPARED, "prepared")
        assert trail[-1][:2] == (JobState.PREPARED, JobState.PRINT_SENDING)
        assert store.get_build(build_id).state is JobState.PRINT_SENDING


class TestTheSendItself:
    """A prepared build's send records who holds it, so a crash can be settled later."""

    def test_the_server_holding_the_send_is_stored_with_it(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = _prepared(store)
        holder = SendHolder(server="http://10.0.0.7:44388", request_timeout_s=30.0, remote=True)
        tracker = _tracker(store, build_id, clock)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab", holder=holder) is None
        build = store.get_build(build_id)
        assert build.state is JobState.PRINT_SENDING
        assert build.send_holder == holder.to_json()

    def test_a_cancelled_build_is_refused_saying_what_to_look_at(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = _prepared(store, JobState.CANCELLED)
        tracker = _tracker(store, build_id, clock)
        with pytest.raises(PipelineError) as caught:
            tracker.before_send("case", "Form4-Lab")
        assert store.get_build(build_id).state is JobState.CANCELLED
        key = tracker.job_key
        assert caught.value.message == (
            f"build {key} is cancelled in the job store; it is not printed")
        assert caught.value.hint == (
            f"a user or another process changed it; see `preform-pipeline jobs show {key}`")

    def test_the_refusal_names_the_jobs_command_of_the_runs_store(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        jobs = "preform-pipeline jobs --store /srv/lab/jobs.sqlite3"
        build_id = _prepared(store, JobState.CANCELLED)
        tracking = PrintTracking(store=store, build_ids={"b-001": build_id}, clock=clock,
                                 jobs=jobs)
        tracker = tracking.for_build(_Plan("b-001"))  # type: ignore[arg-type]
        with pytest.raises(PipelineError) as caught:
            tracker.before_send("case", "Form4-Lab")
        assert caught.value.hint == (
            f"a user or another process changed it; see `{jobs} show {tracker.job_key}`")


class TestABuildAlreadySent:
    """A build the store already holds as sent is verified as stored, and never sent again."""

    def test_the_stored_send_is_what_the_run_verifies_and_the_log_says_so(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = _prepared(store)
        key = store.get_build(build_id).job_key
        store.transition_build(build_id, JobState.PRINT_SENDING, "sending",
                               job_name=f"first {key}", printer="Form4-Stored")
        stored = store.transition_build(build_id, JobState.PRINT_SENT, "sent",
                                        print_job_id="job-1")
        clock.advance(600)
        tracking = _tracking(store, build_id, clock)
        tracker = tracking.for_build(_Plan("b-001"))  # type: ignore[arg-type]
        with capture_logs() as logs:
            assert tracker.before_send(f"second {key}", "Form4-Other") == "job-1"
        [sent] = tracking.sent
        assert (sent.job_id, sent.printer, sent.job_name, sent.key) == (
            "job-1", "Form4-Stored", f"first {key}", key)
        assert sent.sent_at == stored.print_sent_at != clock.now()
        assert [e for e in logs if e["event"] == "print_already_sent"] == [{
            "event": "print_already_sent", "log_level": "warning", "job_key": key,
            "state": "print_sent", "job_id": "job-1",
        }]
        assert store.get_build(build_id).state is JobState.PRINT_SENT


class TestAnInterruptedSend:
    """A send interrupted by a crash is looked up: found, it is not sent again; absent, it is."""

    def _sending(self, store: SqliteJobStore, holder: SendHolder | None = None) -> int:
        build_id = _prepared(store)
        key = store.get_build(build_id).job_key
        store.transition_build(build_id, JobState.PRINT_SENDING, "crashed after this",
                               job_name=f"case {key}", printer="Form4-Lab",
                               send_holder=holder.to_json() if holder is not None else None)
        return build_id

    def test_a_print_found_is_logged_as_found_and_not_sent_again(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build_id = self._sending(store)
        key = store.get_build(build_id).job_key
        fake_api.prints = [run_record(f"case {key}", status="PRINTING", guid="job-3",
                                      created=clock.now())]
        tracker = _tracker(store, build_id, clock, client)
        with capture_logs() as logs:
            assert tracker.before_send(f"case {key}", "Form4-Lab") == "job-3"
        [found] = [e for e in logs if e["event"] == "print_found_not_resent"]
        assert found["job_key"] == key and found["log_level"] == "warning"
        assert isinstance(found["reason"], str) and found["reason"]
        [already] = [e for e in logs if e["event"] == "print_already_sent"]
        assert (already["job_key"], already["job_id"]) == (key, "job-3")

    def test_a_print_proven_absent_is_sent_again_without_a_found_warning(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        build_id = self._sending(store, reaped_holder())
        clock.advance(3600)
        tracker = _tracker(store, build_id, clock, client)
        with capture_logs() as logs:
            assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") is None
        events = {e["event"] for e in logs}
        assert "print_found_not_resent" not in events
        assert "print_already_sent" not in events
        assert store.get_build(build_id).state is JobState.PRINT_SENDING

    def test_a_send_that_cannot_be_settled_names_the_build_key(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = self._sending(store)
        tracker = _tracker(store, build_id, clock)
        with pytest.raises(PrintLookupError) as caught:
            tracker.before_send("case", "Form4-Lab")
        assert caught.value.job_key == tracker.job_key
        assert caught.value.message.startswith(
            f"{tracker.job_key}: an earlier send was interrupted and cannot be settled: ")
        assert caught.value.message.endswith("; it is not sent again")

    def test_the_grace_period_is_counted_on_the_runs_clock(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        build_id = self._sending(store, reaped_holder(request_timeout_s=30.0))
        started = clock.now()
        tracker = _tracker(store, build_id, clock, client)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") is None
        [settled] = [t for t in store.build_history(build_id)
                     if t.from_state is JobState.PRINT_SENDING]
        # 30 s for the server to pass the print on, 300 s for the Web API to list it.
        assert (settled.at - started).total_seconds() >= 330.0
        assert settled.to_state is JobState.PREPARED
        assert "330 s after the send" in settled.reason
        assert store.get_build(build_id).state is JobState.PRINT_SENDING


class TestTheSavedFormIsRecordedWithTheSend:
    """The .form the build saved is in the job store once its print is sent (``jobs show``
    and the dashboard read it there), and nothing is recorded when none was saved."""

    def test_the_form_of_a_sent_build_is_recorded(
        self, store: SqliteJobStore, clock: ManualClock, tmp_path: Path
    ) -> None:
        build_id = _prepared(store)
        form = tmp_path / "2026-12-05" / "b-001.form"
        tracker = _tracker(store, build_id, clock)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab", form_path=form) is None
        build = store.get_build(build_id)
        assert (build.state, build.form_path) == (JobState.PRINT_SENDING, form)

    def test_a_build_that_saved_no_form_records_none(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = _prepared(store)
        tracker = _tracker(store, build_id, clock)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") is None
        build = store.get_build(build_id)
        assert (build.state, build.form_path) == (JobState.PRINT_SENDING, None)

    def test_a_send_without_a_form_keeps_the_one_recorded_before(
        self, store: SqliteJobStore, clock: ManualClock, tmp_path: Path
    ) -> None:
        build_id = _prepared(store)
        form = tmp_path / "b-001.form"
        store.update_build(build_id, form_path=form)  # recorded by an earlier attempt
        tracker = _tracker(store, build_id, clock)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") is None
        build = store.get_build(build_id)
        assert (build.state, build.form_path) == (JobState.PRINT_SENDING, form)
