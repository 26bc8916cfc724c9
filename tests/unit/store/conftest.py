"""Fixtures for the job store tests: a manual clock, a store on a real file, state drivers."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import (
    ALLOWED_TRANSITIONS,
    BUILD_ALLOWED_TRANSITIONS,
    INITIAL_STATES,
    Build,
    Job,
    JobState,
    SqliteJobStore,
)

#: Where the manual clock starts: a fixed, timezone-aware moment.
CLOCK_START = datetime(2024, 5, 1, 8, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=CLOCK_START)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "jobs.sqlite3"


@pytest.fixture
def store(store_path: Path, clock: ManualClock) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(store_path, clock=clock) as opened:
        yield opened


def _shortest_path(
    table: Mapping[JobState, frozenset[JobState]],
    starts: frozenset[JobState],
    goal: JobState,
) -> list[JobState]:
    """The shortest list of states from one of ``starts`` to ``goal`` through ``table``."""
    queue: deque[list[JobState]] = deque([s] for s in sorted(starts, key=lambda s: s.value))
    seen: set[JobState] = set(starts)
    while queue:
        path = queue.popleft()
        if path[-1] is goal:
            return path
        for nxt in sorted(table[path[-1]], key=lambda s: s.value):
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*path, nxt])
    raise AssertionError(f"{goal} cannot be reached")


def job_in_state(store: SqliteJobStore, state: JobState, *, recipe: str = "dental") -> Job:
    """A new job without a build, driven through the job table into ``state``."""
    path = _shortest_path(ALLOWED_TRANSITIONS, INITIAL_STATES, state)
    job = store.create_job(recipe=recipe, source_path=f"/hot/inbox/{state.value}.stl",
                           state=path[0])
    for step in path[1:]:
        job = store.transition(job.id, step, f"to {step}")
    assert job.state is state
    return job


def build_in_state(
    store: SqliteJobStore, state: JobState, *, jobs: int = 2, recipe: str = "dental"
) -> Build:
    """A new build of ``jobs`` new PROCESSING jobs, driven through the build table to ``state``."""
    members = [
        store.create_job(recipe=recipe, source_path=f"/hot/processing/m{i}.stl",
                         state=JobState.PROCESSING)
        for i in range(jobs)
    ]
    build = store.create_build(recipe=recipe, job_ids=[j.id for j in members])
    path = _shortest_path(BUILD_ALLOWED_TRANSITIONS, frozenset({JobState.PROCESSING}), state)
    for step in path[1:]:
        build = store.transition_build(build.id, step, f"to {step}")
    assert build.state is state
    return build
