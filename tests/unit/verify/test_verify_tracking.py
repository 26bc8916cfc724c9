"""The executor's print hooks: job keys, durable sends, interrupted sends, verification."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from verify_support import prepared_build, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.errors import PipelineError, PrintLookupError
from preform_pipeline.executor.hooks import VERIFY_PENDING
from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.printing import SendHolder
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.recipes.model import SceneSpec
from preform_pipeline.simulator.cloud.testing import FakeWebApi, sample_printer
from preform_pipeline.store import JobState, SqliteJobStore, extract_key
from preform_pipeline.verify import Notifier, PrintTracking, VerificationPoller
from preform_pipeline.verify.tracking import BuildTracker


class _Plan:
    """The part of a BuildPlan the tracking reads."""

    def __init__(self, name: str) -> None:
        self.name = name



def _tracker(tracking: PrintTracking, name: str = "b-001") -> BuildTracker:
    return tracking.for_build(_Plan(name))  # type: ignore[arg-type]


class TestJobKeys:
    """Every print's job name carries the build's key."""

    def test_the_stores_key_is_embedded_in_the_job_name(self, store: SqliteJobStore) -> None:
        build_id = prepared_build(store)
        tracker = _tracker(PrintTracking(store=store, build_ids={"b-001": build_id}))
        name = tracker.job_name("dental-b-001")
        assert extract_key(name) == store.get_build(build_id).job_key
        assert name.startswith("dental-b-001 PP-")

    def test_a_build_named_by_its_key_keeps_it_and_is_named_once(self) -> None:
        tracker = _tracker(PrintTracking(), "PP-4K7QX0M2ZD")
        assert tracker.job_name("dental PP-4K7QX0M2ZD") == "dental PP-4K7QX0M2ZD"

    def test_without_a_store_each_build_gets_its_own_stable_key(self) -> None:
        tracking = PrintTracking()
        first, second = _tracker(tracking, "b-1"), _tracker(tracking, "b-2")
        assert first.job_key != second.job_key
        assert first.job_name(first.job_name("x")) == first.job_name("x")


class TestDurableSend:
    """The store says print_sending before the request and print_sent after the answer."""

    def test_a_send_is_recorded_before_and_after(self, store: SqliteJobStore) -> None:
        build_id = prepared_build(store)
        tracker = _tracker(PrintTracking(store=store, build_ids={"b-001": build_id}))
        name = tracker.job_name("case")
        assert tracker.before_send(name, "Form4-Lab") is None
        sending = store.get_build(build_id)
        assert (sending.state, sending.job_name, sending.printer) == (
            JobState.PRINT_SENDING, name, "Form4-Lab"
        )
        tracker.sent("job-77", "Form4-Lab")
        sent = store.get_build(build_id)
        assert (sent.state, sent.print_job_id) == (JobState.PRINT_SENT, "job-77")

    def test_a_refused_print_fails_the_build_and_an_unanswered_one_stays_sending(
        self, store: SqliteJobStore
    ) -> None:
        refused, silent = prepared_build(store), prepared_build(store)
        tracking = PrintTracking(store=store, build_ids={"r": refused, "s": silent})
        for name, outcome in (("r", "refused"), ("s", "unconfirmed")):
            tracker = _tracker(tracking, name)
            tracker.before_send(tracker.job_name(name), "Form4-Lab")
            getattr(tracker, outcome)("why")
        assert store.get_build(refused).state is JobState.FAILED
        assert store.get_build(silent).state is JobState.PRINT_SENDING

    def test_a_build_the_user_cancelled_is_not_printed(self, store: SqliteJobStore) -> None:
        build_id = prepared_build(store, JobState.CANCELLED)
        tracker = _tracker(PrintTracking(store=store, build_ids={"b-001": build_id}))
        with pytest.raises(PipelineError, match="cancelled in the job store"):
            tracker.before_send("x", "Form4-Lab")

    def test_a_build_already_sent_is_not_sent_again(self, store: SqliteJobStore) -> None:
        build_id = prepared_build(store)
        store.transition_build(build_id, JobState.PRINT_SENDING, "s", job_name="n")
        store.transition_build(build_id, JobState.PRINT_SENT, "s", print_job_id="job-1")
        tracker = _tracker(PrintTracking(store=store, build_ids={"b-001": build_id}))
        assert tracker.before_send("n", "Form4-Lab") == "job-1"


class TestInterruptedSend:
    """A build left in print_sending is looked up before anything is sent."""

    def _sending(
        self, store: SqliteJobStore, holder: SendHolder | None = None
    ) -> tuple[int, str]:
        build_id = prepared_build(store)
        key = store.get_build(build_id).job_key
        store.transition_build(build_id, JobState.PRINT_SENDING, "crashed after this",
                               job_name=f"case {key}", printer="Form4-Lab",
                               send_holder=holder.to_json() if holder is not None else None)
        return build_id, f"case {key}"

    def test_a_print_found_in_the_feed_is_not_sent_again(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build_id, name = self._sending(store)
        fake_api.prints = [run_record(name, status="PRINTING", guid="job-3",
                                      created=clock.now())]
        tracking = PrintTracking(store=store, build_ids={"b-001": build_id},
                                 locators=[WebApiLocator(client)], clock=clock)
        tracker = _tracker(tracking)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") == "job-3"
        build = store.get_build(build_id)
        assert (build.state, build.print_job_id) == (JobState.PRINT_SENT, "job-3")
        assert [s.job_id for s in tracking.sent] == ["job-3"]

    def test_a_print_missing_after_the_grace_period_is_sent_again(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        build_id, _ = self._sending(store, reaped_holder())
        clock.advance(3600)
        tracking = PrintTracking(store=store, build_ids={"b-001": build_id},
                                 locators=[WebApiLocator(client)], clock=clock)
        tracker = _tracker(tracking)
        assert tracker.before_send(tracker.job_name("case"), "Form4-Lab") is None
        history = [t.to_state for t in store.build_history(build_id)]
        assert history[-2:] == [JobState.PREPARED, JobState.PRINT_SENDING]

    def test_without_credentials_an_interrupted_send_is_never_resent(
        self, store: SqliteJobStore
    ) -> None:
        build_id, _ = self._sending(store)
        tracker = _tracker(PrintTracking(store=store, build_ids={"b-001": build_id}))
        with pytest.raises(PrintLookupError, match="not sent again"):
            tracker.before_send("case", "Form4-Lab")
        assert store.get_build(build_id).state is JobState.UNVERIFIED


class TestPrinterPolicy:
    """``auto`` picks a ready printer with the material, a different one per build."""

    def test_two_builds_get_two_printers(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.printers = [sample_printer(serial="Form4-A"), sample_printer(serial="Form4-B")]
        for record in fake_api.printers:
            record["printer_status"]["current_print_run"] = None
        tracking = PrintTracking(client=client)
        recipe = SimpleNamespace(scene=SceneSpec(
            machine_type="FORM-4-0", material_code="FLGPGR05", layer_thickness_mm=0.1))
        local: Any = None  # the Local API is not asked when the Web API is configured
        chosen = [
            _tracker(tracking, name).resolve_printer("auto", recipe, local)  # type: ignore[arg-type]
            for name in ("b-1", "b-2")
        ]
        assert chosen == ["Form4-A", "Form4-B"]
        named = _tracker(tracking, "b-3").resolve_printer("Form4-Z", recipe, local)  # type: ignore[arg-type]
        assert named == "Form4-Z"


def _outcome(
    name: str, status: BuildStatus = BuildStatus.SUCCEEDED, **fields: Any
) -> BuildOutcome:
    return BuildOutcome(name=name, index=1, status=status, models=("a.stl",),
                        source_files=("a.stl",), **fields)


class TestAfterRun:
    """After the run the shared poller fills each build's verify status and message."""

    def test_results_and_messages_land_in_the_run_result(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        tracking = PrintTracking(client=client, poller=VerificationPoller(
            client, clock=clock, sleep=clock.sleep), clock=clock)
        ok, bad = _tracker(tracking, "ok"), _tracker(tracking, "bad")
        for tracker in (ok, bad):
            tracker.before_send(tracker.job_name(tracker.build), "Form4-Lab")
            tracker.sent(f"job-{tracker.build}", "Form4-Lab")
        fake_api.prints = [
            run_record(ok.job_name("ok"), status="FINISHED", created=clock.now(), guid="1"),
            run_record(bad.job_name("bad"), status="ERROR", message="Resin level too low",
                       created=clock.now(), guid="2"),
        ]
        result = RunResult(run_id="r", recipe="r", simulated=True, dry_run=False, outcomes=(
            _outcome("ok", verify=VERIFY_PENDING), _outcome("bad", verify=VERIFY_PENDING),
            _outcome("dry", verify="skipped"),
        ))
        verified = tracking.after_run(result, threading.Event())
        by_name = {o.name: (o.verify, o.verify_message) for o in verified.outcomes}
        assert by_name == {"ok": ("finished", None), "bad": ("print_error", "Resin level too low"),
                           "dry": ("skipped", None)}
        assert verified.verification is not None
        assert (verified.verification["prints"], verified.verification["verified"]) == (2, 2)
        assert verified.verification["budget"]["spent"] == 2

    def test_an_interrupted_verification_says_so_and_marks_the_run(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        stop = threading.Event()

        def sleep(seconds: float) -> None:
            stop.set()

        tracking = PrintTracking(client=client, poller=VerificationPoller(
            client, clock=clock, sleep=sleep), clock=clock)
        tracker = _tracker(tracking, "slow")
        tracker.before_send(tracker.job_name("slow"), "P")
        tracker.sent("job", "P")
        result = RunResult(run_id="r", recipe="r", simulated=True, dry_run=False,
                           outcomes=(_outcome("slow", verify=VERIFY_PENDING),))
        verified = tracking.after_run(result, stop)
        [outcome] = verified.outcomes
        assert (outcome.verify, outcome.verify_message) == (
            "pending", "verification was interrupted"
        )
        assert verified.cancelled

    def test_failed_builds_are_notified(self) -> None:
        posted: list[bytes] = []

        def answer(request: httpx.Request) -> httpx.Response:
            posted.append(request.content)
            return httpx.Response(200)

        notifier = Notifier(webhook_url="https://hooks.example.com/x",
                            transport=httpx.MockTransport(answer))
        tracking = PrintTracking(notifier=notifier, recipe="dental", run_id="run-1")
        result = RunResult(run_id="run-1", recipe="dental", simulated=True, dry_run=False,
                           outcomes=(_outcome("b", BuildStatus.FAILED, reason="label too big"),))
        tracking.after_run(result, threading.Event())
        assert notifier.flush(5)
        tracking.close()
        [body] = posted
        assert b'"build_failed"' in body and b"label too big" in body and b"run-1" in body


def test_sent_times_come_from_the_tracking_clock(clock: ManualClock) -> None:
    tracking = PrintTracking(clock=clock)
    tracker = _tracker(tracking)
    tracker.before_send("n", "P")
    clock.advance(timedelta(minutes=5).total_seconds())
    tracker.sent("j", "P")
    [sent] = tracking.sent
    assert sent.sent_at == clock.now() - timedelta(minutes=5)
