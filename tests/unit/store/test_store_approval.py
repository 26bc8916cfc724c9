"""Builds held for approval: the state, its edges and the decision record, in both stores, and
the approval rules (approve → waits for its printer; reject → failed with the reason)."""

from __future__ import annotations

import pytest

from preform_pipeline.errors import InvalidTransitionError, PipelineError
from preform_pipeline.printing.approval import approve, hold_for_approval, reject
from preform_pipeline.store import JobState, JobStore
from tests.unit.store.conftest import build_in_state

TARGET = {"names": ["Bench-A"], "auto": False, "machine_type": "FORM-4-0",
          "material": "FLGPGR05"}


def _held(store: JobStore) -> int:
    build = build_in_state(store, JobState.PREPARED)
    hold_for_approval(store, build.id, TARGET, job_name="crowns PP", priority=2,
                      describe="Bench-A")
    return build.id


class TestHeldBuilds:
    """A held build keeps its target and waits for a person, on SQLite and PostgreSQL."""

    def test_a_held_build_and_its_jobs_await_approval_with_their_target(
        self, store: JobStore
    ) -> None:
        build_id = _held(store)
        build = store.get_build(build_id)
        assert build.state is JobState.AWAITING_APPROVAL
        assert build.print_target == TARGET and build.priority == 2
        assert build.approval is None
        assert {j.state for j in store.build_members(build_id)} == {JobState.AWAITING_APPROVAL}

    def test_approving_moves_it_to_the_printers_waiting_line_naming_the_user(
        self, store: JobStore
    ) -> None:
        build_id = _held(store)
        build = approve(store, build_id, "alice")
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert build.waiting_since is not None
        assert build.approval is not None and build.approval["decision"] == "approved"
        assert build.approval["by"] == "alice"
        assert store.get_build(build_id).approval == build.approval
        assert store.build_history(build_id)[-1].reason == "approved by alice"

    def test_rejecting_fails_the_build_and_its_jobs_with_the_reason(
        self, store: JobStore
    ) -> None:
        build_id = _held(store)
        build = reject(store, build_id, "bob", "  crown 2\noverlaps the raft ")
        assert build.state is JobState.FAILED
        assert build.approval is not None and build.approval["reason"] == (
            "crown 2 overlaps the raft")
        reasons = {j.reason for j in store.list_jobs(build_id=build_id)}
        assert reasons == {"rejected by bob: crown 2 overlaps the raft"}
        assert {j.state for j in store.list_jobs(build_id=build_id)} == {JobState.FAILED}

    def test_a_decision_is_taken_once(self, store: JobStore) -> None:
        build_id = _held(store)
        approve(store, build_id, "alice")
        with pytest.raises(PipelineError, match="not awaiting approval"):
            reject(store, build_id, "bob", "too late")
        assert store.get_build(build_id).state is JobState.WAITING_FOR_PRINTER

    def test_a_rejection_without_a_reason_changes_nothing(self, store: JobStore) -> None:
        build_id = _held(store)
        with pytest.raises(PipelineError, match="needs a reason"):
            reject(store, build_id, "bob", "   ")
        assert store.get_build(build_id).state is JobState.AWAITING_APPROVAL

    def test_a_held_build_is_never_sent_straight_from_the_hold(self, store: JobStore) -> None:
        build_id = _held(store)
        with pytest.raises(InvalidTransitionError):
            store.transition_build(build_id, JobState.PRINT_SENDING, "skip the approval")

    def test_cancelling_a_case_of_a_held_build_prepares_the_build_again(
        self, store: JobStore
    ) -> None:
        build_id = _held(store)
        first = store.build_members(build_id)[0]
        store.transition(first.id, JobState.CANCELLED, "cancelled by alice (web)")
        assert store.get_build(build_id).state is JobState.PROCESSING
