"""Approval as an operator and the dashboard see it: the decision record, the trail, the log
events, the errors of a late or empty decision, and two operators deciding at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import DEFAULT_MANUAL_START, ManualClock
from preform_pipeline.errors import (
    DecidedAlreadyError,
    Decision,
    PipelineError,
    StoreConflictError,
    StoreError,
)
from preform_pipeline.printing.approval import (
    MAX_REASON_CHARS,
    approve,
    hold_for_approval,
    reject,
)
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.store import STATE_DESCRIPTIONS, Build, JobState, SqliteJobStore
from tests.unit.store.conftest import build_in_state

TARGET = {"names": ["Bench-B"], "auto": False, "machine_type": "FORM-4-0",
          "material": "FLGPGR05"}


def _hold(store: SqliteJobStore) -> Build:
    prepared = build_in_state(store, JobState.PREPARED)
    return hold_for_approval(store, prepared.id, TARGET, job_name="crowns PP-1", priority=3,
                             describe="Bench-B")


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


class TestHolding:
    """A held build records its target, name and priority, says what it waits for, and logs it."""

    def test_the_hold_is_recorded_on_the_build_its_trail_and_the_log(
        self, store: SqliteJobStore
    ) -> None:
        prepared = build_in_state(store, JobState.PREPARED)
        with capture_logs() as logs:
            build = hold_for_approval(store, prepared.id, TARGET, job_name="crowns PP-1",
                                      priority=3, describe="Bench-B")
        assert build.id == prepared.id and build.state is JobState.AWAITING_APPROVAL
        stored = store.get_build(prepared.id)
        assert (stored.print_target, stored.job_name, stored.priority) == (
            TARGET, "crowns PP-1", 3)
        assert store.build_history(prepared.id)[-1].reason == (
            "prepared; waits for an operator's approval, then for Bench-B")
        (held,) = _events(logs, "build_held_for_approval")
        assert (held["build_id"], held["job_key"]) == (prepared.id, prepared.job_key)

    def test_a_build_that_is_not_prepared_is_not_held_and_is_left_as_it_was(
        self, store: SqliteJobStore
    ) -> None:
        processing = build_in_state(store, JobState.PROCESSING)
        with pytest.raises(StoreConflictError) as caught:
            hold_for_approval(store, processing.id, TARGET, job_name="x", priority=1,
                              describe="Bench-B")
        assert caught.value.expected == ("prepared",) and caught.value.actual == "processing"
        assert store.get_build(processing.id).state is JobState.PROCESSING
        assert store.get_build(processing.id).print_target is None


class TestDecisions:
    """Each decision names who took it, when and why, in the build, its trail and the log."""

    def test_an_approval_records_exactly_who_and_when(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        held = _hold(store)
        clock.advance(90)
        with capture_logs() as logs:
            build = approve(store, held.id, "alice", clock=clock)
        assert build.approval == {"decision": "approved", "by": "alice",
                                  "at": clock.now().isoformat(), "reason": ""}
        assert store.get_build(held.id).approval == build.approval
        assert build.print_target == TARGET and build.job_name == "crowns PP-1"
        assert store.build_history(held.id)[-1].reason == "approved by alice"
        (event,) = _events(logs, "build_approved")
        assert (event["build_id"], event["job_key"], event["user"]) == (
            held.id, held.job_key, "alice")

    def test_a_rejection_records_the_reason_on_one_line_and_its_cases_fail_with_it(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        held = _hold(store)
        clock.advance(30)
        with capture_logs() as logs:
            build = reject(store, held.id, "bob", "\tcrown 3\n\n overlaps   the raft\n",
                           clock=clock)
        assert build.state is JobState.FAILED
        assert build.approval == {"decision": "rejected", "by": "bob",
                                  "at": clock.now().isoformat(),
                                  "reason": "crown 3 overlaps the raft"}
        assert store.build_history(held.id)[-1].reason == (
            "rejected by bob: crown 3 overlaps the raft")
        (event,) = _events(logs, "build_rejected")
        assert (event["build_id"], event["job_key"], event["user"]) == (
            held.id, held.job_key, "bob")

    def test_a_long_reason_is_cut_to_the_limit(self, store: SqliteJobStore) -> None:
        held = _hold(store)
        build = reject(store, held.id, "bob", "x" * (MAX_REASON_CHARS + 50))
        assert build.approval is not None
        assert build.approval["reason"] == "x" * MAX_REASON_CHARS
        assert store.build_history(held.id)[-1].reason == "rejected by bob: " + (
            "x" * MAX_REASON_CHARS)

    def test_an_empty_reason_says_what_to_write_and_changes_nothing(
        self, store: SqliteJobStore
    ) -> None:
        held = _hold(store)
        with capture_logs() as logs, pytest.raises(PipelineError) as caught:
            reject(store, held.id, "bob", " \n\t ")
        assert caught.value.message == "a rejection needs a reason"
        assert caught.value.hint == "say what is wrong, e.g. 'crown 3 overlaps the raft'"
        assert store.get_build(held.id).state is JobState.AWAITING_APPROVAL
        assert store.get_build(held.id).approval is None
        assert _events(logs, "build_rejected") == []


class TestLateDecisions:
    """A decision on a build no longer held names its state and where to look; nothing changes."""

    @pytest.mark.parametrize("decide", ["approve", "reject"])
    def test_a_second_decision_is_refused_with_who_decided_when_and_the_command_to_look(
        self, store: SqliteJobStore, clock: ManualClock, decide: str
    ) -> None:
        held = _hold(store)
        first = approve(store, held.id, "alice", clock=clock)
        clock.advance(90)
        with capture_logs() as logs, pytest.raises(DecidedAlreadyError) as caught:
            if decide == "approve":
                approve(store, held.id, "bob", clock=clock)
            else:
                reject(store, held.id, "bob", "too late", clock=clock)
        # Session 44: who was first, and when, from the store's record (the second operator
        # was told only the state it left).
        assert caught.value.message == (
            f"build {held.job_key} is not awaiting approval: prepared (.form saved); waits "
            "for a matching printer to be free, then is sent (priority, then oldest first); "
            "approved by alice at 2024-05-01 12:00:00 UTC")
        assert caught.value.decided == Decision("approved", "alice", DEFAULT_MANUAL_START)
        assert "waiting_for_printer" not in caught.value.message  # the store's word
        assert caught.value.hint == (
            "someone decided already, or it was cancelled; reload the page or see "
            f"`preform-pipeline jobs show {held.job_key}`")
        assert store.get_build(held.id).approval == first.approval
        assert [h.reason for h in store.build_history(held.id)][-1] == "approved by alice"
        assert logs == []


class _SlowReader(SqliteJobStore):
    """The real store, where another operator's decision lands right after each read of a
    build (the moment between reading the page's state and writing the decision)."""

    meanwhile: Any = None

    def get_build(self, build_id: int) -> Build:
        build = super().get_build(build_id)
        decide, self.meanwhile = self.meanwhile, None
        if decide is not None:
            decide()
        return build


class TestTwoOperatorsAtOnce:
    """When two operators decide at the same moment, the first decision stands and the other
    one is told whose decision came first, and when."""

    @pytest.fixture
    def slow(self, tmp_path: Path, clock: ManualClock) -> Any:
        with _SlowReader(tmp_path / "race.db", clock=clock) as opened:
            yield opened

    def test_a_rejection_does_not_overwrite_an_approval_that_landed_first(
        self, slow: _SlowReader, tmp_path: Path, clock: ManualClock
    ) -> None:
        held = _hold(slow)
        with SqliteJobStore(tmp_path / "race.db", clock=clock) as other:
            slow.meanwhile = lambda: approve(other, held.id, "alice", clock=clock)
            with pytest.raises(DecidedAlreadyError) as caught:
                reject(slow, held.id, "bob", "margin cut")
        # The lost compare-and-set is said as the late decision it is (session 44), not as
        # the store's "is waiting_for_printer, expected awaiting_approval".
        assert caught.value.decided == Decision("approved", "alice", DEFAULT_MANUAL_START)
        assert "waiting_for_printer" not in str(caught.value)
        # s44-mutants: the refusal read back after the race names the jobs command too.
        assert caught.value.hint is not None
        assert f"`{JOBS_COMMAND} show {held.job_key}`" in caught.value.hint
        build = slow.get_build(held.id)
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert build.approval is not None and build.approval["by"] == "alice"

    def test_an_approval_after_a_rejection_landed_first_is_a_conflict(
        self, slow: _SlowReader, tmp_path: Path, clock: ManualClock
    ) -> None:
        held = _hold(slow)
        with SqliteJobStore(tmp_path / "race.db", clock=clock) as other:
            slow.meanwhile = lambda: reject(other, held.id, "bob", "margin cut", clock=clock)
            with pytest.raises(DecidedAlreadyError) as caught:
                approve(slow, held.id, "alice")
        assert caught.value.message.endswith(
            "; rejected by bob at 2024-05-01 12:00:00 UTC")
        build = slow.get_build(held.id)
        assert build.state is JobState.FAILED
        assert build.approval is not None and build.approval["by"] == "bob"


class _AwayAfterTheRace(_SlowReader):
    """The real store, which fails every read after the other operator's decision landed:
    the moment the dashboard re-reads the build to say who was first."""

    def get_build(self, build_id: int) -> Build:
        if self.meanwhile is None:
            raise StoreError("database is locked")
        return super().get_build(build_id)


class TestAStoreAwayAfterTheRace:
    """Review (rv44-loose): the re-read that says who was first only adds to the refusal;
    the store failing it was the refusal's end (an outage page, the decision unsaid)."""

    def test_the_refusal_is_said_without_who_and_the_failed_read_is_logged(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        with _AwayAfterTheRace(tmp_path / "race.db", clock=clock) as away:
            held = _hold(away)
            with SqliteJobStore(tmp_path / "race.db", clock=clock) as other:
                away.meanwhile = lambda: approve(other, held.id, "alice", clock=clock)
                with capture_logs() as logs, pytest.raises(DecidedAlreadyError) as caught:
                    reject(away, held.id, "bob", "margin cut")
                assert other.get_build(held.id).state is JobState.WAITING_FOR_PRINTER
        assert caught.value.decided is None
        assert caught.value.message.startswith(
            f"build {held.job_key} is not awaiting approval: prepared (.form saved)")
        assert isinstance(caught.value.__cause__, StoreConflictError)
        assert [(e["build_id"], e["job_key"], e["error"])
                for e in _events(logs, "approval_decider_unread")
                ] == [(held.id, held.job_key, "database is locked")]
        # s44-mutants: said without who, it still says where to look.
        assert caught.value.hint is not None
        assert f"`{JOBS_COMMAND} show {held.job_key}`" in caught.value.hint


class TestADecisionRecordedOtherwise:
    """s44-mutants: a late decision says what the build's record holds, however it was
    written: none (the build was cancelled while held), no name, a time that does not read."""

    def test_a_build_cancelled_while_held_has_no_decision_to_name(
        self, store: SqliteJobStore
    ) -> None:
        held = _hold(store)
        store.transition_build(held.id, JobState.CANCELLED, "cancelled by the lab",
                               expect=JobState.AWAITING_APPROVAL)
        with pytest.raises(DecidedAlreadyError) as caught:
            approve(store, held.id, "alice")
        assert caught.value.decided is None
        cancelled = STATE_DESCRIPTIONS[JobState.CANCELLED]
        assert caught.value.message == (
            f"build {held.job_key} is not awaiting approval: {cancelled}")

    def test_a_record_without_a_name_or_a_readable_time_says_someone_and_no_time(
        self, store: SqliteJobStore
    ) -> None:
        held = _hold(store)
        store.transition_build(held.id, JobState.FAILED, "rejected",
                               expect=JobState.AWAITING_APPROVAL,
                               approval={"decision": "rejected", "at": "this morning"})
        with pytest.raises(DecidedAlreadyError) as caught:
            approve(store, held.id, "alice")
        assert caught.value.decided == Decision("rejected", "someone", None)
        assert caught.value.message.endswith("; rejected by someone")
