"""The state table: every allowed transition works through the store, forbidden ones refuse."""

from __future__ import annotations

import pytest

from preform_pipeline.errors import InvalidTransitionError, StoreError
from preform_pipeline.store import (
    ACTIVE_STATES,
    ALLOWED_TRANSITIONS,
    BUILD_ALLOWED_TRANSITIONS,
    BUILD_STATES,
    CANCELLABLE_STATES,
    FINAL_STATES,
    INITIAL_STATES,
    INTERRUPTED_STATES,
    PRINT_PENDING_STATES,
    PRINT_SENT_STATES,
    RETRYABLE_STATES,
    STATE_DESCRIPTIONS,
    TERMINAL_STATES,
    JobState,
    JobStore,
    parse_state,
)
from tests.unit.store.conftest import build_in_state, job_in_state

S = JobState

JOB_EDGES = sorted(
    ((a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets),
    key=lambda e: (e[0].value, e[1].value),
)
BUILD_EDGES = sorted(
    ((a, b) for a, targets in BUILD_ALLOWED_TRANSITIONS.items() for b in targets),
    key=lambda e: (e[0].value, e[1].value),
)
FORBIDDEN = [
    (S.DISCOVERED, S.PREPARING),
    (S.DISCOVERED, S.PRINT_SENDING),
    (S.QUEUED, S.PRINT_SENDING),
    (S.PROCESSING, S.PRINT_SENT),
    (S.PREPARED, S.PRINT_SENT),
    (S.PRINT_SENDING, S.CANCELLED),
    (S.PRINT_SENT, S.CANCELLED),
    (S.PRINT_SENT, S.PREPARED),
    (S.VERIFYING, S.PRINT_SENT),
    (S.VERIFYING, S.CANCELLED),
    (S.FINISHED, S.QUEUED),
    (S.DONE, S.QUEUED),
    (S.FAILED, S.PREPARING),
    (S.CANCELLED, S.PROCESSING),
    (S.ABORTED, S.FINISHED),
]


class TestTheTable:
    """The table's groups are consistent with each other and with the edges."""

    def test_every_state_has_a_row_and_a_description(self) -> None:
        assert set(ALLOWED_TRANSITIONS) == set(JobState) == set(STATE_DESCRIPTIONS)

    def test_active_and_terminal_states_split_all_states(self) -> None:
        assert set(JobState) == ACTIVE_STATES | TERMINAL_STATES
        assert not ACTIVE_STATES & TERMINAL_STATES

    def test_every_active_state_has_a_way_out(self) -> None:
        assert all(ALLOWED_TRANSITIONS[s] for s in ACTIVE_STATES)

    def test_final_states_have_no_way_out_at_all(self) -> None:
        assert {s for s, targets in ALLOWED_TRANSITIONS.items() if not targets} == FINAL_STATES

    def test_every_retryable_state_goes_back_to_queued(self) -> None:
        assert all(S.QUEUED in ALLOWED_TRANSITIONS[s] for s in RETRYABLE_STATES)
        assert RETRYABLE_STATES <= TERMINAL_STATES

    def test_every_cancellable_state_may_be_cancelled(self) -> None:
        assert all(S.CANCELLED in ALLOWED_TRANSITIONS[s] for s in CANCELLABLE_STATES)

    def test_no_state_after_a_print_was_sent_may_be_cancelled(self) -> None:
        assert not CANCELLABLE_STATES & PRINT_SENT_STATES
        assert all(S.CANCELLED not in ALLOWED_TRANSITIONS[s] for s in PRINT_SENT_STATES)

    def test_a_send_cut_off_by_a_crash_can_be_resolved_every_way(self) -> None:
        assert {S.PRINT_SENT, S.VERIFYING, S.FINISHED, S.PREPARED, S.UNVERIFIED} <= (
            ALLOWED_TRANSITIONS[S.PRINT_SENDING]
        )

    def test_interrupted_and_pending_states_are_active(self) -> None:
        assert {S.PREPARING, S.PRINT_SENDING} == INTERRUPTED_STATES
        assert INTERRUPTED_STATES | PRINT_PENDING_STATES <= ACTIVE_STATES

    def test_the_build_table_is_the_job_table_without_file_states_and_retries(self) -> None:
        for state, targets in BUILD_ALLOWED_TRANSITIONS.items():
            assert targets <= ALLOWED_TRANSITIONS[state]
            assert targets <= BUILD_STATES
        assert S.QUEUED not in BUILD_STATES and S.DISCOVERED not in BUILD_STATES

    def test_states_parse_from_names_values_and_dashes(self) -> None:
        assert parse_state("print-sent") is S.PRINT_SENT
        assert parse_state("PRINT_ERROR") is S.PRINT_ERROR
        with pytest.raises(ValueError, match="known states: discovered"):
            parse_state("printed")


class TestAllowedJobTransitions:
    """Every edge of the job table is accepted by the store and recorded."""

    @pytest.mark.parametrize(("before", "after"), JOB_EDGES, ids=lambda s: s.value)
    def test_the_store_accepts_the_edge(
        self, store: JobStore, before: JobState, after: JobState
    ) -> None:
        job = job_in_state(store, before)
        moved = store.transition(job.id, after, "edge under test", expect=before)
        assert moved.state is after
        last = store.history(job.id)[-1]
        assert (last.from_state, last.to_state, last.reason) == (before, after, "edge under test")

    def test_jobs_may_start_in_each_initial_state_only(self, store: JobStore) -> None:
        for state in INITIAL_STATES:
            assert store.create_job(recipe="r", source_path="/a.stl", state=state).state is state
        with pytest.raises(InvalidTransitionError, match=r"new job: cannot go from \(new\)"):
            store.create_job(recipe="r", source_path="/a.stl", state=S.PREPARED)


class TestAllowedBuildTransitions:
    """Every edge of the build table moves the build and its jobs together."""

    @pytest.mark.parametrize(("before", "after"), BUILD_EDGES, ids=lambda s: s.value)
    def test_the_store_accepts_the_edge(
        self, store: JobStore, before: JobState, after: JobState
    ) -> None:
        build = build_in_state(store, before)
        moved = store.transition_build(build.id, after, "edge under test", expect=before)
        assert moved.state is after
        assert {j.state for j in store.list_jobs(build_id=build.id)} == {after}


class TestForbiddenTransitions:
    """A transition outside the table changes nothing and names both states."""

    @pytest.mark.parametrize(("before", "after"), FORBIDDEN, ids=lambda s: s.value)
    def test_a_job_refuses_the_edge(
        self, store: JobStore, before: JobState, after: JobState
    ) -> None:
        job = job_in_state(store, before)
        rows = len(store.history(job.id))
        with pytest.raises(InvalidTransitionError) as caught:
            store.transition(job.id, after, "should not happen")
        assert f"job {job.id}: cannot go from {before} to {after}" in str(caught.value)
        assert (caught.value.from_state, caught.value.to_state) == (before.value, after.value)
        assert store.get_job(job.id).state is before
        assert len(store.history(job.id)) == rows

    def test_an_invalid_transition_is_a_store_error(self, store: JobStore) -> None:
        job = job_in_state(store, S.FINISHED)
        with pytest.raises(StoreError, match="finished is final"):
            store.transition(job.id, S.QUEUED, "again")

    def test_a_build_refuses_a_retry(self, store: JobStore) -> None:
        build = build_in_state(store, S.FAILED)
        with pytest.raises(InvalidTransitionError, match=f"build {build.id}: cannot go from "
                           "failed to queued"):
            store.transition_build(build.id, S.QUEUED, "again")

    def test_a_batched_job_follows_its_build_into_print_states(
        self, store: JobStore
    ) -> None:
        build = build_in_state(store, S.PRINT_SENT, jobs=1)
        (job_id,) = build.job_ids
        with pytest.raises(InvalidTransitionError, match="transition_build"):
            store.transition(job_id, S.FINISHED, "seen in the feed")
        assert store.get_job(job_id).state is S.PRINT_SENT
