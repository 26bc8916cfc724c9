"""What the print owner writes to the store and its logs, and what its answers say to a person."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import PipelineError, PrintLookupError, StoreConflictError
from preform_pipeline.printing import (
    Evidence,
    FleetFolderLocator,
    PrintOwner,
    SendHolder,
    SendRecord,
    Sighting,
)
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.store import Build, JobState, SqliteJobStore

TIMEOUT_S = 30.0
REPORT_S = 2.0


@pytest.fixture(scope="module")
def dead() -> SendHolder:
    """The holder of a send whose server process ran and is over."""
    return reaped_holder(request_timeout_s=TIMEOUT_S)


def _prepared(store: SqliteJobStore) -> Build:
    job = store.create_job(recipe="r", source_path="m.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        build = store.transition_build(build.id, state, "test")
    return build


def _sending(store: SqliteJobStore, holder: SendHolder | None, printer: str = "Form4-1") -> Build:
    build = _prepared(store)
    return PrintOwner(store).begin(build.id, f"r {build.job_key}", printer, holder)


def _land(fleet: Path, name: str, **fields: object) -> None:
    folder = fleet / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"job_id": "j-9", "job_name": name, "printer": "Form4-2", **fields}
    (folder / "j-9.json").write_text(json.dumps(record), encoding="utf-8")


class _Blind:
    """A place that cannot be asked right now."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.report_delay_s = 0.0
        self.recheck_s = 5.0

    def locate(self, send: SendRecord) -> Sighting | None:
        raise PrintLookupError(send.job_key, "offline")


def _reasons(store: SqliteJobStore, build_id: int) -> list[str]:
    return [t.reason for t in store.build_history(build_id)]


class TestTheSendIsRecorded:
    """Each step of a send is a store row with the printer, the job and a reason a person reads."""

    def test_waiting_for_a_printer_keeps_the_job_name_target_and_priority(
        self, store: SqliteJobStore
    ) -> None:
        build = _prepared(store)
        waiting = PrintOwner(store).wait_for_printer(
            build.id, {"names": ["A", "B"]}, job_name="case 7", priority=3, describe="A or B")
        assert waiting.state is JobState.WAITING_FOR_PRINTER
        assert (waiting.job_name, waiting.priority) == ("case 7", 3)
        assert _reasons(store, build.id)[-1] == "waiting for a free printer: A or B"

    def test_only_a_prepared_build_waits_for_a_printer(self, store: SqliteJobStore) -> None:
        build = _sending(store, None)
        with pytest.raises(StoreConflictError):
            PrintOwner(store).wait_for_printer(build.id, {}, job_name="x", priority=0,
                                               describe="any")

    def test_begin_records_the_printer_job_name_and_holder(
        self, store: SqliteJobStore, dead: SendHolder
    ) -> None:
        build = _sending(store, dead, printer="Form4-7")
        assert (build.state, build.printer) == (JobState.PRINT_SENDING, "Form4-7")
        assert build.job_name == f"r {build.job_key}"
        assert SendHolder.from_json(build.send_holder) == dead
        assert _reasons(store, build.id)[-1] == "sending the print to Form4-7"

    def test_a_build_that_is_not_prepared_is_not_sent(self, store: SqliteJobStore) -> None:
        build = _sending(store, None)
        with pytest.raises(StoreConflictError):
            PrintOwner(store).begin(build.id, "again", "Form4-1", None)

    def test_an_accepted_print_records_its_job_and_printer(self, store: SqliteJobStore) -> None:
        build = _sending(store, None)
        sent = PrintOwner(store).sent(build.id, "job-42", "Form4-9")
        assert (sent.state, sent.print_job_id, sent.printer) == (
            JobState.PRINT_SENT, "job-42", "Form4-9")
        assert _reasons(store, build.id)[-1] == "accepted by Form4-9 as job job-42"

    def test_an_accepted_print_without_a_job_id_says_only_who_accepted_it(
        self, store: SqliteJobStore
    ) -> None:
        build = _sending(store, None)
        PrintOwner(store).sent(build.id, None, "Form4-9")
        assert _reasons(store, build.id)[-1] == "accepted by Form4-9"

    def test_only_a_sending_build_can_be_accepted_or_refused(
        self, store: SqliteJobStore
    ) -> None:
        build = _prepared(store)
        owner = PrintOwner(store)
        with pytest.raises(StoreConflictError):
            owner.sent(build.id, "job-1", "Form4-1")
        with pytest.raises(StoreConflictError):
            owner.refused(build.id, "no")
        assert store.get_build(build.id).state is JobState.PREPARED

    def test_a_refused_print_fails_the_build_with_the_servers_reason(
        self, store: SqliteJobStore
    ) -> None:
        build = _sending(store, None)
        failed = PrintOwner(store).refused(build.id, "tank missing")
        assert failed.state is JobState.FAILED
        assert _reasons(store, build.id)[-1] == "the server refused the print: tank missing"

    def test_an_unanswered_send_is_logged_and_stays_sending(
        self, store: SqliteJobStore
    ) -> None:
        build = _sending(store, None)
        with capture_logs() as logs:
            PrintOwner(store).unconfirmed(build.id, "read timed out")
        assert [e for e in logs if e["event"] == "print_left_sending"] == [
            {"event": "print_left_sending", "build_id": build.id, "reason": "read timed out",
             "log_level": "warning"}]
        assert store.get_build(build.id).state is JobState.PRINT_SENDING


class TestWhatAnAnswerSays:
    """Each answer about an interrupted send names why, in words a person can act on."""

    def test_a_build_that_is_not_sending_is_left_alone(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _prepared(store)
        answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(build)
        assert (answer.evidence, answer.reason, answer.build) == (
            Evidence.UNKNOWN, "build is prepared", build)
        assert not answer.pending

    def test_the_grace_period_left_is_counted_from_the_send(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        clock.advance(10)
        locator = FleetFolderLocator(fleet, report_delay_s=REPORT_S, recheck_s=0.5)
        # A later update of the row does not restart the grace period: the send's start does.
        touched = replace(build, updated_at=build.updated_at + timedelta(seconds=9))
        answer = PrintOwner(store, [locator], clock=clock).resolve(touched)
        assert answer.reason == "not seen yet; 22.0 s of the 32 s grace period left"
        assert (answer.evidence, answer.recheck_in_s) == (Evidence.UNKNOWN, 0.5)

    def test_a_send_without_a_recorded_start_counts_from_its_last_update(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        clock.advance(10)
        old = replace(build, print_sent_at=None, updated_at=build.updated_at + timedelta(
            seconds=4))
        answer = PrintOwner(store, [FleetFolderLocator(fleet, report_delay_s=REPORT_S)],
                            clock=clock).examine(SendRecord.of(old))
        assert answer.reason == "not seen yet; 26.0 s of the 32 s grace period left"

    def test_the_grace_period_is_the_request_timeout_plus_the_slowest_report_delay(
        self, store: SqliteJobStore, fleet: Path, dead: SendHolder
    ) -> None:
        slow = FleetFolderLocator(fleet, report_delay_s=7.0)
        fast = FleetFolderLocator(fleet, report_delay_s=1.0)
        assert PrintOwner(store, [fast, slow]).grace_s(dead) == TIMEOUT_S + 7.0
        assert PrintOwner(store).grace_s(dead) == TIMEOUT_S
        assert PrintOwner(store).grace_s(None) == 60.0

    def test_a_print_found_by_the_second_place_after_a_blind_first_is_found(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None)
        _land(fleet, f"r {build.job_key}")
        owner = PrintOwner(store, [_Blind("the cloud"), FleetFolderLocator(fleet)], clock=clock)
        answer = owner.resolve(build)
        assert (answer.evidence, answer.reason) == (
            Evidence.FOUND, f"found in the fleet folder {fleet}")
        assert answer.sighting is not None and answer.sighting.job_id == "j-9"

    def test_without_any_place_to_look_the_answer_says_so(
        self, store: SqliteJobStore, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        answer = PrintOwner(store, clock=clock).examine(SendRecord.of(build))
        assert (answer.evidence, answer.reason) == (
            Evidence.UNKNOWN,
            "there is no way to list the printer's jobs (no fleet folder, no Web API)")

    def test_an_unrecorded_holder_is_named_as_the_reason(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None)
        clock.advance(3600)
        answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).examine(
            SendRecord.of(build))
        assert answer.reason == "the server that held the send was not recorded"

    def test_every_place_that_could_not_be_asked_is_named(
        self, store: SqliteJobStore, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        clock.advance(3600)
        owner = PrintOwner(store, [_Blind("A"), _Blind("B")], clock=clock)
        answer = owner.examine(SendRecord.of(build))
        key = build.job_key
        assert answer.reason.startswith(f"not every place could be asked: A: {key}: offline")
        assert f"; B: {key}: offline" in answer.reason

    def test_absent_names_the_gone_server_the_places_and_the_grace_period(
        self, store: SqliteJobStore, tmp_path: Path, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        clock.advance(3600)
        places = [FleetFolderLocator(tmp_path / "a", report_delay_s=REPORT_S),
                  FleetFolderLocator(tmp_path / "b")]
        answer = PrintOwner(store, places, clock=clock).examine(SendRecord.of(build))
        assert answer.evidence is Evidence.ABSENT
        assert answer.reason == (
            f"{dead.describe()} is gone and nothing in the fleet folder {tmp_path / 'a'}, "
            f"the fleet folder {tmp_path / 'b'} shows the print 32 s after the send")


class TestWhatResolvingWrites:
    """Resolving moves the build once, with a reason, a log event, and respect for a rival."""

    def test_a_found_print_takes_the_printer_it_was_found_on(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None)
        _land(fleet, f"r {build.job_key}")
        with capture_logs() as logs:
            answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(build)
        assert answer.build is not None
        assert (answer.build.state, answer.build.printer, answer.build.print_job_id) == (
            JobState.PRINT_SENT, "Form4-2", "j-9")
        assert _reasons(store, build.id)[-1] == (
            f"found in the fleet folder {fleet} after an interrupted send; not sent again")
        assert [e for e in logs if e["event"] == "print_resolved"] == [{
            "event": "print_resolved", "build_id": build.id, "job_key": build.job_key,
            "evidence": "found", "reason": f"found in the fleet folder {fleet}",
            "pending": False, "log_level": "info"}]

    def test_a_print_found_without_a_printer_keeps_the_one_it_was_sent_to(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None, printer="Form4-5")
        _land(fleet, f"r {build.job_key}", printer=None)
        answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(build)
        assert answer.build is not None and answer.build.printer == "Form4-5"

    def test_a_proven_absent_print_may_be_sent_again(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        clock.advance(3600)
        answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(build)
        assert answer.build is not None and answer.build.state is JobState.PREPARED
        assert _reasons(store, build.id)[-1].startswith("proven not printed: ")
        assert _reasons(store, build.id)[-1].endswith("; may be sent again")

    def test_an_unsettled_send_tells_a_person_what_to_check(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None, printer="Form4-3")
        clock.advance(3600)
        PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(build)
        key = build.job_key
        assert _reasons(store, build.id)[-1] == (
            "an interrupted send cannot be settled (the server that held the send was not "
            f"recorded); it is not sent again: check Form4-3 for a job named 'r {key}', then "
            f"`preform-pipeline jobs resolve {key} --printed` or `--not-printed`")

    def test_an_unsettled_send_without_printer_or_name_names_the_key(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None, printer="Form4-3")
        clock.advance(3600)
        bare = replace(build, printer=None, job_name=None)
        PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(bare)
        assert f"check the printer for a job named '{build.job_key}'" in _reasons(
            store, build.id)[-1]

    @pytest.mark.parametrize("rival", [JobState.PRINT_SENT, JobState.UNVERIFIED])
    def test_a_build_settled_meanwhile_keeps_the_rivals_answer(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, dead: SendHolder,
        rival: JobState,
    ) -> None:
        stale = _sending(store, dead)
        store.transition_build(stale.id, rival, "settled elsewhere")
        clock.advance(3600)
        with capture_logs() as logs:
            answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(stale)
        assert answer.build is not None and answer.build.state is rival
        assert store.get_build(stale.id).state is rival
        moved = [e for e in logs if e["event"] == "interrupted_send_moved"]
        assert len(moved) == 1 and moved[0]["build_id"] == stale.id
        assert "print_sending" in moved[0]["error"]

    def test_a_found_print_of_a_build_settled_meanwhile_is_not_written_over(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        stale = _sending(store, None)
        store.transition_build(stale.id, JobState.UNVERIFIED, "settled elsewhere")
        _land(fleet, f"r {stale.job_key}")
        answer = PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(stale)
        assert answer.evidence is Evidence.FOUND
        assert store.get_build(stale.id).state is JobState.UNVERIFIED

    def test_an_unknown_final_answer_never_overrides_a_print_sent_meanwhile(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        stale = _sending(store, None)
        store.transition_build(stale.id, JobState.PRINT_SENT, "accepted after all")
        clock.advance(3600)
        PrintOwner(store, [FleetFolderLocator(fleet)], clock=clock).resolve(stale)
        assert store.get_build(stale.id).state is JobState.PRINT_SENT

    def test_waiting_ends_exactly_when_the_grace_period_does(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, dead: SendHolder
    ) -> None:
        build = _sending(store, dead)
        start = clock.monotonic()
        locator = FleetFolderLocator(fleet, report_delay_s=REPORT_S, recheck_s=0.25)
        answer = PrintOwner(store, [locator], clock=clock).resolve_waiting(build)
        assert answer.evidence is Evidence.ABSENT
        assert clock.monotonic() - start == pytest.approx(TIMEOUT_S + REPORT_S, abs=0.02)


class TestSettledByAPerson:
    """``jobs resolve`` writes who decided and refuses builds that are not in doubt."""

    def test_a_note_is_kept_in_the_reason(self, store: SqliteJobStore) -> None:
        build = _sending(store, None)
        PrintOwner(store).settle_by_person(build, printed=True, note="seen on the screen")
        assert _reasons(store, build.id)[-1] == (
            "a person confirmed the print exists (seen on the screen)")

    def test_without_a_note_the_reason_has_no_brackets(self, store: SqliteJobStore) -> None:
        build = _sending(store, None)
        PrintOwner(store).settle_by_person(build, printed=False)
        assert _reasons(store, build.id)[-1] == (
            "a person confirmed it was not printed; `jobs retry` prints it again")

    @pytest.mark.parametrize("printed", [True, False])
    def test_a_decision_on_a_stale_view_loses_to_the_change_it_missed(
        self, store: SqliteJobStore, printed: bool
    ) -> None:
        stale = _sending(store, None)
        store.transition_build(stale.id, JobState.PRINT_SENT, "verify found it")
        with pytest.raises(StoreConflictError):
            PrintOwner(store).settle_by_person(stale, printed=printed)
        assert store.get_build(stale.id).state is JobState.PRINT_SENT

    def test_a_build_in_no_doubt_is_refused_with_where_to_look(
        self, store: SqliteJobStore
    ) -> None:
        build = _prepared(store)
        with pytest.raises(PipelineError, match="only an unverified") as caught:
            PrintOwner(store).settle_by_person(build, printed=True)
        assert caught.value.hint == f"see `preform-pipeline jobs show {build.job_key}`"


class TestFleetFolder:
    """The fleet folder shows a print by its name or key, and an unreadable file means 'cannot
    tell'."""

    def _send(self, store: SqliteJobStore) -> SendRecord:
        return SendRecord.of(_sending(store, None))

    def test_a_job_file_gives_the_job_printer_and_name(
        self, store: SqliteJobStore, fleet: Path
    ) -> None:
        send = self._send(store)
        _land(fleet, f"r {send.job_key}")
        assert FleetFolderLocator(fleet).locate(send) == Sighting(
            f"the fleet folder {fleet}", "j-9", "Form4-2", "QUEUED", f"r {send.job_key}")

    def test_a_job_file_without_job_or_printer_has_neither(
        self, store: SqliteJobStore, fleet: Path
    ) -> None:
        send = self._send(store)
        _land(fleet, f"r {send.job_key}", job_id="", printer="")
        sighting = FleetFolderLocator(fleet).locate(send)
        assert sighting is not None and (sighting.job_id, sighting.printer) == (None, None)

    def test_a_renamed_job_is_matched_by_its_key_and_another_name_is_not(
        self, store: SqliteJobStore, fleet: Path
    ) -> None:
        send = self._send(store)
        _land(fleet, f"renamed {send.job_key}")
        assert FleetFolderLocator(fleet).locate(send) is not None
        _land(fleet, "r something else")
        assert FleetFolderLocator(fleet).locate(send) is None

    def test_a_send_record_carries_the_builds_key_name_printer_and_id(
        self, store: SqliteJobStore
    ) -> None:
        build = _sending(store, None, printer="Form4-8")
        send = SendRecord.of(build)
        assert (send.build_id, send.job_key, send.job_name, send.printer) == (
            build.id, build.job_key, f"r {build.job_key}", "Form4-8")
        assert send.matches(f"r {build.job_key}") and not send.matches("r")

    def test_an_unreadable_job_file_is_logged_and_means_cannot_tell(
        self, store: SqliteJobStore, fleet: Path
    ) -> None:
        send = self._send(store)
        (fleet / "jobs").mkdir(parents=True)
        broken = fleet / "jobs" / "half.json"
        broken.write_text('{"job_name": ', encoding="utf-8")
        with capture_logs() as logs, pytest.raises(PrintLookupError) as caught:
            FleetFolderLocator(fleet).locate(send)
        assert str(caught.value).startswith(f"{send.job_key}: {broken} cannot be read: ")
        events = [e for e in logs if e["event"] == "fleet_job_unreadable"]
        assert len(events) == 1 and events[0]["path"] == str(broken)
        assert "Expecting value" in events[0]["error"]
