"""The store's rules where the other conformance files stop: claiming content, unknown keys,
what a refused or failed call says, readers beside a writer, and a build sent back by a
cancelled member (both stores; a real SQLite file, a real PostgreSQL server)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import (
    InvalidTransitionError,
    NotBatchableError,
    StoreConflictError,
    StoreError,
)
from preform_pipeline.store import (
    BUILD_ALLOWED_TRANSITIONS,
    Build,
    JobState,
    JobStore,
    SqliteJobStore,
    new_key,
)
from preform_pipeline.store.sqlcore import SqlStoreCore
from tests.unit.store.conftest import build_in_state, job_in_state

S = JobState

_TABLES = ("transitions", "build_jobs", "jobs", "builds")


@contextmanager
def tables_away(store: JobStore) -> Iterator[None]:
    """The store's tables renamed away by another connection (a damaged store), then back."""
    if isinstance(store, SqliteJobStore):
        other: Any = sqlite3.connect(store.path, isolation_level=None)
        close = other.close
    else:
        import psycopg

        from tests.pg_cluster import PG_PASSWORD

        assert isinstance(store, SqlStoreCore)
        other = psycopg.connect(store.location, password=PG_PASSWORD, autocommit=True)
        close = other.close

    def rename(suffix_from: str, suffix_to: str) -> None:
        for table in _TABLES:
            other.execute(f"ALTER TABLE {table}{suffix_from} RENAME TO {table}{suffix_to}")

    rename("", "_away")
    try:
        yield
    finally:
        rename("_away", "")
        close()


class TestClaimingContent:
    """claim_job creates a processing job unless the same content of the recipe is taken."""

    def test_a_free_content_is_claimed_as_a_new_processing_job(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job, taken = store.claim_job(recipe="dental", source_path=Path("/hot/processing/a.stl"),
                                     content_hash="sha256:aa", taken={S.PROCESSING},
                                     reason="picked up", fields={"case": "C-1"})
        assert taken is None and job is not None
        assert store.get_job(job.id) == job
        assert (job.state, job.recipe, job.source_path, job.original_name) == (
            S.PROCESSING, "dental", Path("/hot/processing/a.stl"), "a.stl")
        assert (job.content_hash, job.fields, job.created_at) == (
            "sha256:aa", {"case": "C-1"}, clock.now())
        assert [(t.from_state, t.to_state, t.reason) for t in store.history(job.id)] == [
            (None, S.PROCESSING, "picked up")
        ]

    def test_the_newest_job_holding_the_content_is_named_and_nothing_is_created(
        self, store: JobStore
    ) -> None:
        older = store.create_job(recipe="dental", source_path="/a.stl", content_hash="sha256:aa",
                                 state=S.QUEUED)
        newer = store.create_job(recipe="dental", source_path="/b.stl", content_hash="sha256:aa",
                                 state=S.QUEUED)
        job, taken = store.claim_job(recipe="dental", source_path="/c.stl",
                                     content_hash="sha256:aa", taken=[S.QUEUED, S.PROCESSING])
        assert job is None and taken == newer != older
        assert len(store.list_jobs()) == 2

    def test_another_recipe_another_content_or_a_state_not_taken_leaves_it_free(
        self, store: JobStore
    ) -> None:
        store.create_job(recipe="dental", source_path="/a.stl", content_hash="sha256:aa",
                         state=S.QUEUED)
        claims = [
            store.claim_job(recipe="models", source_path="/b.stl", content_hash="sha256:aa",
                            taken={S.QUEUED}),
            store.claim_job(recipe="dental", source_path="/c.stl", content_hash="sha256:bb",
                            taken={S.QUEUED}),
            store.claim_job(recipe="dental", source_path="/d.stl", content_hash="sha256:aa",
                            taken={S.PROCESSING, S.FAILED}),
            store.claim_job(recipe="dental", source_path="/e.stl", content_hash="sha256:aa",
                            taken=()),
        ]
        assert [(job is not None, taken) for job, taken in claims] == [(True, None)] * 4
        assert len(store.list_jobs(state=S.PROCESSING)) == 4

    def test_a_claim_without_a_reason_is_recorded_as_claimed_at_priority_0(
        self, store: JobStore
    ) -> None:
        job, _ = store.claim_job(recipe="dental", source_path="/a.stl", content_hash="sha256:aa",
                                 taken=())
        assert job is not None and job.priority == 0 and job.case_id is None
        assert [t.reason for t in store.history(job.id)] == ["claimed"]

    def test_a_claim_is_logged_with_the_new_job(self, store: JobStore) -> None:
        with capture_logs() as logs:
            job, _ = store.claim_job(recipe="dental", source_path="/hot/a.stl",
                                     content_hash="sha256:aa", taken={S.PROCESSING})
        assert job is not None
        assert [e for e in logs if e["event"] == "job_claimed"] == [
            {"event": "job_claimed", "log_level": "info", "job_id": job.id,
             "job_key": job.job_key, "recipe": "dental", "source_path": str(Path("/hot/a.stl"))}
        ]


class TestUnknownAndUnstorable:
    """A key nobody has answers None; a field the store cannot keep is refused by name."""

    def test_a_well_formed_key_that_nobody_has_finds_nothing(self, store: JobStore) -> None:
        store.create_job(recipe="r", source_path="/a.stl")
        build_in_state(store, S.PROCESSING)
        assert store.find_by_key(new_key()) is None
        assert store.find_build_by_key(new_key()) is None

    def test_a_path_in_the_fields_is_stored_as_its_text(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl",
                               fields={"scan": Path("/scans/a.ply")})
        assert store.get_job(job.id).fields == {"scan": str(Path("/scans/a.ply"))}

    def test_a_value_the_store_cannot_keep_is_named_by_its_type(self, store: JobStore) -> None:
        with pytest.raises(StoreError, match="object is not storable") as caught:
            store.create_job(recipe="r", source_path="/a.stl", fields={"x": object()})
        assert caught.value.hint is not None and "sidecar fields" in caught.value.hint
        assert store.list_jobs() == ()

    def test_an_unknown_field_names_the_job_or_build(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl")
        build = build_in_state(store, S.PROCESSING)
        calls: list[tuple[Callable[[], object], str]] = [
            (lambda: store.update_job(job.id, colour="red"), f"job {job.id} has no settable"),
            (lambda: store.transition(job.id, S.QUEUED, "go", colour="red"),
             f"job {job.id} has no settable"),
            (lambda: store.update_build(build.id, colour="red"),
             f"build {build.id} has no settable"),
            (lambda: store.transition_build(build.id, S.PREPARING, "go", colour="red"),
             f"build {build.id} has no settable"),
        ]
        for call, message in calls:
            with pytest.raises(TypeError, match=message):
                call()
        assert store.get_job(job.id).state is S.DISCOVERED

    def test_a_moved_file_says_where_it_is_and_where_it_was_expected(
        self, store: JobStore
    ) -> None:
        job = store.create_job(recipe="r", source_path="/hot/done/a.stl")
        with pytest.raises(StoreConflictError) as caught:
            store.update_job(job.id, expect_source="/hot/processing/a.stl",
                             source_path="/hot/failed/a.stl")
        assert str(caught.value) == (
            f"job {job.id}'s file is {Path('/hot/done/a.stl')}, expected "
            f"{Path('/hot/processing/a.stl')} (another process moved it first)"
        )
        assert caught.value.hint == "another process moved it first"

    def test_fields_changed_since_they_were_read_are_a_conflict_and_nothing_is_written(
        self, store: JobStore
    ) -> None:
        job = store.create_job(recipe="r", source_path="/hot/processing/a.stl",
                               fields={"note": "first"})
        store.update_job(job.id, fields={"note": "second"})
        with pytest.raises(StoreConflictError) as caught:
            store.update_job(job.id, expect_fields=job.fields, fields={"note": "third"})
        assert caught.value.hint == "another process changed them first"
        assert store.get_job(job.id).fields == {"note": "second"}
        assert store.update_job(job.id, expect_fields={"note": "second"},
                                fields={"note": "third"}).fields == {"note": "third"}


def _calls(store: JobStore, job_id: int, build_id: int) -> list[tuple[str, Callable[[], object]]]:
    """Each call, with what its failure must say it was doing."""
    return [
        (f"reading job {job_id}", lambda: store.get_job(job_id)),
        ("looking up a job key", lambda: store.find_by_key(new_key())),
        ("looking up a job key", lambda: store.find_build_by_key(new_key())),
        ("looking up a content hash", lambda: store.find_by_hash("sha256:aa")),
        ("looking up a path", lambda: store.find_by_path("/a.stl")),
        ("listing jobs", lambda: store.list_jobs()),
        ("listing the jobs of a page of cases", lambda: store.list_case_jobs(limit=1)),
        ("listing the jobs of a page of history",
         lambda: store.list_history_cases(limit=1)),
        (f"reading the history of job {job_id}", lambda: store.history(job_id)),
        (f"updating job {job_id}", lambda: store.update_job(job_id, priority=2)),
        (f"moving job {job_id} to queued", lambda: store.transition(job_id, S.QUEUED, "go")),
        ("creating a job", lambda: store.create_job(recipe="r", source_path="/c.stl")),
        ("creating a build", lambda: store.create_build(recipe="r")),
        (f"moving build {build_id} to preparing",
         lambda: store.transition_build(build_id, S.PREPARING, "go")),
        ("claiming a job", lambda: store.claim_job(recipe="r", source_path="/b.stl",
                                                   content_hash="sha256:bb", taken=())),
        (f"reading build {build_id}", lambda: store.get_build(build_id)),
        ("listing builds", lambda: store.list_builds()),
        (f"reading the jobs of build {build_id}", lambda: store.build_members(build_id)),
        (f"updating build {build_id}", lambda: store.update_build(build_id, priority=2)),
        (f"reading the history of build {build_id}", lambda: store.build_history(build_id)),
        ("listing pending prints", lambda: store.pending_prints()),
    ]


class TestFailuresSayWhatFailed:
    """When the database fails under a call, the error names what the store was doing."""

    def test_each_call_on_a_damaged_store_names_its_action(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl")
        build = build_in_state(store, S.PROCESSING)
        with tables_away(store):
            for action, call in _calls(store, job.id, build.id):
                with pytest.raises(StoreError, match=f"failed while {action}: "):
                    call()
        assert store.get_job(job.id) == job


class TestReadersBesideAWriter:
    """Reading never waits for another process's write (the `jobs` command beside the daemon)."""

    def test_every_read_answers_while_another_connection_holds_the_write_lock(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        with SqliteJobStore(store_path, clock=clock, busy_timeout_s=0.2) as store:
            job = store.create_job(recipe="r", source_path="/a.stl")
            build = build_in_state(store, S.PROCESSING)
            writer = sqlite3.connect(store_path, isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")
            try:
                for action, call in _calls(store, job.id, build.id):
                    if action.startswith(("reading", "looking", "listing")):
                        call()
                with pytest.raises(StoreError, match="stayed locked"):
                    store.update_job(job.id, priority=2)
            finally:
                writer.execute("ROLLBACK")
                writer.close()


class TestCancelledMemberOfAPreparedBuild:
    """A member cancelled after preparation sends its build, and the other members, back."""

    def test_the_build_and_the_others_go_back_to_processing_on_record(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        build = build_in_state(store, S.PREPARED, jobs=3)
        cancelled, *others = build.job_ids
        clock.advance(7)
        with capture_logs() as logs:
            store.transition(cancelled, S.CANCELLED, "not wanted")
        reason = f"job {cancelled} was cancelled: prepare the build again without it"
        back = store.get_build(build.id)
        assert (back.state, back.reason, back.updated_at) == (S.PROCESSING, reason, clock.now())
        last = store.build_history(build.id)[-1]
        assert (last.job_id, last.build_id, last.from_state, last.to_state, last.reason,
                last.at) == (None, build.id, S.PREPARED, S.PROCESSING, reason, clock.now())
        for member in others:
            job = store.get_job(member)
            assert (job.state, job.reason, job.updated_at) == (S.PROCESSING, reason, clock.now())
            step = store.history(member)[-1]
            assert (step.build_id, step.from_state, step.to_state, step.reason) == (
                build.id, S.PREPARED, S.PROCESSING, reason)
        assert [e for e in logs if e["event"] == "build_transition"] == [
            {"event": "build_transition", "log_level": "info", "build_id": build.id,
             "from_state": "prepared", "to_state": "processing", "reason": reason}
        ]


class TestKeysAlreadyTaken:
    """A drawn key that is taken is drawn again; a run of taken keys is a clear error."""

    def test_a_taken_key_is_drawn_again(
        self, store: JobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = store.create_job(recipe="r", source_path="/a.stl")
        fresh = new_key()
        drawn = iter([first.job_key, fresh])
        monkeypatch.setattr("preform_pipeline.store.sqlcore.new_key", lambda: next(drawn))
        second = store.create_job(recipe="r", source_path="/b.stl")
        assert second.job_key == fresh
        assert [j.job_key for j in store.list_jobs()] == [first.job_key, fresh]

    def test_only_taken_keys_give_up_with_a_store_error(
        self, store: JobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = store.create_job(recipe="r", source_path="/a.stl")
        monkeypatch.setattr("preform_pipeline.store.sqlcore.new_key", lambda: first.job_key)
        with pytest.raises(StoreError, match="could not draw an unused job key"):
            store.create_job(recipe="r", source_path="/b.stl")
        assert store.list_jobs() == (first,)


class TestHowAStoreShowsItself:
    """A store's repr names where it is and whether it is open (in logs and debuggers)."""

    def test_the_repr_says_open_then_closed(self, store: JobStore) -> None:
        name = type(store).__name__
        assert isinstance(store, SqlStoreCore)
        where = store.location
        assert repr(store) == f"{name}({where!r}, open)"
        store.close()
        assert repr(store) == f"{name}({where!r}, closed)"


class TestWhatAJobMoveKeeps:
    """A job's move counts preparations and keeps its print unless it starts over."""

    def test_only_a_move_to_preparing_counts_an_attempt(self, store: JobStore) -> None:
        job = job_in_state(store, S.PROCESSING)
        counts = [job.attempts]
        for step in (S.PREPARING, S.PREPARED, S.PROCESSING, S.PREPARING, S.FAILED):
            counts.append(store.transition(job.id, step, f"to {step}").attempts)
        assert counts == [0, 1, 1, 1, 2, 2]
        assert store.get_job(job.id).attempts == 2

    def test_settling_an_unverified_print_keeps_its_print(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = job_in_state(store, S.UNVERIFIED)
        store.update_job(job.id, print_job_id="print-7", printer="Form4-A")
        clock.advance(30)
        settled = store.transition(job.id, S.FINISHED, "found in the prints feed")
        assert (settled.print_job_id, settled.printer) == ("print-7", "Form4-A")
        assert settled.verified_at == clock.now()
        assert store.get_job(job.id) == settled

    def test_a_retry_starts_over_without_the_old_print(self, store: JobStore) -> None:
        job = job_in_state(store, S.UNVERIFIED)
        store.update_job(job.id, print_job_id="print-7", printer="Form4-A")
        retried = store.transition(job.id, S.QUEUED, "retry")
        assert (retried.print_job_id, retried.printer, retried.verified_at) == (None, None, None)

    def test_a_move_is_logged_with_the_job_and_both_states(self, store: JobStore) -> None:
        job = store.create_job(recipe="r", source_path="/a.stl")
        with capture_logs() as logs:
            store.transition(job.id, S.QUEUED, "seen twice")
        assert [e for e in logs if e["event"] == "job_transition"] == [
            {"event": "job_transition", "log_level": "info", "job_id": job.id,
             "job_key": job.job_key, "from_state": "discovered", "to_state": "queued",
             "reason": "seen twice"}
        ]


def _ids(builds: tuple[Build, ...]) -> list[int]:
    return [b.id for b in builds]


class TestListingBuilds:
    """Builds are listed by state, recipe, change time and the most recent N."""

    def test_each_filter_narrows_the_list(self, store: JobStore, clock: ManualClock) -> None:
        old = build_in_state(store, S.PREPARED, jobs=1, recipe="dental")
        clock.advance(3600)
        since = clock.now()
        new = build_in_state(store, S.PREPARED, jobs=1, recipe="dental")
        other = build_in_state(store, S.PROCESSING, jobs=1, recipe="models")
        assert _ids(store.list_builds()) == [old.id, new.id, other.id]
        assert _ids(store.list_builds(state=S.PREPARED)) == [old.id, new.id]
        assert _ids(store.list_builds(recipe="models")) == [other.id]
        assert _ids(store.list_builds(since=since)) == [new.id, other.id]
        assert _ids(store.list_builds(limit=2)) == [new.id, other.id]


class TestCreatingBuilds:
    """Only processing jobs without a build are batched; a refusal says which job and why."""

    def test_a_job_not_processing_or_already_batched_is_named(self, store: JobStore) -> None:
        queued = job_in_state(store, S.QUEUED)
        built = build_in_state(store, S.PROCESSING, jobs=1)
        (member,) = built.job_ids
        hint = "re-read the jobs; another process may have moved them"
        for job_id, where, holder in ((queued.id, "queued", None),
                                      (member, f"processing in build {built.id}", built.id)):
            with pytest.raises(NotBatchableError) as caught:
                store.create_build(recipe="dental", job_ids=[job_id])
            assert str(caught.value) == (
                f"job {job_id} is {where}: only processing jobs without a build can be batched "
                f"({hint})")
            assert caught.value.hint == hint
            # An answer, not an outage (a hot folder would rest, as for a database away),
            # told by kind: which job, and which build has it.
            assert not caught.value.outage
            assert (caught.value.job_id, caught.value.build_id) == (job_id, holder)
        assert _ids(store.list_builds()) == [built.id]

    def test_a_job_listed_twice_is_refused(self, store: JobStore) -> None:
        job = job_in_state(store, S.PROCESSING)
        with pytest.raises(StoreError) as caught:
            store.create_build(recipe="dental", job_ids=[job.id, job.id])
        assert str(caught.value) == f"a build lists a job twice: [{job.id}, {job.id}]"
        assert store.list_builds() == ()

    def test_each_member_records_joining_the_build(self, store: JobStore) -> None:
        job = job_in_state(store, S.PROCESSING)
        build = store.create_build(recipe="dental", job_ids=[job.id], reason="batched")
        step = store.history(job.id)[-1]
        note = f"batched: build {build.id} ({build.job_key})"
        assert (step.job_id, step.build_id, step.from_state, step.to_state, step.reason) == (
            job.id, build.id, S.PROCESSING, S.PROCESSING, note)
        assert store.get_job(job.id).reason == note

    def test_a_new_build_is_logged_with_its_jobs(self, store: JobStore) -> None:
        jobs = [job_in_state(store, S.PROCESSING).id for _ in range(2)]
        with capture_logs() as logs:
            build = store.create_build(recipe="dental", job_ids=jobs)
        assert [e for e in logs if e["event"] == "build_created"] == [
            {"event": "build_created", "log_level": "info", "build_id": build.id,
             "job_key": build.job_key, "recipe": "dental", "jobs": jobs}
        ]

    def test_a_refused_build_move_says_where_it_may_go(self, store: JobStore) -> None:
        build = build_in_state(store, S.PREPARED, jobs=1)
        with pytest.raises(InvalidTransitionError) as caught:
            store.transition_build(build.id, S.FINISHED, "too soon")
        assert (caught.value.what, caught.value.from_state, caught.value.to_state) == (
            f"build {build.id}", "prepared", "finished")
        targets = sorted(s.value for s in BUILD_ALLOWED_TRANSITIONS[S.PREPARED])
        assert caught.value.hint == f"from prepared it may go to: {', '.join(targets)}"
        with pytest.raises(StoreConflictError, match=f"^build {build.id} is prepared, expected "):
            store.transition_build(build.id, S.PREPARING, "again", expect=S.PROCESSING)
        assert store.get_build(build.id).state is S.PREPARED


class TestUnknownIds:
    """An id nobody has is a store error that names the store file and the id."""

    def test_the_file_and_the_missing_id_are_named(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        with SqliteJobStore(store_path, clock=clock) as store:
            with pytest.raises(StoreError) as job:
                store.get_job(999)
            with pytest.raises(StoreError) as build:
                store.get_build(998)
        assert str(job.value).startswith(f"{store_path}: no job 999")
        assert job.value.hint == "`preform-pipeline jobs` lists the jobs"
        assert str(build.value) == f"{store_path}: no build 998"


class TestABuildMove:
    """A build's move is recorded on each member and logged once; a failure for want of room
    keeps the folder whose disk refused the write."""

    def test_a_failure_for_want_of_room_keeps_its_folder(self, store: JobStore) -> None:
        full = build_in_state(store, S.PREPARING, jobs=1)
        other = build_in_state(store, S.PREPARING, jobs=1)
        store.transition_build(full.id, S.FAILED, "saveFormFile refused",
                               full_disk=Path("/lab/out"))
        store.transition_build(other.id, S.FAILED, "not a mesh", full_disk=None)
        assert store.get_build(full.id).full_disk == Path("/lab/out")
        assert store.get_build(other.id).full_disk is None

    def test_each_member_records_the_move_and_the_build_logs_it(self, store: JobStore) -> None:
        build = build_in_state(store, S.PREPARED, jobs=2)
        with capture_logs() as logs:
            store.transition_build(build.id, S.PRINT_SENDING, "sending")
        for member in build.job_ids:
            step = store.history(member)[-1]
            assert (step.job_id, step.build_id, step.from_state, step.to_state, step.reason) == (
                member, build.id, S.PREPARED, S.PRINT_SENDING, "sending")
        assert [e for e in logs if e["event"] == "build_transition"] == [
            {"event": "build_transition", "log_level": "info", "build_id": build.id,
             "job_key": build.job_key, "from_state": "prepared", "to_state": "print_sending",
             "reason": "sending"}
        ]
