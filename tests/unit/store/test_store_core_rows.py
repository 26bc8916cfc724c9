"""Every field a store writes comes back as it was written (store/sqlcore.py's row readers),
on both stores: a job and a build read back whole after every kind of write, their audit rows,
and the events that say a job was created."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import InvalidTransitionError, StoreError
from preform_pipeline.store import Build, Job, JobState, JobStore, Transition
from tests.unit.store.conftest import CLOCK_START

S = JobState
HASH = "sha256:" + "5e" * 32


def _at(minutes: int) -> datetime:
    return CLOCK_START + timedelta(minutes=minutes)


def _step(clock: ManualClock, minutes: int) -> datetime:
    """Move the clock to ``minutes`` after the start; returns that time."""
    clock.advance((_at(minutes) - clock.now()).total_seconds())
    return _at(minutes)


class TestAJobReadBack:
    """A job is read back with every column it was written with, by every lookup."""

    def test_a_new_job_has_what_it_was_created_with(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        with capture_logs() as logs:
            job = store.create_job(recipe="ortho", source_path=Path("/hot/inbox/case7/a.stl"),
                                   original_name="A.STL", content_hash=HASH, case_id="case-7",
                                   priority=3, fields={"patient": "Ann", "teeth": [11, 12]},
                                   state=S.PROCESSING, reason="dropped")
        expected = Job(id=job.id, job_key=job.job_key, recipe="ortho",
                       source_path=Path("/hot/inbox/case7/a.stl"), original_name="A.STL",
                       state=S.PROCESSING, created_at=CLOCK_START, updated_at=CLOCK_START,
                       content_hash=HASH, case_id="case-7", priority=3,
                       fields={"patient": "Ann", "teeth": [11, 12]}, reason="dropped")
        assert job == expected
        assert store.get_job(job.id) == expected
        assert store.find_by_key(job.job_key) == expected
        assert store.find_by_hash(HASH) == (expected,)
        assert store.find_by_path("/hot/inbox/case7/a.stl") == expected
        assert store.list_jobs() == (expected,)
        assert [e for e in logs if e["event"] == "job_created"] == [
            {"event": "job_created", "log_level": "info", "job_id": job.id,
             "job_key": job.job_key, "recipe": "ortho", "state": "processing",
             "source_path": str(Path("/hot/inbox/case7/a.stl"))}]
        assert store.history(job.id) == (
            Transition(id=store.history(job.id)[0].id, job_id=job.id, build_id=None,
                       from_state=None, to_state=S.PROCESSING, at=CLOCK_START,
                       reason="dropped"),)

    def test_a_job_s_defaults_are_its_file_name_and_nothing_else(self, store: JobStore) -> None:
        job = store.create_job(recipe="dental", source_path="/hot/inbox/b.stl")
        assert job == Job(id=job.id, job_key=job.job_key, recipe="dental",
                          source_path=Path("/hot/inbox/b.stl"), original_name="b.stl",
                          state=S.DISCOVERED, created_at=CLOCK_START, updated_at=CLOCK_START,
                          reason="created")
        assert store.get_job(job.id) == job

    def test_a_job_moved_and_updated_keeps_every_field(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = store.create_job(recipe="dental", source_path="/hot/inbox/c.stl")
        later = _step(clock, 5)
        store.transition(job.id, S.QUEUED, "queued", source_path="/hot/queue/c.stl",
                         case_id="case-9", priority=2, fields={"due": "2024-05-03"})
        store.update_job(job.id, print_job_id="p-1", printer="Form4-A",
                         verified_status="finished", verified_message="printed",
                         content_hash=HASH)
        expected = Job(id=job.id, job_key=job.job_key, recipe="dental",
                       source_path=Path("/hot/queue/c.stl"), original_name="c.stl",
                       state=S.QUEUED, created_at=CLOCK_START, updated_at=later,
                       content_hash=HASH, case_id="case-9", priority=2,
                       fields={"due": "2024-05-03"}, reason="queued", print_job_id="p-1",
                       printer="Form4-A", verified_status="finished",
                       verified_message="printed")
        assert store.get_job(job.id) == expected
        assert store.list_jobs(state=S.QUEUED, recipe="dental") == (expected,)


class TestABuildReadBack:
    """A build is read back with every column: its members, times of each step, and fields."""

    def test_a_build_through_its_whole_life_keeps_every_field(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        members = [store.create_job(recipe="ortho", source_path=f"/hot/processing/m{i}.stl",
                                    state=S.PROCESSING) for i in range(3)]
        ids = [members[2].id, members[0].id, members[1].id]
        build = store.create_build(recipe="ortho", job_ids=ids, server="srv-1",
                                   reason="batched by size")
        created = Build(id=build.id, job_key=build.job_key, recipe="ortho", state=S.PROCESSING,
                        created_at=CLOCK_START, updated_at=CLOCK_START, job_ids=tuple(ids),
                        server="srv-1", reason="batched by size")
        assert build == created
        assert store.get_build(build.id) == created
        _step(clock, 1)
        store.transition_build(build.id, S.PREPARING, "preparing")
        _step(clock, 2)
        store.transition_build(build.id, S.PREPARED, "prepared",
                               form_path=Path("/out/build.form"), job_name="ortho-1")
        waiting = _step(clock, 3)
        store.transition_build(build.id, S.WAITING_FOR_PRINTER, "no printer free",
                               print_target={"printers": ["Form4-A"]}, priority=4)
        store.update_build(build.id, wait_notified_at=_at(4).isoformat())
        sent = _step(clock, 5)
        store.transition_build(build.id, S.PRINT_SENDING, "sending",
                               send_holder={"pid": 42, "host": "pc-1"})
        _step(clock, 6)
        store.transition_build(build.id, S.PRINT_SENT, "sent", print_job_id="p-9",
                               printer="Form4-A")
        done = _step(clock, 7)
        store.transition_build(build.id, S.FINISHED, "printed", verified_status="finished",
                               verified_message="all good")
        store.update_build(build.id, approval={"decision": "approved", "by": "ann"})
        expected = Build(
            id=build.id, job_key=build.job_key, recipe="ortho", state=S.FINISHED,
            created_at=CLOCK_START, updated_at=done, job_ids=tuple(ids), server="srv-1",
            form_path=Path("/out/build.form"), print_job_id="p-9", printer="Form4-A",
            job_name="ortho-1", verified_status="finished", verified_message="all good",
            reason="printed", print_sent_at=sent, verified_at=done,
            send_holder={"pid": 42, "host": "pc-1"}, print_target={"printers": ["Form4-A"]},
            waiting_since=waiting, priority=4, wait_notified_at=_at(4),
            approval={"decision": "approved", "by": "ann"})
        assert store.get_build(build.id) == expected
        assert store.find_build_by_key(build.job_key) == expected
        assert store.list_builds() == (expected,)
        assert store.list_builds(state=S.FINISHED, recipe="ortho", since=done) == (expected,)
        member = store.get_job(members[0].id)
        assert (member.state, member.build_id, member.print_job_id, member.printer,
                member.verified_status, member.verified_message, member.verified_at,
                member.attempts, member.updated_at) == (
            S.FINISHED, build.id, "p-9", "Form4-A", "finished", "all good", done, 1, done)

    def test_a_build_s_audit_rows_are_read_back_whole(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = store.create_job(recipe="dental", source_path="/hot/processing/a.stl",
                               state=S.PROCESSING)
        build = store.create_build(recipe="dental", job_ids=[job.id])
        moved = _step(clock, 1)
        store.transition_build(build.id, S.PREPARING, "preparing")
        first, second = store.build_history(build.id)
        assert (first.job_id, first.build_id, first.from_state, first.to_state, first.at,
                first.reason) == (None, build.id, None, S.PROCESSING, CLOCK_START, "batched")
        assert (second.job_id, second.build_id, second.from_state, second.to_state, second.at,
                second.reason) == (None, build.id, S.PROCESSING, S.PREPARING, moved,
                                   "preparing")
        assert second.id > first.id
        joined = store.history(job.id)[1]
        assert (joined.job_id, joined.build_id, joined.from_state, joined.to_state,
                joined.reason) == (job.id, build.id, S.PROCESSING, S.PROCESSING,
                                   f"batched: build {build.id} ({build.job_key})")


class TestLimits:
    """A limit keeps the most recent rows, one at least; less than one is refused, saying so."""

    def test_a_limit_of_one_keeps_the_newest_job_and_build(self, store: JobStore) -> None:
        jobs = [store.create_job(recipe="dental", source_path=f"/hot/processing/{i}.stl",
                                 state=S.PROCESSING) for i in range(3)]
        builds = [store.create_build(recipe="dental", job_ids=[j.id]) for j in jobs[:2]]
        assert [j.id for j in store.list_jobs(limit=1)] == [jobs[-1].id]
        assert [b.id for b in store.list_builds(limit=1)] == [builds[-1].id]

    @pytest.mark.parametrize("limit", [0, -1])
    def test_a_limit_below_one_is_refused(self, store: JobStore, limit: int) -> None:
        message = f"limit must be 1 or more (or None for all), got {limit}"
        with pytest.raises(ValueError) as listing_jobs:
            store.list_jobs(limit=limit)
        with pytest.raises(ValueError) as listing_builds:
            store.list_builds(limit=limit)
        assert str(listing_jobs.value) == str(listing_builds.value) == message


class TestPages:
    """An offset skips the newest rows and a limit keeps the next ones: a page further back,
    still in creation order, read by the database; an offset needs a limit."""

    def test_pages_of_two_walk_back_through_the_jobs_and_builds(
        self, store: JobStore
    ) -> None:
        jobs = [store.create_job(recipe="dental", source_path=f"/hot/processing/{i}.stl",
                                 state=S.PROCESSING) for i in range(5)]
        builds = [store.create_build(recipe="dental", job_ids=[j.id]) for j in jobs]
        ids = [j.id for j in jobs]
        assert [j.id for j in store.list_jobs(limit=2, offset=0)] == ids[3:5]
        assert [j.id for j in store.list_jobs(limit=2, offset=2)] == ids[1:3]
        assert [j.id for j in store.list_jobs(limit=2, offset=4)] == ids[0:1]
        assert store.list_jobs(limit=2, offset=5) == ()
        assert [b.id for b in store.list_builds(limit=2, offset=1)] == [
            b.id for b in builds[2:4]]
        # The page is of what the filter keeps.
        store.transition(jobs[4].id, S.CANCELLED, "cancelled", expect=S.PROCESSING)
        assert [j.id for j in store.list_jobs(state=S.PROCESSING, limit=1, offset=1)] == [
            ids[2]]

    def test_a_negative_offset_or_one_without_a_limit_is_refused(
        self, store: JobStore
    ) -> None:
        with pytest.raises(ValueError) as negative:
            store.list_jobs(limit=1, offset=-1)
        assert str(negative.value) == "offset must be 0 or more, got -1"
        with pytest.raises(ValueError) as unlimited:
            store.list_builds(offset=3)
        assert str(unlimited.value) == "an offset (3) needs a limit: a page has a size"


class TestSearches:
    """A text search is the database's: it keeps the rows whose case, file or key (a build's
    key, print name or printer) holds the text in any case, a typed ``%`` or ``_`` is only
    itself, and the page's limit and offset apply to what it keeps."""

    def test_a_search_keeps_what_holds_the_text_in_any_case(self, store: JobStore) -> None:
        names = {"C-7": "Upper.STL", "c-17": "lower.stl", "X": "50%_off.stl", "Y": "50a.stl",
                 "Ä-1": "ÉTÉ.stl"}
        jobs = {case: store.create_job(recipe="dental", source_path=f"/hot/{case}/{name}",
                                       original_name=name, case_id=case,
                                       state=S.PROCESSING) for case, name in names.items()}

        def found(text: str) -> list[str | None]:
            return [j.case_id for j in store.list_jobs(text=text)]

        assert found("c-7") == ["C-7"] and found("C-1") == ["c-17"]
        assert found("UPPER.stl") == ["C-7"]
        assert found("été") == ["Ä-1"] and found("ä-") == ["Ä-1"]  # not ASCII only
        assert found("%") == ["X"] and found("_") == ["X"]  # not "any" and "one of any"
        assert found("50%") == ["X"] and found("%_o") == ["X"] and found("50_") == []
        assert found(jobs["Y"].job_key.lower()) == ["Y"]
        assert found("\\") == [] and found("nowhere") == []
        build = store.create_build(recipe="dental", job_ids=[jobs["C-7"].id])
        store.update_build(build.id, job_name="Crown 7%", printer="Bench_A")
        other = store.create_build(recipe="dental", job_ids=[jobs["X"].id])
        for text in ("crown 7%", "bench_a", build.job_key.lower()):
            assert [b.id for b in store.list_builds(text=text)] == [build.id], text
        assert [b.id for b in store.list_builds(text="7_")] == []
        assert [b.id for b in store.list_builds(text="")] == [build.id, other.id]

    def test_the_page_is_of_what_the_search_keeps(self, store: JobStore) -> None:
        ids = [store.create_job(recipe="dental", source_path=f"/hot/{i}.stl",
                                original_name=f"{'n' if i % 2 else 'm'}-{i}.stl",
                                state=S.PROCESSING).id for i in range(7)]
        assert [j.id for j in store.list_jobs(text="N-", limit=2)] == [ids[3], ids[5]]
        assert [j.id for j in store.list_jobs(text="N-", limit=2, offset=2)] == [ids[1]]


class TestPagesOfCases:
    """A page of cases holds whole cases: every kept job of the newest cases (by their
    newest kept job), however far apart their files came."""

    def test_a_case_is_on_the_page_of_its_newest_file_with_all_its_files(
        self, store: JobStore
    ) -> None:
        def job(case: str | None, name: str, state: JobState = S.PROCESSING) -> Job:
            return store.create_job(recipe="dental", source_path=f"/hot/{name}",
                                    original_name=name, case_id=case, state=state)

        first = job("C-1", "c1-upper.stl")
        alone = job(None, "loose.stl")
        other = job("C-2", "c2.stl")
        late = job("C-1", "c1-lower.stl")
        newest = job("C-3", "c3.stl", S.QUEUED)

        def page(**query: object) -> list[int]:
            return [j.id for j in store.list_case_jobs(**query)]  # type: ignore[arg-type]

        assert page(limit=2) == [first.id, late.id, newest.id]
        assert page(limit=2, offset=2) == [alone.id, other.id]
        assert page(limit=2, offset=4) == []
        assert page(state=S.PROCESSING, limit=1) == [first.id, late.id]
        ortho = store.create_job(recipe="ortho", source_path="/hot/o.stl", case_id="C-1")
        assert page(recipe="ortho", limit=2) == [ortho.id]
        assert page(recipe="dental", limit=1, offset=1) == [first.id, late.id]
        assert page(text="C1-", limit=1) == [first.id, late.id]
        assert page(text="lower", limit=1, offset=1) == []
        with pytest.raises(ValueError) as negative:
            store.list_case_jobs(limit=0)
        assert str(negative.value) == "limit must be 1 or more (or None for all), got 0"


class TestSince:
    """``since`` keeps what changed at or after a moment, and must name its time zone."""

    def test_rows_changed_at_or_after_the_moment_are_kept(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        old = store.create_job(recipe="dental", source_path="/hot/inbox/old.stl")
        moment = _step(clock, 10)
        new = store.create_job(recipe="dental", source_path="/hot/inbox/new.stl")
        assert [j.id for j in store.list_jobs(since=moment)] == [new.id]
        assert [j.id for j in store.list_jobs(since=CLOCK_START)] == [old.id, new.id]

    def test_a_moment_without_a_time_zone_is_refused(self, store: JobStore) -> None:
        with pytest.raises(ValueError) as caught:
            store.list_builds(since=datetime(2024, 5, 1, 8, 0))
        assert str(caught.value) == "since must be timezone-aware"


class TestRefusedCreations:
    """A job cannot start in a later state, and a store on a clock without a zone writes
    nothing; both say why."""

    def test_a_job_cannot_start_finished(self, store: JobStore) -> None:
        with pytest.raises(InvalidTransitionError) as caught:
            store.create_job(recipe="dental", source_path="/hot/inbox/a.stl", state=S.FINISHED)
        assert str(caught.value) == (
            "new job: cannot go from (new) to finished "
            "(jobs start as one of discovered, processing, queued)")
        assert store.list_jobs() == ()

    def test_a_clock_without_a_time_zone_writes_nothing(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        clock.now = lambda: CLOCK_START.replace(tzinfo=None)  # type: ignore[method-assign]
        with pytest.raises(StoreError) as caught:
            store.create_job(recipe="dental", source_path="/hot/inbox/a.stl")
        assert str(caught.value) == "the store's clock returned a time without a time zone"
        assert store.list_jobs() == ()


class TestABuildsJobs:
    """``list_jobs(build_id=...)`` lists the jobs a build holds now, and no other job."""

    def test_only_the_build_s_own_jobs_are_listed(self, store: JobStore) -> None:
        jobs = [store.create_job(recipe="dental", source_path=f"/hot/processing/{i}.stl",
                                 state=S.PROCESSING) for i in range(4)]
        first = store.create_build(recipe="dental", job_ids=[jobs[0].id, jobs[1].id])
        second = store.create_build(recipe="dental", job_ids=[jobs[2].id])
        assert [j.id for j in store.list_jobs(build_id=first.id)] == [jobs[0].id, jobs[1].id]
        assert [j.id for j in store.list_jobs(build_id=second.id)] == [jobs[2].id]
        assert len(store.list_jobs()) == 4
