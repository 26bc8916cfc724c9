"""A page of History reads its cases' audit trails in one statement, not one per job, and
shows the same trails as each job's own (SQLite and PostgreSQL).

The statements are counted through the stores' ``on_statement`` seam (SQLite's own trace;
what the PostgreSQL store sends), while the dashboard serves the page on loopback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import Job, JobState, JobStore, SqliteJobStore
from preform_pipeline.store.sqlcore import HISTORIES_PER_STATEMENT
from preform_pipeline.web.views import HISTORY_PAGE_CASES, HistoryPage, QueueFilter, history_rows
from tests.unit.store.conftest import (
    ClassStore,
    Counted,
    Interleaved,
    failed_job,
    put_right,
    read_without,
    served_page,
)


@pytest.fixture
def counted_filled(class_store: ClassStore, filled: JobStore) -> Counted:
    """History's cases in the class's shared store (``filled``: its tests only read it), and
    the statements it runs, counted from :meth:`Counted.reset` on."""
    seen = Counted()
    seen.statements = class_store.statements
    seen.store = filled
    return seen


class TestAPageReadsItsTrailsAtOnce:
    """The page's trails are one statement, whatever the number of its jobs; each case's trail
    is its jobs' own trails, merged in the order written; a filtered page from which nothing
    is left out reads its cases in one statement too. History's cases are written once for
    the class (``filled``), whose tests only read them."""

    def test_a_full_page_is_one_read_of_trails(self, counted_filled: Counted) -> None:
        counted = counted_filled
        first = history_rows(counted.store, QueueFilter("all"))
        rows = first.rows
        jobs = sum(len(r.case.jobs) for r in rows)
        assert first.older and len(rows) == HISTORY_PAGE_CASES and jobs > HISTORY_PAGE_CASES
        counted.reset()
        page = served_page(counted.store, "/history")
        assert rows[0].trail[-1].reason in page
        assert len(counted.reading_trails()) == 1
        # One read transaction: the page's cases and their trails (``snapshot``).
        assert len(counted.begun()) == 1

    def test_a_deeper_filtered_page_reads_its_cases_at_once(
        self, counted_filled: Counted
    ) -> None:
        # Nothing is left out here, so the pages before it and one case more are enough.
        counted = counted_filled
        counted.reset()
        page = history_rows(counted.store, QueueFilter("failed", page=3), limit=5)
        assert len(page.rows) == 5 and page.older
        assert len([s for s in counted.statements if "AS page ON" in s]) == 1

    @pytest.mark.parametrize("flt", [QueueFilter("all"), QueueFilter("failed"),
                                     QueueFilter("all", page=2),
                                     QueueFilter("all", text="bite 50%")])
    def test_as_each_jobs_history_says(self, filled: JobStore, flt: QueueFilter) -> None:
        store = filled
        rows = history_rows(store, flt).rows
        assert rows
        for row in rows:
            own = sorted((t for j in row.case.jobs for t in store.history(j.id)),
                         key=lambda t: t.id)
            assert row.trail == tuple(own)
            assert len({t.job_id for t in own}) == len(row.case.jobs)


class TestTrailsReadInParts:
    """More jobs than one statement takes are read in parts, in one read transaction."""

    def test_more_jobs_than_one_statement_takes_are_read_in_parts(
        self, counted: Counted
    ) -> None:
        made = [counted.store.create_job(recipe="crowns", source_path=f"/hot/{n}.stl")
                for n in range(HISTORIES_PER_STATEMENT + 5)]
        counted.reset()
        trails = counted.store.histories([j.id for j in made])
        assert len(counted.reading_trails()) == 2 and len(counted.begun()) == 1
        assert sorted(trails) == [j.id for j in made]
        assert {len(t) for t in trails.values()} == {1}
        assert [t[0].job_id for t in trails.values()] == sorted(j.id for j in made)


class TestHistoriesOfNothingAndOfStrangers:
    """No ids read nothing; an id with no job has an empty trail, beside a real one's."""

    def test_nothing_and_a_stranger(self, counted: Counted) -> None:
        store = counted.store
        job = store.create_job(recipe="crowns", source_path="/hot/a.stl")
        store.transition(job.id, JobState.QUEUED, "queued")
        counted.reset()
        assert store.histories([]) == {}
        assert counted.statements == []
        trails = store.histories([job.id, job.id, 999_999])
        assert list(trails) == [job.id, 999_999]
        assert [t.to_state for t in trails[job.id]] == [JobState.DISCOVERED, JobState.QUEUED]
        assert trails[999_999] == ()


class TestAFailedRead:
    """A read the database refuses says which read it was."""

    def test_a_failed_read_says_what_was_being_done(self, store_path: Path) -> None:
        assert read_without(store_path, "transitions", lambda s: s.histories([1])).startswith(
            f"{store_path}: the job store failed while reading the history of a page of "
            "jobs: no such table: transitions")


class TestAReadBesideAWriter:
    """The page's trails are read from the last committed state while another process holds
    the store's write lock (a daemon moving jobs): the page does not wait for it."""

    def test_the_trails_come_while_another_process_writes(self, store_path: Path) -> None:
        with SqliteJobStore(store_path, busy_timeout_s=0.2) as store:
            job = store.create_job(recipe="crowns", source_path="/hot/a.stl")
            writer = sqlite3.connect(store_path, isolation_level=None)
            try:
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("UPDATE jobs SET reason = 'moving' WHERE id = ?", (job.id,))
                trails = store.histories([job.id])
            finally:
                writer.execute("ROLLBACK")
                writer.close()
        assert [t.to_state for t in trails[job.id]] == [JobState.DISCOVERED]


class TestAPageReadsOneStateOfTheStore:
    """A page's reads are one snapshot: a change another process commits between two of
    them is not half on the page (SQLite: one read transaction; PostgreSQL: REPEATABLE
    READ). The change is written by a second connection as the page's next read starts."""

    def _made(self, both: Interleaved, clock: ManualClock) -> dict[str, Job]:
        # Failed, oldest first: E D C B A; A's and B's files printed by later jobs (left out
        # of Failed), so a page of two reads three cases, shows only C, and reads again.
        made = {}
        for case_id in "EDCBA":
            made[case_id] = failed_job(both.writer, case_id, f"d-{case_id}")
            clock.advance(1)
        for case_id in "AB":
            put_right(both.writer, f"P-{case_id}", f"d-{case_id}")
            clock.advance(1)
        return made

    def _page_changed(self, both: Interleaved, clock: ManualClock, text: str, nth: int,
                      change: Callable[[JobStore, dict[str, Job]], object]
                      ) -> tuple[HistoryPage, dict[str, Job]]:
        """Failed's first page of two cases, ``change`` written by the other connection as
        the page's ``nth`` statement holding ``text`` starts."""
        made = self._made(both, clock)
        both.before(text, nth, lambda: change(both.writer, made))
        return history_rows(both.reader, QueueFilter("failed"), limit=2), made

    def test_a_case_changed_between_two_reads_of_the_page_is_not_missed(
        self, interleaved: Interleaved, clock: ManualClock
    ) -> None:
        both = interleaved
        # D is touched as the page's second read of cases starts: it moves above the cases
        # read so far, where a read of its own (older than C) no longer finds it.
        page, made = self._page_changed(both, clock, "AS page ON", 2,
                                        lambda w, m: w.update_job(m["D"].id, priority=5))
        assert [r.case.case for r in page.rows] == ["C", "D"]
        assert page.older and page.hidden == 2
        assert both.reader.get_job(made["D"].id).priority == 5  # it was written

    def test_the_trails_are_of_the_cases_as_the_page_shows_them(
        self, interleaved: Interleaved, clock: ManualClock
    ) -> None:
        both = interleaved
        # C is retried as the page reads the trails: its row says failed, so must its trail.
        page, made = self._page_changed(
            both, clock, "FROM transitions", 1,
            lambda w, m: w.transition(m["C"].id, JobState.QUEUED, "retried"))
        shown = page.rows[0]
        assert (shown.case.case, shown.case.state) == ("C", JobState.FAILED)
        assert [t.to_state for t in shown.trail][-1] is JobState.FAILED
        assert both.reader.get_job(made["C"].id).state is JobState.QUEUED

    def test_a_write_inside_a_snapshot_is_refused_in_words(
        self, interleaved: Interleaved
    ) -> None:
        store = interleaved.reader
        with store.snapshot(), pytest.raises(StoreError) as raised:
            store.create_job(recipe="grey", source_path="/hot/inbox/a.stl")
        assert raised.value.message.endswith(
            "creating a job was asked inside a read of one state of the store")
        assert store.list_jobs() == ()  # and the store is usable after it
