"""Property: no sequence of store operations, allowed or not, reaches an invalid state.

A hypothesis state machine drives a real SQLite store in a temporary folder with random job and
build transitions (allowed and forbidden ones, with and without a stale ``expect``). After
every step the store must be consistent:

* each job's audit trail starts at an initial state and chains (every row leaves the state the
  previous one entered) along edges of the job table, and ends in the job's state;
* a batched job in a build-driven state is in its build's state (one print, one state);
* each build's own trail chains along the build table and ends in the build's state.

Each rule also checks its own effect: an allowed transition writes exactly one audit row for
the job (or one for the build and one per job that moves with it); a refused one raises the
store's error and changes nothing.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from preform_pipeline.errors import InvalidTransitionError, StoreConflictError, StoreError
from preform_pipeline.store import (
    ALLOWED_TRANSITIONS,
    BUILD_ALLOWED_TRANSITIONS,
    BUILD_DRIVEN_STATES,
    INITIAL_STATES,
    JobState,
    SqliteJobStore,
)

STATES = st.sampled_from(list(JobState))


#: A draw of 0..99 picks a state the table allows from the current one below this mark (so
#: long paths get walked), any state at or above it (so forbidden moves are tried too).
ALLOWED_SHARE = 75
CHOICES = st.integers(0, 99)
#: The way a print normally goes; the advance rules take it, so deep states are reached often.
ORDER = (
    JobState.PROCESSING, JobState.PREPARING, JobState.PREPARED, JobState.PRINT_SENDING,
    JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED,
)


def pick(choice: int, allowed: frozenset[JobState]) -> JobState:
    """The state ``choice`` names; the draw itself never depends on the store's state."""
    everything = list(JobState)
    if allowed and choice < ALLOWED_SHARE:
        options = sorted(allowed)
        return options[choice % len(options)]
    return everything[choice % len(everything)]


#: Everything the rules may observe: per job (state, build, trail length), per build likewise.
Snapshot = tuple[dict[int, tuple[JobState, int | None, int]], dict[int, tuple[JobState, int]]]


class StoreStateMachine(RuleBasedStateMachine):
    """Random job and build transitions against a real SQLite store."""

    jobs = Bundle("jobs")
    builds = Bundle("builds")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="store-sm-"))
        self.store = SqliteJobStore(self.folder / "jobs.sqlite3")

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- observing ------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        jobs = {
            j.id: (j.state, j.build_id, len(self.store.history(j.id)))
            for j in self.store.list_jobs()
        }
        builds = {
            b.id: (b.state, len(self.store.build_history(b.id))) for b in self.store.list_builds()
        }
        return jobs, builds

    def refused(self, before: Snapshot, error: type[Exception], call: Any) -> None:
        with pytest.raises(error):
            call()
        assert self.snapshot() == before, "a refused operation changed the store"

    # -- rules ----------------------------------------------------------------------------------

    @rule(target=jobs, state=st.sampled_from(sorted(INITIAL_STATES)))
    def create_job(self, state: JobState) -> int:
        job = self.store.create_job(recipe="r", source_path=self.folder / "m.stl", state=state)
        [row] = self.store.history(job.id)
        assert (row.from_state, row.to_state) == (None, state)
        return job.id

    @rule(job_id=jobs, choice=CHOICES)
    def move_job(self, job_id: int, choice: int) -> None:
        before = self.snapshot()
        state, build_id, trail = before[0][job_id]
        to_state = pick(choice, ALLOWED_TRANSITIONS[state])
        allowed = state.can_become(to_state) and not (
            build_id is not None and to_state in BUILD_DRIVEN_STATES
        )
        if not allowed:
            self.refused(before, InvalidTransitionError,
                         lambda: self.store.transition(job_id, to_state, "random"))
            return
        job = self.store.transition(job_id, to_state, "random", expect=state)
        assert job.state is to_state
        history = self.store.history(job_id)
        assert len(history) == trail + 1
        assert (history[-1].from_state, history[-1].to_state) == (state, to_state)

    @rule(job_id=jobs, to_state=STATES, stale=STATES)
    def move_job_expecting_a_stale_state(
        self, job_id: int, to_state: JobState, stale: JobState
    ) -> None:
        before = self.snapshot()
        if before[0][job_id][0] is stale:
            return
        self.refused(before, StoreConflictError,
                     lambda: self.store.transition(job_id, to_state, "stale", expect=stale))

    @rule(target=builds, job_id=jobs)
    def batch(self, job_id: int) -> int:
        before = self.snapshot()
        state, build_id, trail = before[0][job_id]
        if state is not JobState.PROCESSING or build_id is not None:
            self.refused(before, StoreError,
                         lambda: self.store.create_build(recipe="r", job_ids=[job_id]))
            return -1
        build = self.store.create_build(recipe="r", job_ids=[job_id])
        job = self.store.get_job(job_id)
        assert (job.build_id, job.state) == (build.id, JobState.PROCESSING)
        assert len(self.store.history(job_id)) == trail + 1
        return build.id

    @rule(target=builds, count=st.integers(1, 3))
    def batch_new_jobs(self, count: int) -> int:
        ids = [
            self.store.create_job(recipe="r", source_path=self.folder / f"m{n}.stl",
                                  state=JobState.PROCESSING).id
            for n in range(count)
        ]
        build = self.store.create_build(recipe="r", job_ids=ids)
        assert [j.id for j in self.store.build_members(build.id)] == ids
        return build.id

    @rule(build_id=builds, choice=CHOICES)
    def move_build(self, build_id: int, choice: int) -> None:
        if build_id >= 0:
            state = self.store.get_build(build_id).state
            self.check_build_move(build_id, pick(choice, BUILD_ALLOWED_TRANSITIONS[state]))

    @rule(build_id=builds)
    def advance_build(self, build_id: int) -> None:
        """The next step of a normal print, so that deep states are reached often."""
        if build_id >= 0:
            state = self.store.get_build(build_id).state
            if state in ORDER[:-1]:
                self.check_build_move(build_id, ORDER[ORDER.index(state) + 1])

    def check_build_move(self, build_id: int, to_state: JobState) -> None:
        before = self.snapshot()
        state, trail = before[1][build_id]
        if to_state not in BUILD_ALLOWED_TRANSITIONS[state]:
            self.refused(before, InvalidTransitionError,
                         lambda: self.store.transition_build(build_id, to_state, "random"))
            return
        event(f"build moved to {to_state.value}")
        movers = {i for i, (s, b, _) in before[0].items() if b == build_id and s is state}
        self.store.transition_build(build_id, to_state, "random", expect=state)
        jobs, builds = self.snapshot()
        assert builds[build_id] == (to_state, trail + 1)
        for job_id, (job_state, _, job_trail) in jobs.items():
            if job_id in movers:
                assert (job_state, job_trail) == (to_state, before[0][job_id][2] + 1)
            else:
                assert (job_state, job_trail) == (before[0][job_id][0], before[0][job_id][2])

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def every_job_trail_chains_along_the_table_to_its_state(self) -> None:
        for job in self.store.list_jobs():
            history = self.store.history(job.id)
            assert history[0].from_state is None and history[0].to_state in INITIAL_STATES
            for previous, row in itertools.pairwise(history):
                assert row.from_state is previous.to_state
                # A batching row records the build without a change of state.
                assert row.from_state is row.to_state or row.to_state in ALLOWED_TRANSITIONS[
                    row.from_state
                ], (row.from_state, row.to_state)
            assert history[-1].to_state is job.state

    @invariant()
    def batched_jobs_share_their_builds_state(self) -> None:
        builds = {b.id: b for b in self.store.list_builds()}
        for job in self.store.list_jobs():
            if job.build_id is not None and job.state in BUILD_DRIVEN_STATES:
                assert job.state is builds[job.build_id].state, (job.id, job.build_id)

    @invariant()
    def every_build_trail_chains_along_the_build_table(self) -> None:
        for build in self.store.list_builds():
            history = self.store.build_history(build.id)
            assert history[0].from_state is None
            for previous, row in itertools.pairwise(history):
                assert row.from_state is previous.to_state
                assert row.to_state in BUILD_ALLOWED_TRANSITIONS[row.from_state]
            assert history[-1].to_state is build.state


StoreStateMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.too_slow],
)


class TestStoreStateMachine(StoreStateMachine.TestCase):  # type: ignore[misc, valid-type]
    """Random operation sequences keep every job, build and audit trail consistent."""
