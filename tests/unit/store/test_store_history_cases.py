"""A page of History from the store (``list_history_cases``): whole cases, kept when one of
their jobs is in a state asked for and by a search of their name or files, most recently
changed first, paged by the database; with the page's rule on them (``history_rows``), the
same cases, in the same order, as that rule reading every job (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import (
    ALLOWED_TRANSITIONS,
    BUILD_ALLOWED_TRANSITIONS,
    INITIAL_STATES,
    CaseKey,
    Job,
    JobState,
    JobStore,
)
from preform_pipeline.web.views import (
    HISTORY_PAGE_CASES,
    LEAD_ORDER,
    CaseRow,
    QueueFilter,
    history_rows,
)
from tests.unit.store.conftest import _shortest_path
from tests.unit.web.conftest import followed

S = JobState
#: Cases in the store: more than two pages of History, and more jobs than the 300 the page
#: read before it asked the store to filter.
CASES = 2 * HISTORY_PAGE_CASES + 25
#: States a case's jobs end in: on the job table, or through a build.
JOB_STATES = (S.QUEUED, S.PROCESSING, S.FAILED, S.CANCELLED, S.DUPLICATE_SKIPPED)
BUILD_STATES = (S.PRINT_SENT, S.FINISHED, S.PRINT_ERROR, S.AWAITING_APPROVAL, S.PREPARED)


@dataclass(frozen=True)
class Shown:
    case: str
    copy: bool
    state: JobState
    job_ids: tuple[int, ...]


def _tick(store: JobStore) -> None:
    clock = store._clock  # type: ignore[attr-defined]
    assert isinstance(clock, ManualClock)
    clock.advance(1)  # every write at its own second: "most recently changed" has no ties


def _job(store: JobStore, case: str | None, name: str, recipe: str, state: JobState) -> Job:
    path = _shortest_path(ALLOWED_TRANSITIONS, INITIAL_STATES, state)
    job = store.create_job(recipe=recipe, source_path=f"/hot/inbox/{name}", case_id=case,
                           state=path[0])
    for step in path[1:]:
        _tick(store)
        job = store.transition(job.id, step, f"to {step}")
    _tick(store)
    return job


def _built(store: JobStore, jobs: list[Job], state: JobState) -> None:
    build = store.create_build(recipe=jobs[0].recipe, job_ids=[j.id for j in jobs])
    path = _shortest_path(BUILD_ALLOWED_TRANSITIONS, frozenset({S.PROCESSING}), state)
    for step in path[1:]:
        _tick(store)
        store.transition_build(build.id, step, f"to {step}")
    _tick(store)


def _fill(store: JobStore) -> None:
    """Cases of one to three files in two recipes, some without a case id, some with a
    skipped copy, their jobs in mixed states; older cases touched again later."""
    rng = random.Random(29)
    made: list[Job] = []
    for n in range(CASES):
        recipe = "crowns" if n % 3 else "ortho_%50"
        case = None if n % 11 == 0 else f"C-{n}"
        files = ["upper.stl", "lower.stl", "bite 50%.stl"][: 1 + n % 3]
        jobs = [_job(store, case, f"{case or 'lone'}-{f}", recipe, S.PROCESSING)
                for f in files]
        if n % 4 == 0:
            _built(store, jobs, rng.choice(BUILD_STATES))
        else:
            for job in jobs:
                target = rng.choice(JOB_STATES[1:4])
                path = _shortest_path(ALLOWED_TRANSITIONS, frozenset({S.PROCESSING}), target)
                for step in path[1:]:
                    store.transition(job.id, step, f"to {step}")
                    _tick(store)
        if n % 7 == 0 and case is not None:
            _job(store, case, f"{case}-upper.stl", recipe, S.DUPLICATE_SKIPPED)
        made += jobs
    for job in rng.sample([j for j in made if j.state is S.PROCESSING], 5):
        store.update_job(job.id, fields={"touched": True})  # an old case changed late
        _tick(store)


def _shown(rows: list[CaseRow]) -> list[Shown]:
    return [Shown(r.case, r.copy, r.state, tuple(j.id for j in r.jobs)) for r in rows]


def _expected(store: JobStore, flt: QueueFilter) -> list[Shown]:
    """History's rule, stated here on every job of the recipe (none is a superseded
    failure: no job has a digest): a row is a case id, or a job's own key without one, and
    each skipped copy a row of its own; its state is its job's first in ``LEAD_ORDER``; a
    filter keeps it by that state, and a search by its name or any one of its file names
    (in any case); the most recently changed first (last change, then newest job)."""
    rows: dict[tuple[str, str], list[Job]] = {}
    for job in store.list_jobs(recipe=flt.recipe or None):
        copy = job.job_key if job.state is S.DUPLICATE_SKIPPED else ""
        rows.setdefault((job.case_id or job.job_key, copy), []).append(job)
    needle = flt.text.lower()
    kept = []
    for (case, copy), jobs in rows.items():
        state = min((j.state for j in jobs), key=LEAD_ORDER.index)
        names = [case, *(j.original_name for j in jobs)]
        if state in flt.states and any(needle in n.lower() for n in names):
            kept.append((max(j.updated_at for j in jobs), max(j.id for j in jobs),
                         Shown(case, bool(copy), state, tuple(j.id for j in jobs))))
    return [shown for *_, shown in sorted(kept, key=lambda k: k[:2], reverse=True)]


def _every_page(store: JobStore, flt: QueueFilter) -> list[Shown]:
    """Every page from the first, by their Older links; each page's Newer link leads back
    to the page before it."""
    pages: list[list[Shown]] = []
    link = flt.link(1)
    while True:
        page = history_rows(store, followed(link))
        assert len(page.rows) == HISTORY_PAGE_CASES or not page.older, link
        pages.append(_shown([r.case for r in page.rows]))
        if len(pages) > 1:
            back = history_rows(store, followed(page.newer))
            assert _shown([r.case for r in back.rows]) == pages[-2], page.newer
        if not page.older:
            return [shown for on_page in pages for shown in on_page]
        link = page.older


FILTERS = [
    QueueFilter("all"),
    QueueFilter("failed"),
    QueueFilter("printing"),
    QueueFilter("active"),
    QueueFilter("approval"),
    QueueFilter("all", text="C-1"),
    QueueFilter("all", text="LOWER"),
    QueueFilter("failed", text="bite 50%"),
    QueueFilter("all", text="_"),
    QueueFilter("all", recipe="ortho_%50"),
    QueueFilter("printing", recipe="crowns", text="upper"),
    QueueFilter("all", text="nothing like it"),
]


class TestAPageOfHistory:
    """Every filter's pages, walked, are the cases the page's rule keeps, in its order."""

    def test_the_store_pages_the_same_cases_as_the_rule_on_every_job(
        self, filled: JobStore
    ) -> None:
        store = filled
        assert len(store.list_jobs()) > 300
        for flt in FILTERS:
            assert _every_page(store, flt) == _expected(store, flt), flt

    def test_a_page_is_whole_cases_and_says_whether_an_older_one_exists(
        self, filled: JobStore
    ) -> None:
        store = filled
        first = history_rows(store, QueueFilter("all"))
        assert first.older and len(first.rows) == HISTORY_PAGE_CASES
        for row in first.rows:
            everyone = [j for j in store.list_jobs()
                        if (j.case_id or j.job_key) == row.case.case
                        and (j.state is S.DUPLICATE_SKIPPED) == row.case.copy
                        and (not row.case.copy or j.job_key == row.case.jobs[0].job_key)]
            assert [j.id for j in row.case.jobs] == [j.id for j in everyone]
        # Each file without a case id is a case of its own; each skipped copy a row of its own.
        last = len(_expected(store, QueueFilter("all")))
        assert last > 2 * HISTORY_PAGE_CASES
        pages = -(-last // HISTORY_PAGE_CASES)
        # An old link by page number alone still opens its page.
        page = history_rows(store, QueueFilter("all", page=pages))
        assert not page.older and len(page.rows) == last - (pages - 1) * HISTORY_PAGE_CASES
        beyond = history_rows(store, QueueFilter("all", page=pages + 1))
        assert (beyond.rows, beyond.older, beyond.hidden) == ((), "", 0)


class TestTheStoresPagingRules:
    """The first page starts at the newest case; a state keeps a case by any of its jobs."""

    def test_a_state_keeps_every_case_one_of_whose_jobs_is_in_it(
        self, store: JobStore
    ) -> None:
        failed = _job(store, "C-1", "a.stl", "crowns", S.FAILED)
        queued = _job(store, "C-1", "b.stl", "crowns", S.QUEUED)
        _job(store, "C-2", "c.stl", "crowns", S.CANCELLED)
        for state in (S.FAILED, S.QUEUED):
            assert store.list_history_cases(state=state, limit=5) == (failed, queued)

    def test_without_an_offset_the_page_starts_at_the_newest_case(
        self, store: JobStore
    ) -> None:
        older = _job(store, "C-old", "a.stl", "crowns", S.QUEUED)
        newer = _job(store, "C-new", "b.stl", "crowns", S.QUEUED)
        assert store.list_history_cases(limit=1) == (newer,)
        assert store.list_history_cases(limit=1, offset=1) == (older,)

    def test_a_key_pages_after_its_case_and_cases_of_one_moment_by_their_newest_job(
        self, store: JobStore
    ) -> None:
        # Three cases changed at one moment (no tick): their newest jobs' ids order them.
        a, b, c = (store.create_job(recipe="crowns", source_path=f"/hot/inbox/{n}.stl",
                                    case_id=n) for n in "ABC")
        assert a.updated_at == b.updated_at == c.updated_at
        key = CaseKey(b.updated_at, b.id)
        assert store.list_history_cases(limit=5, older_than=key) == (a,)
        assert store.list_history_cases(limit=5, newer_than=key) == (c,)
        # Forward, the nearest cases come first: the page just before a key.
        assert store.list_history_cases(limit=1, newer_than=CaseKey(a.updated_at, a.id)) == (b,)
