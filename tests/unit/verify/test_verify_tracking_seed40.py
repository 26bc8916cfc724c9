"""Session 22, seed 40: the name a sent print is recorded under, and a printer a build of the
run found after waiting, free again for the next build once that print was sent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
from verify_support import prepared_build

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from preform_pipeline.simulator.devices import printer_status
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify import PrintTracking
from preform_pipeline.verify.tracking import SentPrint
from tests.unit.recipes.recipe_cases import SLA_RECIPE, validate_text

#: The one Form 4 with the recipe's material (FLGPGR05) among the simulator's printers.
FORM4 = DEFAULT_PRINTERS[0]


class _Plan:
    """The part of a BuildPlan the tracking reads: its name."""

    def __init__(self, name: str) -> None:
        self.name = name



def _server_busy_until_first_sleep(clock: ManualClock) -> PreFormClient:
    """A PreFormServer whose only fitting printer prints until the tracking first slept, and
    is idle from then on (its print over by the time it is read again)."""
    def answer(request: httpx.Request) -> httpx.Response:
        status = "PRINTING" if not clock.sleeps else "IDLE"
        printer = replace(FORM4, status=status)
        return httpx.Response(200, json={"count": 1, "devices": [printer_status(printer)]})

    return PreFormClient("http://127.0.0.1:44389", transport=httpx.MockTransport(answer),
                         check_version_on_first_use=False)


class TestASentPrintsRecord:
    """A print sent after the send began is recorded under the job name it was sent with."""

    def test_the_record_carries_the_job_name_with_the_key(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = prepared_build(store)
        key = store.get_build(build_id).job_key
        tracking = PrintTracking(store=store, build_ids={"b-001": build_id}, clock=clock)
        tracker = tracking.for_build(_Plan("b-001"))  # type: ignore[arg-type]
        job_name = tracker.job_name("case-17")
        began = clock.now()
        assert tracker.before_send(job_name, "Form4-Lab") is None
        clock.advance(5)
        tracker.sent("job-7", "Form4-Lab")
        assert key in job_name
        assert tracking.sent == (
            SentPrint(build="b-001", key=key, sent_at=began, job_name=job_name,
                      printer="Form4-Lab", job_id="job-7", build_id=build_id),
        )
        stored = store.get_build(build_id)
        assert (stored.state, stored.job_name, stored.print_job_id) == (
            JobState.PRINT_SENT, job_name, "job-7")


class TestAPrinterFoundAfterWaiting:
    """The printer a build found free after waiting is its own claim: once that build's print
    was sent, the printer's status alone says whether the run's next build may take it."""

    def test_the_next_build_takes_it_at_once_when_it_reports_free(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        report = validate_text(tmp_path, SLA_RECIPE + "  - save_form\n"
                               "  - print: {printer: auto}\n")
        assert report.recipe is not None
        first, second = prepared_build(store), prepared_build(store)
        tracking = PrintTracking(store=store, clock=clock, wait_s=300.0, wait_interval_s=30.0,
                                 build_ids={"b-1": first, "b-2": second})
        one = tracking.for_build(_Plan("b-1"))  # type: ignore[arg-type]
        two = tracking.for_build(_Plan("b-2"))  # type: ignore[arg-type]
        with _server_busy_until_first_sleep(clock) as server:
            assert one.resolve_printer("auto", report.recipe, server) == FORM4.serial
            assert clock.sleeps == [30.0]
            one.before_send(one.job_name("b-1"), FORM4.serial)
            one.sent("job-1", FORM4.serial)
            assert two.resolve_printer("auto", report.recipe, server) == FORM4.serial
        # The second build did not wait: the first one's claim ended with its send.
        assert clock.sleeps == [30.0]
        assert [store.get_build(b).state for b in (first, second)] == [
            JobState.PRINT_SENT, JobState.PREPARED]


class TestWhatATrackerDoesUnasked:
    """A build is parked in the store only when the run waited its bound or the recipe wants
    approval: a fresh tracker sends."""

    def test_a_run_that_never_waited_sends_to_a_one_printer_list(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        report = validate_text(tmp_path, SLA_RECIPE + "  - save_form\n"
                               "  - print: {printer: 'Form4-Lab,'}\n")
        assert report.recipe is not None
        build_id = prepared_build(store)
        form = tmp_path / "b-1.form"
        form.write_bytes(b"form")
        tracking = PrintTracking(store=store, clock=clock, wait_s=300.0,
                                 build_ids={"b-1": build_id})
        tracker = tracking.for_build(_Plan("b-1"))  # type: ignore[arg-type]
        # One name: nothing to choose, so the server's devices are never read.
        printer = tracker.resolve_printer("Form4-Lab,", report.recipe, None)  # type: ignore[arg-type]
        assert printer == "Form4-Lab"  # the name, as the hot folder reads the same text
        assert tracker.before_send(tracker.job_name("b-1"), printer, form_path=form) is None
        stored = store.get_build(build_id)
        assert (stored.state, stored.printer) == (JobState.PRINT_SENDING, "Form4-Lab")
        assert JobState.WAITING_FOR_PRINTER not in {
            t.to_state for t in store.build_history(build_id)}
        assert clock.sleeps == []

    def test_a_hot_folder_build_is_not_held_for_approval_by_default(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build_id = prepared_build(store)
        form = tmp_path / "b-1.form"
        form.write_bytes(b"form")
        tracking = PrintTracking(store=store, clock=clock, dispatch=True,
                                 build_ids={"b-1": build_id})
        tracker = tracking.for_build(_Plan("b-1"))  # type: ignore[arg-type]
        assert tracker.before_send(tracker.job_name("b-1"), "Form4-Lab", form_path=form) is None
        stored = store.get_build(build_id)
        assert (stored.state, stored.printer) == (JobState.PRINT_SENDING, "Form4-Lab")
        assert JobState.AWAITING_APPROVAL not in {
            t.to_state for t in store.build_history(build_id)}
