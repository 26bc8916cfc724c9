"""Both stores (SQLite, PostgreSQL): audit trail, compare-and-set, builds, lookups, fields,
atomicity."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import InvalidTransitionError, StoreConflictError, StoreError
from preform_pipeline.store import (
    JobState,
    JobStore,
    SqliteJobStore,
    embed_key,
    extract_key,
    is_key,
)
from tests.unit.store.conftest import CLOCK_START, build_in_state, driver_error, job_in_state

S = JobState


class TestAuditTrail:
    """Every state change is one audit row with the clock's time and the caller's reason."""

    def test_a_job_history_lists_each_change_with_its_time_and_reason(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = store.create_job(recipe="dental", source_path="/hot/inbox/arch.stl",
                               reason="seen in inbox")
        clock.advance(5)
        store.transition(job.id, S.QUEUED, "size stable for 2 s", content_hash="sha256:aa")
        clock.advance(1)
        store.transition(job.id, S.PROCESSING, "moved to processing/",
                         source_path="/hot/processing/arch.stl")
        rows = [(t.from_state, t.to_state, t.at, t.reason) for t in store.history(job.id)]
        assert rows == [
            (None, S.DISCOVERED, CLOCK_START, "seen in inbox"),
            (S.DISCOVERED, S.QUEUED, CLOCK_START + timedelta(seconds=5), "size stable for 2 s"),
            (S.QUEUED, S.PROCESSING, CLOCK_START + timedelta(seconds=6), "moved to processing/"),
        ]

    def test_the_job_keeps_the_last_reason_and_times(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = store.create_job(recipe="dental", source_path="/a.stl")
        clock.advance(60)
        job = store.transition(job.id, S.FAILED, "unreadable: truncated STL")
        assert (job.reason, job.created_at, job.updated_at) == (
            "unreadable: truncated STL", CLOCK_START, CLOCK_START + timedelta(seconds=60)
        )

    def test_a_build_transition_writes_one_row_for_the_build_and_one_per_job(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        build = build_in_state(store, S.PREPARED, jobs=2)
        clock.advance(10)
        store.transition_build(build.id, S.PRINT_SENDING, "sending to Form4-A")
        assert [(t.from_state, t.to_state) for t in store.build_history(build.id)][-1] == (
            S.PREPARED, S.PRINT_SENDING
        )
        for job_id in build.job_ids:
            last = store.history(job_id)[-1]
            assert (last.to_state, last.build_id, last.reason, last.at) == (
                S.PRINT_SENDING, build.id, "sending to Form4-A",
                CLOCK_START + timedelta(seconds=10),
            )

    def test_a_clock_without_a_zone_is_refused(self, store_path: Path) -> None:
        class Naive(ManualClock):
            def now(self) -> datetime:
                return CLOCK_START.replace(tzinfo=None)

        with SqliteJobStore(store_path, clock=Naive()) as store, pytest.raises(
            StoreError, match="without a time zone"
        ):
            store.create_job(recipe="r", source_path="/a.stl")

    def test_each_transition_is_logged_as_an_event(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl")
        with capture_logs() as logs:
            store.transition(job.id, S.CANCELLED, "cancelled by user")
        assert {
            "event": "job_transition", "job_id": job.id, "from_state": "discovered",
            "to_state": "cancelled", "reason": "cancelled by user",
        }.items() <= logs[-1].items()


class TestCompareAndSet:
    """``expect=`` makes a transition conditional on the state the caller last saw."""

    def test_a_matching_expectation_moves_the_job(self, store: JobStore) -> None:
        job = job_in_state(store, S.PROCESSING)
        assert store.transition(job.id, S.PREPARING, "go", expect=S.PROCESSING).state is (
            S.PREPARING
        )

    def test_a_stale_expectation_changes_nothing_and_says_what_it_found(
        self, store: JobStore
    ) -> None:
        job = job_in_state(store, S.PROCESSING)
        store.transition(job.id, S.CANCELLED, "cancelled by user")
        with pytest.raises(StoreConflictError) as caught:
            store.transition(job.id, S.PREPARING, "go", expect=S.PROCESSING)
        assert (caught.value.expected, caught.value.actual) == (("processing",), "cancelled")
        assert f"job {job.id} is cancelled, expected processing" in str(caught.value)
        assert store.get_job(job.id).state is S.CANCELLED

    def test_an_expectation_may_name_several_states(self, store: JobStore) -> None:
        build = build_in_state(store, S.VERIFYING)
        moved = store.transition_build(build.id, S.FINISHED, "done",
                                       expect={S.PRINT_SENT, S.VERIFYING})
        assert moved.state is S.FINISHED

    def test_a_build_with_a_stale_expectation_is_not_moved(self, store: JobStore) -> None:
        build = build_in_state(store, S.PRINT_SENDING)
        with pytest.raises(StoreConflictError, match="is print_sending, expected prepared"):
            store.transition_build(build.id, S.PRINT_SENDING, "send", expect=S.PREPARED)


class TestBuilds:
    """Builds batch processing jobs, carry the print, and move their jobs with them."""

    def test_a_build_batches_processing_jobs_under_a_new_print_key(
        self, store: JobStore
    ) -> None:
        jobs = [job_in_state(store, S.PROCESSING) for _ in range(3)]
        build = store.create_build(recipe="dental", job_ids=[j.id for j in jobs],
                                   server="server-1")
        assert is_key(build.job_key) and build.job_key not in {j.job_key for j in jobs}
        assert (build.state, build.job_ids, build.server) == (
            S.PROCESSING, tuple(j.id for j in jobs), "server-1"
        )
        assert {j.build_id for j in store.list_jobs(build_id=build.id)} == {build.id}
        reason = store.history(jobs[0].id)[-1].reason
        assert reason == f"batched: build {build.id} ({build.job_key})"

    def test_only_unbatched_processing_jobs_can_be_batched(self, store: JobStore) -> None:
        queued = job_in_state(store, S.QUEUED)
        free = job_in_state(store, S.PROCESSING)
        with pytest.raises(StoreError, match=f"job {queued.id} is queued"):
            store.create_build(recipe="dental", job_ids=[free.id, queued.id])
        assert store.get_job(free.id).build_id is None  # nothing half-written
        assert store.list_builds() == ()
        store.create_build(recipe="dental", job_ids=[free.id])
        with pytest.raises(StoreError, match="in build"):
            store.create_build(recipe="dental", job_ids=[free.id])

    def test_print_fields_are_copied_onto_the_jobs(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        build = build_in_state(store, S.PREPARED, jobs=2)
        name = embed_key("case 7 crowns", build.job_key)
        clock.advance(1)
        build = store.transition_build(build.id, S.PRINT_SENDING, "sending", job_name=name)
        assert build.print_sent_at == CLOCK_START + timedelta(seconds=1)
        build = store.transition_build(build.id, S.PRINT_SENT, "accepted", printer="Form4-A",
                                       print_job_id="job-123")
        clock.advance(3600)
        build = store.transition_build(build.id, S.FINISHED, "feed says FINISHED",
                                       verified_status="FINISHED", verified_message="ok")
        assert extract_key(build.job_name or "") == build.job_key
        for job in store.list_jobs(build_id=build.id):
            assert (job.state, job.printer, job.print_job_id, job.verified_status,
                    job.verified_message, job.verified_at) == (
                S.FINISHED, "Form4-A", "job-123", "FINISHED", "ok", clock.now()
            )
        assert build.verified_at == clock.now()

    def test_a_job_that_left_the_build_state_is_not_moved(self, store: JobStore) -> None:
        build = build_in_state(store, S.PREPARING, jobs=2)
        broken, kept = build.job_ids
        store.transition(broken, S.FAILED, "import failed: not a mesh")
        store.transition_build(build.id, S.PREPARED, "saved .form")
        assert store.get_job(broken).state is S.FAILED
        assert store.get_job(kept).state is S.PREPARED

    def test_the_members_are_the_jobs_that_travel_with_the_build_now(
        self, store: JobStore
    ) -> None:
        build = build_in_state(store, S.PROCESSING, jobs=3)
        first, cancelled, third = build.job_ids
        store.transition(cancelled, S.CANCELLED, "cancelled by user")  # before work started
        store.transition_build(build.id, S.PREPARING, "on server-1", expect=S.PROCESSING)
        assert [j.id for j in store.build_members(build.id)] == [first, third]
        assert store.get_build(build.id).job_ids == (first, cancelled, third)

    def test_jobs_entering_preparing_count_an_attempt(self, store: JobStore) -> None:
        build = build_in_state(store, S.PREPARING, jobs=1)
        store.transition_build(build.id, S.PROCESSING, "server died")
        store.transition_build(build.id, S.PREPARING, "on server-2")
        assert store.get_job(build.job_ids[0]).attempts == 2

    def test_cancelling_a_job_of_a_prepared_build_sends_the_build_back(
        self, store: JobStore
    ) -> None:
        build = build_in_state(store, S.PREPARED, jobs=2)
        gone, other = build.job_ids
        store.transition(gone, S.CANCELLED, "cancelled by user")
        assert store.get_build(build.id).state is S.PROCESSING
        assert store.get_job(other).state is S.PROCESSING
        assert "prepare the build again" in store.history(other)[-1].reason
        # The daemon's send, decided on the old state, cannot go out with the cancelled model.
        with pytest.raises(StoreConflictError):
            store.transition_build(build.id, S.PRINT_SENDING, "send", expect=S.PREPARED)

    def test_pending_prints_are_sent_or_verifying_builds_oldest_first(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        first = build_in_state(store, S.PRINT_SENT)
        clock.advance(1)
        second = build_in_state(store, S.VERIFYING)
        build_in_state(store, S.PRINT_SENDING)
        build_in_state(store, S.UNVERIFIED)
        assert [b.id for b in store.pending_prints()] == [first.id, second.id]

    def test_a_build_is_found_by_the_key_in_its_print_name(self, store: JobStore) -> None:
        build = build_in_state(store, S.PRINT_SENT)
        name = f"lab order 12 [{build.job_key.lower()}]"
        found = store.find_build_by_key(extract_key(name) or "")
        assert found is not None and found.id == build.id
        assert store.find_build_by_key("PP-0000000000") is None

    def test_build_fields_update_without_a_state_change(self, store: JobStore) -> None:
        build = build_in_state(store, S.PREPARING)
        rows = len(store.build_history(build.id))
        build = store.update_build(build.id, form_path=Path("/out/b.form"))
        assert (build.form_path, build.state) == (Path("/out/b.form"), S.PREPARING)
        assert len(store.build_history(build.id)) == rows


class TestRetry:
    """Moving a finished-badly job back to QUEUED starts it over."""

    def test_a_retry_clears_the_build_and_print_fields(self, store: JobStore) -> None:
        build = build_in_state(store, S.VERIFYING, jobs=1)
        store.transition_build(build.id, S.PRINT_ERROR, "feed says ERROR",
                               verified_status="ERROR", verified_message="resin tank empty")
        job = store.transition(build.job_ids[0], S.QUEUED, "retried by user")
        assert (job.build_id, job.print_job_id, job.verified_status, job.verified_message,
                job.verified_at) == (None, None, None, None, None)
        assert store.get_build(build.id).job_ids == (job.id,)  # the build remembers it

    def test_a_later_verification_of_the_old_print_leaves_the_retried_job_alone(
        self, store: JobStore
    ) -> None:
        build = build_in_state(store, S.UNVERIFIED, jobs=1)
        store.transition(build.job_ids[0], S.QUEUED, "retried by user")
        store.transition_build(build.id, S.FINISHED, "found after all")
        assert store.get_job(build.job_ids[0]).state is S.QUEUED


class TestLookups:
    """Jobs are found by key, content hash, path and filters."""

    def test_a_job_is_found_by_its_key_in_any_case(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl")
        found = store.find_by_key(job.job_key.lower())
        assert found is not None and found.id == job.id
        assert store.find_by_key("not a key") is None

    def test_jobs_are_found_by_content_hash_newest_first(self, store: JobStore) -> None:
        a = store.create_job(recipe="dental", source_path="/a.stl", content_hash="sha256:11")
        b = store.create_job(recipe="dental", source_path="/b.stl", content_hash="sha256:11")
        c = store.create_job(recipe="other", source_path="/c.stl", content_hash="sha256:11")
        store.create_job(recipe="dental", source_path="/d.stl", content_hash="sha256:22")
        assert [j.id for j in store.find_by_hash("sha256:11")] == [c.id, b.id, a.id]
        assert [j.id for j in store.find_by_hash("sha256:11", recipe="dental")] == [b.id, a.id]

    def test_a_job_is_found_by_its_current_path(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/hot/inbox/a.stl")
        store.update_job(job.id, source_path=Path("/hot/done/a.stl"))
        assert store.find_by_path("/hot/inbox/a.stl") is None
        found = store.find_by_path(Path("/hot/done/a.stl"))
        assert found is not None and found.id == job.id

    def test_a_file_move_is_named_only_while_the_file_is_where_the_caller_found_it(
        self, store: JobStore
    ) -> None:
        job = store.create_job(recipe="r", source_path="/hot/processing/a.stl")
        store.update_job(job.id, expect_source=Path("/hot/processing/a.stl"),
                         source_path=Path("/hot/done/a.stl"))
        with pytest.raises(StoreConflictError):
            store.update_job(job.id, expect_source="/hot/processing/a.stl",
                             source_path=Path("/hot/done/a (2).stl"))
        assert store.get_job(job.id).source_path == Path("/hot/done/a.stl")

    def test_list_filters_by_state_recipe_and_change_time(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        old = job_in_state(store, S.FAILED, recipe="dental")
        clock.advance(3600)
        new = job_in_state(store, S.FAILED, recipe="dental")
        other = job_in_state(store, S.QUEUED, recipe="models")
        assert [j.id for j in store.list_jobs(state=S.FAILED)] == [old.id, new.id]
        assert [j.id for j in store.list_jobs(state={S.FAILED, S.QUEUED}, recipe="models")] == [
            other.id
        ]
        since = CLOCK_START + timedelta(minutes=30)
        assert [j.id for j in store.list_jobs(since=since)] == [new.id, other.id]
        local = since.astimezone(timezone(timedelta(hours=-5)))  # same moment, another zone
        assert [j.id for j in store.list_jobs(since=local)] == [new.id, other.id]

    def test_list_limit_keeps_the_most_recent_in_creation_order(
        self, store: JobStore
    ) -> None:
        ids = [store.create_job(recipe="r", source_path=f"/{i}.stl").id for i in range(5)]
        assert [j.id for j in store.list_jobs(limit=2)] == ids[-2:]

    def test_an_unknown_job_is_a_store_error(self, store: JobStore) -> None:
        with pytest.raises(StoreError, match="no job 99"):
            store.get_job(99)
        with pytest.raises(StoreError, match="no job 99"):
            store.transition(99, S.QUEUED, "x")

    def test_an_id_beyond_64_bits_is_unknown_too(self, store: JobStore) -> None:
        # A dashboard URL or a script can name any integer; the drivers refuse to send one
        # beyond the 64-bit ids (OverflowError), which must not stand for "no such row".
        huge = 2**64
        for lookup in (store.get_job, store.get_build):
            with pytest.raises(StoreError, match=f"no (job|build) {huge}"):
                lookup(huge)
        with pytest.raises(StoreError, match=f"no build {-huge}"):
            store.get_build(-huge)
        with pytest.raises(StoreError, match=f"no job {huge}"):
            store.transition(huge, S.QUEUED, "x")


class TestFields:
    """Sidecar fields round-trip; unknown or mistyped field names are caller bugs."""

    def test_sidecar_fields_round_trip_with_dates_as_text(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl", case_id="c-7", priority=5,
                               fields={"patient": "Ann", "due": date(2024, 5, 3), "teeth": [11]})
        again = store.get_job(job.id)
        assert dict(again.fields) == {"patient": "Ann", "due": "2024-05-03", "teeth": [11]}
        assert (again.case_id, again.priority, again.original_name) == ("c-7", 5, "a.stl")

    def test_fields_are_read_only(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl", fields={"a": 1})
        with pytest.raises(TypeError):
            job.fields["a"] = 2  # type: ignore[index]

    def test_fields_that_cannot_be_stored_are_refused(self, store: JobStore) -> None:
        with pytest.raises(StoreError, match="job fields cannot be stored"):
            store.create_job(recipe="r", source_path="/a.stl", fields={"x": object()})

    def test_an_unknown_field_name_is_a_type_error(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl")
        with pytest.raises(TypeError, match="no settable field 'state'"):
            store.transition(job.id, S.QUEUED, "x", state="failed")
        with pytest.raises(TypeError, match="'priority' takes int"):
            store.update_job(job.id, priority="high")
        with pytest.raises(TypeError, match="'build_id' takes NoneType"):
            store.update_job(job.id, build_id=3)
        assert store.get_job(job.id).state is S.DISCOVERED


class TestAtomicity:
    """A transition that fails halfway leaves no trace."""

    def test_a_failure_after_the_row_update_rolls_the_whole_transition_back(
        self, store: JobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        build = build_in_state(store, S.PREPARED, jobs=2)
        rows = len(store.history(build.job_ids[0]))

        def fail(*args: object, **kwargs: object) -> None:
            raise driver_error(store, "disk I/O error")

        monkeypatch.setattr(type(store), "_audit", staticmethod(fail))
        with pytest.raises(StoreError, match="disk I/O error"):
            store.transition_build(build.id, S.PRINT_SENDING, "send")
        monkeypatch.undo()
        assert store.get_build(build.id).state is S.PREPARED
        assert {store.get_job(j).state for j in build.job_ids} == {S.PREPARED}
        assert len(store.history(build.job_ids[0])) == rows


class TestLifetime:
    """The store satisfies the protocol and refuses use after close."""

    def test_it_is_a_job_store(self, store: JobStore) -> None:
        assert isinstance(store, JobStore)

    def test_a_closed_store_refuses_calls_and_closes_twice_quietly(
        self, store: JobStore
    ) -> None:
        store.close()
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.list_jobs()

    def test_invalid_transition_errors_keep_both_states(self, store: JobStore) -> None:
        job = job_in_state(store, S.DONE)
        with pytest.raises(InvalidTransitionError) as caught:
            store.transition(job.id, S.CANCELLED, "x")
        assert (caught.value.from_state, caught.value.to_state) == ("done", "cancelled")
