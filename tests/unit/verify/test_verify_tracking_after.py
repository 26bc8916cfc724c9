"""After a run with a job store: verified ends land in the store and are notified with what
a person needs; a verification the Web API stops says so on each build and in a notification."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
from structlog.testing import capture_logs
from verify_support import prepared_build, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.executor.hooks import VERIFY_PENDING
from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.simulator.cloud.testing import FakeWebApi
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify import Notifier, PrintTracking, VerificationPoller, verify_pending
from preform_pipeline.verify.tracking import BuildTracker


class _Plan:
    """The part of a BuildPlan the tracking reads."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Webhook:
    """A webhook receiver behind the notifier's transport seam: keeps each body posted."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return httpx.Response(200)

    def notifier(self) -> Notifier:
        return Notifier(webhook_url="https://hooks.example.com/x",
                        transport=httpx.MockTransport(self.answer))


def _revoke_credentials(fake_api: FakeWebApi) -> None:
    """Someone rotated the application's secret on the Dashboard: no token is issued again."""
    fake_api.client_secret = "rotated"
    fake_api.invalidate_tokens()


def _verifying(client: WebApiClient, clock: ManualClock, **options: Any) -> PrintTracking:
    """Tracking that verifies with a poller sleeping on the manual clock."""
    poller = VerificationPoller(client, clock=clock, sleep=clock.sleep)
    return PrintTracking(client=client, clock=clock, poller=poller, **options)



def _send(tracking: PrintTracking, name: str, job_id: str) -> BuildTracker:
    tracker = tracking.for_build(_Plan(name))  # type: ignore[arg-type]
    tracker.before_send(tracker.job_name(name), "Form4-Lab")
    tracker.sent(job_id, "Form4-Lab")
    return tracker


def _pending(*names: str) -> RunResult:
    return RunResult(run_id="run-1", recipe="dental", simulated=True, dry_run=False,
                     outcomes=tuple(
                         BuildOutcome(name=n, index=i, status=BuildStatus.SUCCEEDED,
                                      models=("a.stl",), source_files=("a.stl",),
                                      verify=VERIFY_PENDING)
                         for i, n in enumerate(names, start=1)))


class TestEndsWithAStore:
    """Each end is written to the build in the store and notified with its details."""

    def test_a_finished_print_is_stored_and_notified(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build_id = prepared_build(store, recipe="dental")
        hook = _Webhook()
        tracking = _verifying(client, clock, store=store, build_ids={"b-1": build_id},
                              notifier=hook.notifier(), recipe="dental", run_id="run-1")
        tracker = _send(tracking, "b-1", "job-1")
        fake_api.prints = [run_record(tracker.job_name("b-1"), status="FINISHED", guid="g-1",
                                      created=clock.now(), printer="Form4-Lab")]
        verified = tracking.after_run(_pending("b-1"), threading.Event())
        assert store.get_build(build_id).state is JobState.FINISHED
        [outcome] = verified.outcomes
        assert outcome.verify == "finished"
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        [body] = hook.bodies
        assert {k: body[k] for k in ("event", "job_key", "name", "status", "printer",
                                     "print_job_id", "recipe", "run_id")} == {
            "event": "print_finished", "job_key": tracker.job_key, "name": "b-1",
            "status": "FINISHED", "printer": "Form4-Lab", "print_job_id": "job-1",
            "recipe": "dental", "run_id": "run-1"}
        tracking.close()

    def test_a_print_under_way_is_marked_verifying_in_the_store(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build_id = prepared_build(store, recipe="dental")
        stop = threading.Event()
        tracking = PrintTracking(
            client=client, store=store, build_ids={"b-1": build_id}, clock=clock,
            poller=VerificationPoller(client, clock=clock, sleep=lambda s: stop.set()))
        tracker = _send(tracking, "b-1", "job-1")
        fake_api.prints = [run_record(tracker.job_name("b-1"), status="PRINTING",
                                      remaining_s=600, created=clock.now())]
        verified = tracking.after_run(_pending("b-1"), stop)
        assert store.get_build(build_id).state is JobState.VERIFYING
        [outcome] = verified.outcomes
        assert (outcome.verify, outcome.verify_message) == (
            "pending",
            "verification was interrupted; `preform-pipeline verify` checks it later")
        assert verified.cancelled


class TestStoreGoneDuringVerification:
    """A store that cannot be written any more is logged per print; verification goes on."""

    def test_ends_and_progress_are_logged_with_the_key(
        self, tmp_path: Path, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock,
    ) -> None:
        store = SqliteJobStore(tmp_path / "gone.sqlite3", clock=clock)
        done_id, running_id = (prepared_build(store, recipe="dental") for _ in range(2))
        stop = threading.Event()
        tracking = PrintTracking(
            client=client, store=store, build_ids={"done": done_id, "running": running_id},
            clock=clock, poller=VerificationPoller(client, clock=clock,
                                                   sleep=lambda s: stop.set()))
        done, running = _send(tracking, "done", "job-1"), _send(tracking, "running", "job-2")
        fake_api.prints = [
            run_record(done.job_name("done"), status="FINISHED", created=clock.now()),
            run_record(running.job_name("running"), status="PRINTING", remaining_s=600,
                       created=clock.now()),
        ]
        store.close()
        with capture_logs() as logs:
            verified = tracking.after_run(_pending("done", "running"), stop)
        assert {o.name: o.verify for o in verified.outcomes} == {
            "done": "finished", "running": "pending"}
        unrecorded = [(e["event"], e["log_level"], e["job_key"]) for e in logs
                      if e["event"].endswith("_unrecorded")]
        assert unrecorded == [("verify_result_unrecorded", "error", done.job_key),
                              ("verify_progress_unrecorded", "warning", running.job_key)]
        assert all("the job store is closed" in e["error"] for e in logs
                   if e["event"].endswith("_unrecorded"))


class TestBuildsTheStoreDoesNotHold:
    """A sent build without a store build is verified without writing to the store."""

    def test_it_is_verified_and_the_store_is_not_asked(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        tracking = _verifying(client, clock, store=store)
        tracker = _send(tracking, "loose", "job-1")
        fake_api.prints = [run_record(tracker.job_name("loose"), status="FINISHED",
                                      created=clock.now())]
        with capture_logs() as logs:
            verified = tracking.after_run(_pending("loose"), threading.Event())
        assert [o.verify for o in verified.outcomes] == ["finished"]
        assert not [e for e in logs if e["log_level"] in ("warning", "error")]
        assert store.list_builds() == ()


class TestVerificationStopped:
    """A Web API error that ends verification is named on each pending build and notified."""

    def test_each_pending_build_says_why_and_a_notification_goes_out(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build_id = prepared_build(store, recipe="dental")
        hook = _Webhook()
        tracking = _verifying(client, clock, store=store, build_ids={"b-1": build_id},
                              notifier=hook.notifier(), recipe="dental", run_id="run-1")
        _send(tracking, "b-1", "job-1")
        _revoke_credentials(fake_api)
        with capture_logs() as logs:
            verified = tracking.after_run(_pending("b-1"), threading.Event())
        [outcome] = verified.outcomes
        assert outcome.verify == "pending"
        assert outcome.verify_message is not None
        assert outcome.verify_message.startswith("verification stopped (")
        assert outcome.verify_message.endswith("); `preform-pipeline verify` checks it later")
        assert verified.verification is not None
        error = verified.verification["error"]
        # what was refused, in words: no class name
        assert error is not None and error.startswith("POST ") and "Error" not in error
        assert [e["error"] for e in logs if e["event"] == "verification_failed"] == [error]
        assert outcome.verify_message == (
            f"verification stopped ({error}); `preform-pipeline verify` checks it later")
        assert [e["event"] for e in logs if e["log_level"] == "error"] == [
            "verification_failed"]
        assert not verified.cancelled
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        assert [(b["event"], b["message"], b["recipe"], b["run_id"]) for b in hook.bodies] == [
            ("verification_failed", error, "dental", "run-1")]
        tracking.close()

    def test_without_a_store_the_message_does_not_promise_a_later_check(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        tracking = _verifying(client, clock)
        _send(tracking, "b-1", "job-1")
        _revoke_credentials(fake_api)
        verified = tracking.after_run(_pending("b-1"), threading.Event())
        [outcome] = verified.outcomes
        assert outcome.verify_message is not None
        assert outcome.verify_message.startswith("verification stopped (")
        assert outcome.verify_message.endswith(")")


class TestNothingToVerify:
    """Builds that were not sent, or a run without a poller, are left as they are."""

    def test_a_pending_build_this_run_did_not_send_is_left_alone(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        tracking = _verifying(client, clock)
        result = _pending("never-sent")
        assert tracking.after_run(result, threading.Event()) is result

    def test_without_a_poller_the_result_is_unchanged(self, clock: ManualClock) -> None:
        tracking = PrintTracking(clock=clock)
        _send(tracking, "b-1", "job-1")
        result = _pending("b-1")
        assert tracking.after_run(result, threading.Event()) is result


class TestAnswersTheStoreCannotTake:
    """A send's answer that meets a build someone else moved is logged, never raised."""

    def _moved_while_sending(self, store: SqliteJobStore) -> tuple[PrintTracking, BuildTracker]:
        build_id = prepared_build(store, recipe="dental")
        tracking = PrintTracking(store=store, build_ids={"b-1": build_id})
        tracker = tracking.for_build(_Plan("b-1"))  # type: ignore[arg-type]
        tracker.before_send(tracker.job_name("b-1"), "Form4-Lab")
        store.transition_build(build_id, JobState.UNVERIFIED, "settled elsewhere")
        return tracking, tracker

    def test_an_accepted_print_is_still_tracked(self, store: SqliteJobStore) -> None:
        tracking, tracker = self._moved_while_sending(store)
        with capture_logs() as logs:
            tracker.sent("job-5", "Form4-Lab")
        [logged] = [e for e in logs if e["log_level"] == "error"]
        assert (logged["event"], logged["job_key"], logged["job_id"]) == (
            "print_sent_unrecorded", tracker.job_key, "job-5")
        assert "is unverified, expected print_sending" in logged["error"]
        assert [(s.build, s.job_id, s.printer) for s in tracking.sent] == [
            ("b-1", "job-5", "Form4-Lab")]

    def test_a_refusal_is_logged(self, store: SqliteJobStore) -> None:
        _, tracker = self._moved_while_sending(store)
        with capture_logs() as logs:
            tracker.refused("no room")
        [logged] = [e for e in logs if e["log_level"] == "warning"]
        assert (logged["event"], logged["job_key"]) == ("print_state_unrecorded", tracker.job_key)
        assert "is unverified, expected print_sending" in logged["error"]

    def test_a_refusal_fails_the_build_with_the_servers_reason(
        self, store: SqliteJobStore
    ) -> None:
        build_id = prepared_build(store, recipe="dental")
        tracking = PrintTracking(store=store, build_ids={"b-1": build_id})
        tracker = tracking.for_build(_Plan("b-1"))  # type: ignore[arg-type]
        tracker.before_send(tracker.job_name("b-1"), "Form4-Lab")
        tracker.refused("no room on the platform")
        last = store.build_history(build_id)[-1]
        assert (last.to_state, last.reason) == (
            JobState.FAILED, "the server refused the print: no room on the platform")

    def test_a_build_the_store_does_not_hold_records_nothing(
        self, store: SqliteJobStore
    ) -> None:
        tracking = PrintTracking(store=store)
        tracker = tracking.for_build(_Plan("loose"))  # type: ignore[arg-type]
        tracker.before_send(tracker.job_name("loose"), "Form4-Lab")
        with capture_logs() as logs:
            tracker.refused("no room")
            tracker.unconfirmed("timed out")
        assert logs == []

    def test_an_unanswered_send_stays_sending(self, store: SqliteJobStore) -> None:
        build_id = prepared_build(store, recipe="dental")
        tracking = PrintTracking(store=store, build_ids={"b-1": build_id})
        tracker = tracking.for_build(_Plan("b-1"))  # type: ignore[arg-type]
        tracker.before_send(tracker.job_name("b-1"), "Form4-Lab")
        with capture_logs() as logs:
            tracker.unconfirmed("timed out")
        assert store.get_build(build_id).state is JobState.PRINT_SENDING
        assert [(e["event"], e["build_id"], e["reason"]) for e in logs] == [
            ("print_left_sending", build_id, "timed out")]


class TestFailuresNotified:
    """A build that failed, or whose print was not confirmed, is notified with its key."""

    def test_an_unconfirmed_print_is_notified_with_its_job_key(self) -> None:
        hook = _Webhook()
        tracking = PrintTracking(notifier=hook.notifier(), recipe="dental", run_id="run-1")
        tracker = _send(tracking, "b-1", "job-1")
        result = RunResult(run_id="run-1", recipe="dental", simulated=True, dry_run=False,
                           outcomes=(BuildOutcome(
                               name="b-1", index=1, status=BuildStatus.PRINT_UNCONFIRMED,
                               models=("a.stl",), source_files=("a.stl",),
                               reason="no answer"),))
        tracking.after_run(result, threading.Event())
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        [body] = hook.bodies
        assert {k: body[k] for k in ("event", "job_key", "name", "status", "message")} == {
            "event": "print_unconfirmed", "job_key": tracker.job_key, "name": "b-1",
            "status": "print_unconfirmed", "message": "no answer"}
        tracking.close()


class TestRunSummary:
    """The run's verification summary counts prints, ends and requests, and is logged."""

    def test_verified_unverified_and_requests_are_counted(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        poller = VerificationPoller(client, clock=clock, sleep=clock.sleep, interval_s=60,
                                    deadline_s=600)
        tracking = PrintTracking(client=client, clock=clock, poller=poller)
        done, also = _send(tracking, "done", "job-1"), _send(tracking, "also", "job-3")
        _send(tracking, "lost", "job-2")
        fake_api.prints = [
            run_record(done.job_name("done"), status="FINISHED", created=clock.now()),
            run_record(also.job_name("also"), status="FINISHED", created=clock.now()),
        ]
        spent_before = client.budget().as_dict()["spent"]
        with capture_logs() as logs:
            verified = tracking.after_run(_pending("done", "also", "lost"), threading.Event())
        assert {o.name: o.verify for o in verified.outcomes} == {
            "done": "finished", "also": "finished", "lost": "unverified"}
        summary = verified.verification
        assert summary is not None
        assert {k: summary[k] for k in ("prints", "verified", "unverified", "pending",
                                        "error")} == {
            "prints": 3, "verified": 2, "unverified": 1, "pending": 0, "error": None}
        assert summary["polls"] == poller.polls >= 2
        assert summary["requests"] == poller.requests >= summary["polls"]
        assert summary["budget"]["spent"] - spent_before >= summary["requests"]
        [logged] = [e for e in logs if e["event"] == "run_verified"]
        assert {k: v for k, v in logged.items() if k not in ("event", "log_level")} == {
            k: v for k, v in summary.items() if k != "budget"}
        assert not verified.cancelled
        # A second verification with the same poller counts only its own polls and requests.
        polls, requests = poller.polls, poller.requests
        again = tracking.after_run(_pending("done"), threading.Event())
        assert again.verification is not None
        assert again.verification["polls"] == poller.polls - polls >= 1
        assert again.verification["requests"] == poller.requests - requests >= 1

    def test_each_poll_is_told_how_many_prints_are_left(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        stop = threading.Event()
        tracking = _verifying(client, clock)
        left: list[int] = []

        def on_poll(outcome: Any, pending: int) -> None:
            left.append(pending)
            stop.set()  # the user stops the run after the first poll

        tracking.on_poll = on_poll
        done, running = _send(tracking, "done", "job-1"), _send(tracking, "running", "job-2")
        fake_api.prints = [
            run_record(done.job_name("done"), status="FINISHED", created=clock.now()),
            run_record(running.job_name("running"), status="PRINTING", remaining_s=600,
                       created=clock.now()),
        ]
        verified = tracking.after_run(_pending("done", "running"), stop)
        assert left == [1]
        assert {o.name: o.verify for o in verified.outcomes} == {
            "done": "finished", "running": "pending"}
        assert verified.cancelled

    def test_a_print_never_seen_is_notified_with_the_printer_it_was_sent_to(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        hook = _Webhook()
        poller = VerificationPoller(client, clock=clock, sleep=clock.sleep, interval_s=60,
                                    deadline_s=300)
        tracking = PrintTracking(client=client, clock=clock, poller=poller,
                                 notifier=hook.notifier())
        lost = _send(tracking, "lost", "job-2")
        tracking.after_run(_pending("lost"), threading.Event())
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        [body] = hook.bodies
        assert (body["event"], body["job_key"], body["printer"], body["print_job_id"]) == (
            "print_unverified", lost.job_key, "Form4-Lab", "job-2")
        tracking.close()


class TestOtherOutcomes:
    """A print error is notified with its message; builds that do not verify keep theirs."""

    def test_a_print_error_is_notified_with_the_printers_message(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        hook = _Webhook()
        tracking = _verifying(client, clock, notifier=hook.notifier())
        failed = _send(tracking, "failed", "job-1")
        fake_api.prints = [run_record(failed.job_name("failed"), status="ERROR",
                                      message="Resin level too low", created=clock.now())]
        tracking.after_run(_pending("failed"), threading.Event())
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        assert [(b["event"], b["message"]) for b in hook.bodies] == [
            ("print_error", "Resin level too low")]
        tracking.close()

    def test_a_sent_build_without_verify_is_left_as_it_is(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        tracking = _verifying(client, clock)
        done = _send(tracking, "done", "job-1")
        _send(tracking, "unverified-by-choice", "job-2")
        fake_api.prints = [run_record(done.job_name("done"), status="FINISHED",
                                      created=clock.now())]
        plain = BuildOutcome(name="unverified-by-choice", index=2,
                             status=BuildStatus.SUCCEEDED, models=("b.stl",),
                             source_files=("b.stl",))
        result = _pending("done")
        result = RunResult(run_id="run-1", recipe="dental", simulated=True, dry_run=False,
                           outcomes=(*result.outcomes, plain))
        verified = tracking.after_run(result, threading.Event())
        assert verified.outcomes[1] is plain


class TestOneNoticePerPrintEnd:
    """A run waiting on its print and cron's verify on the same store notify its end once."""

    def _run_sends(self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
                   clock: ManualClock, hook: _Webhook) -> tuple[PrintTracking, int]:
        build_id = prepared_build(store, recipe="dental")
        tracking = _verifying(client, clock, store=store, build_ids={"b-1": build_id},
                              notifier=hook.notifier(), recipe="dental", run_id="run-1")
        tracker = _send(tracking, "b-1", "job-1")
        fake_api.prints = [run_record(tracker.job_name("b-1"), status="ERROR", guid="g-1",
                                      message="Resin level too low", created=clock.now())]
        return tracking, build_id

    def test_cron_verify_first_then_the_run_says_it_once(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock, tmp_path: Path,
    ) -> None:
        run_hook, cron_hook = _Webhook(), _Webhook()
        tracking, build_id = self._run_sends(store, client, fake_api, clock, run_hook)
        with SqliteJobStore(store.path) as cron_store, cron_hook.notifier() as cron:
            verify_pending(cron_store, client, clock=clock, notifier=cron)
            assert cron.flush(5)
        verified = tracking.after_run(_pending("b-1"), threading.Event())
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        tracking.close()
        assert [o.verify for o in verified.outcomes] == ["print_error"]  # the run still knows
        assert store.get_build(build_id).state is JobState.PRINT_ERROR
        assert [b["event"] for b in cron_hook.bodies + run_hook.bodies] == ["print_error"]

    def test_a_verify_without_a_notifier_leaves_the_notice_to_the_run(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        run_hook = _Webhook()
        tracking, _ = self._run_sends(store, client, fake_api, clock, run_hook)
        with SqliteJobStore(store.path) as cron_store:
            verify_pending(cron_store, client, clock=clock)
        tracking.after_run(_pending("b-1"), threading.Event())
        assert tracking.notifier is not None and tracking.notifier.flush(5)
        tracking.close()
        assert [b["event"] for b in run_hook.bodies] == ["print_error"]

    def test_a_later_different_end_is_said_again(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        hook = _Webhook()
        build_id = prepared_build(store, JobState.PRINT_SENDING, JobState.PRINT_SENT)
        key = store.get_build(build_id).job_key
        with hook.notifier() as notifier:
            clock.advance(25 * 3600)  # past the 24 h deadline, nothing in the feed
            verify_pending(store, client, clock=clock, notifier=notifier)
            fake_api.prints = [run_record(f"late {key}", status="FINISHED", created=clock.now())]
            verify_pending(store, client, clock=clock, notifier=notifier)
            assert notifier.flush(5)
        assert [b["event"] for b in hook.bodies] == ["print_unverified", "print_finished"]
