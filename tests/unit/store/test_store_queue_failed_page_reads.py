"""The dashboard's Queue and Failed cases pages each read one state of the store, as History
does (``JobStore.snapshot``; SQLite and PostgreSQL).

A second store on the same database (another connection, as another process has) commits a
change as one of the page's reads starts, through the reader's ``on_statement`` seam; the
page served on loopback is counted in read transactions.
"""

from __future__ import annotations

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import JobState
from preform_pipeline.web.views import QueueFilter, failed_cases, queue_page
from tests.unit.store.conftest import Counted, Interleaved, failed_job, put_right, served_page


class TestTheQueueReadsOneStateOfTheStore:
    """Its cases and its builds are read in one snapshot: a case batched between the two
    reads is not shown waiting above and in a build below."""

    def test_a_case_batched_between_the_reads_is_shown_in_one_state(
        self, interleaved: Interleaved
    ) -> None:
        both = interleaved
        waiting = both.writer.create_job(recipe="grey", source_path="/hot/inbox/C.stl",
                                         case_id="C", state=JobState.QUEUED)

        def batched() -> None:  # a daemon takes the case into a build
            both.writer.transition(waiting.id, JobState.PROCESSING, "taken")
            both.writer.create_build(recipe="grey", job_ids=[waiting.id])

        both.before("FROM builds", 1, batched)
        page = queue_page(both.reader, QueueFilter())
        assert [(r.case, r.state) for r in page.cases.rows] == [("C", JobState.QUEUED)]
        assert page.builds == ()  # the build came after the page's state
        assert both.reader.get_job(waiting.id).build_id is not None  # it was written

    def test_the_served_queue_is_one_read(self, counted: Counted) -> None:
        job = counted.store.create_job(recipe="grey", source_path="/hot/inbox/C.stl",
                                       case_id="C", state=JobState.PROCESSING)
        build = counted.store.create_build(recipe="grey", job_ids=[job.id])
        counted.reset()
        page = served_page(counted.store, "/")
        assert build.job_key in page
        assert len(counted.begun()) == 1


class TestFailedCasesReadOneStateOfTheStore:
    """The failures and the prints that put them right are read in one snapshot: a print
    and a new failure committed between the two reads do not leave a page that shows
    neither the case that failed nor the one failed since."""

    def test_a_print_between_the_reads_does_not_hide_a_failure_it_never_saw(
        self, interleaved: Interleaved, clock: ManualClock
    ) -> None:
        both = interleaved
        failed_job(both.writer, "C", "d-C")
        clock.advance(1)

        def meanwhile() -> None:  # C's file printed by a later job; N failed since
            put_right(both.writer, "P-C", "d-C")
            failed_job(both.writer, "N", "d-N")

        # The read of the prints that put failures right (store/superseded.py).
        both.before("content_hash IN", 1, meanwhile)
        page = failed_cases(both.reader)
        assert ([r.case for r in page.rows], page.hidden) == (["C"], 0)
        # As the page reads now: N, and C left out as put right.
        again = failed_cases(both.reader)
        assert ([r.case for r in again.rows], again.hidden) == (["N"], 1)

    def test_the_served_failed_cases_page_is_one_read(self, counted: Counted) -> None:
        failed_job(counted.store, "C", "d-C")
        counted.reset()
        page = served_page(counted.store, "/failed")
        assert "C.stl" in page
        assert len(counted.begun()) == 1
