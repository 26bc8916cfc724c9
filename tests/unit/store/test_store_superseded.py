"""Failed jobs a later job put right (store/superseded.py), on a real SQLite store: the same
recipe and file content, a later job that printed it (or prepared it, without a print step)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.superseded import superseded, superseded_note
from tests.build_steps import printing_steps


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as opened:
        yield opened


def _job(store: SqliteJobStore, state: JobState, *, digest: str | None = "h1",
         recipe: str = "grey") -> Job:
    """A job of ``recipe`` and content ``digest`` that ended in ``state``, as a run leaves it."""
    job = store.create_job(recipe=recipe, source_path="/models/arch.stl", content_hash=digest,
                           state=JobState.PROCESSING)
    if state is JobState.FAILED:
        return store.transition(job.id, JobState.FAILED, "its run died before printing it")
    build = store.create_build(recipe=recipe, job_ids=[job.id])
    steps = [JobState.PREPARING, JobState.PREPARED]
    for step in (*steps, *printing_steps(state)):
        store.transition_build(build.id, step, "test")
    if state is not JobState.PREPARED:
        store.transition_build(build.id, state, "test")
    return store.get_job(job.id)


class TestSuperseded:
    """Only a failed job, only by a later job of its recipe and content that succeeded."""

    def test_a_killed_run_s_job_is_superseded_by_the_next_run_s_printed_one(
        self, store: SqliteJobStore
    ) -> None:
        failed = _job(store, JobState.FAILED)
        again = _job(store, JobState.FAILED)
        printed = _job(store, JobState.DONE)
        assert superseded(store, store.list_jobs()) == {failed.id: printed, again.id: printed}

    def test_each_model_by_its_own_first_later_print_whatever_the_order_asked(
        self, store: SqliteJobStore
    ) -> None:
        failed_a = _job(store, JobState.FAILED, digest="a")
        failed_b = _job(store, JobState.FAILED, digest="b")
        first_a = _job(store, JobState.DONE, digest="a")
        _job(store, JobState.DONE, digest="a")  # a second print later still: not the one
        printed_b = _job(store, JobState.DONE, digest="b")
        asked = [first_a, failed_a, failed_b]  # a job that is not failed first
        assert superseded(store, asked) == {failed_a.id: first_a, failed_b.id: printed_b}

    @pytest.mark.parametrize("later", [JobState.FAILED, JobState.PREPARED])
    def test_a_later_job_that_did_not_succeed_supersedes_nothing(
        self, store: SqliteJobStore, later: JobState
    ) -> None:
        _job(store, JobState.FAILED)
        _job(store, later)
        assert superseded(store, store.list_jobs()) == {}

    @pytest.mark.parametrize("ended", [JobState.PRINT_ERROR, JobState.ABORTED])
    def test_a_print_that_failed_is_superseded_by_the_next_run_s_print(
        self, store: SqliteJobStore, ended: JobState
    ) -> None:
        # A run prints a failed print's models again unasked (docs/printing.md): once that
        # print is out, the failure is put right (session 48's trial: Failed cases kept it,
        # with a Retry no run would take).
        failed = _job(store, ended)
        printed = _job(store, JobState.VERIFYING)
        assert superseded(store, store.list_jobs()) == {failed.id: printed}

    @pytest.mark.parametrize(("later", "put_right"), [
        (JobState.PRINT_SENT, False),  # sent only: it may never start, or fail in turn
        (JobState.VERIFYING, True),  # printing: in the prints feed
        (JobState.FINISHED, True),
        (JobState.PRINT_ERROR, False),  # failed again: a failure of its own
    ])
    def test_a_failed_print_is_put_right_once_its_reprint_is_printing(
        self, store: SqliteJobStore, later: JobState, put_right: bool
    ) -> None:
        # Session 49: a print only sent put a failure right (since session 35), so Failed
        # cases dropped it while its reprint waited in a queue it might never leave.
        failed = _job(store, JobState.PRINT_ERROR)
        again = _job(store, later)
        assert superseded(store, store.list_jobs()) == ({failed.id: again} if put_right else {})

    def test_a_cancelled_job_is_left_to_the_person_who_cancelled_it(
        self, store: SqliteJobStore
    ) -> None:
        job = store.create_job(recipe="grey", source_path="/models/arch.stl", content_hash="h1",
                               state=JobState.PROCESSING)
        store.transition(job.id, JobState.CANCELLED, "cancelled by a person")
        _job(store, JobState.VERIFYING)
        assert superseded(store, store.list_jobs()) == {}

    def test_an_earlier_print_does_not_hide_a_later_failure(self, store: SqliteJobStore) -> None:
        # A reprint that failed is a failure of its own, whatever was printed before it.
        _job(store, JobState.DONE)
        _job(store, JobState.FAILED)
        assert superseded(store, store.list_jobs()) == {}

    @pytest.mark.parametrize("first", [JobState.DONE, JobState.PREPARED])
    def test_only_a_failed_job_is_superseded(
        self, store: SqliteJobStore, first: JobState
    ) -> None:
        # A print reprinted (--reprint), or one still on its way: nothing was put right.
        _job(store, first)
        _job(store, JobState.DONE)
        assert superseded(store, store.list_jobs()) == {}

    @pytest.mark.parametrize(("digest", "recipe"), [("h2", "grey"), ("h1", "clear"),
                                                    (None, "grey")],
                             ids=["other-content", "other-recipe", "no-digest"])
    def test_other_content_or_another_recipe_is_another_model(
        self, store: SqliteJobStore, digest: str | None, recipe: str
    ) -> None:
        _job(store, JobState.FAILED, digest=digest, recipe=recipe)
        _job(store, JobState.DONE)
        assert superseded(store, store.list_jobs()) == {}


class TestTheNote:
    """How `jobs` and the dashboard's Failed cases name the job that put a failure right."""

    def test_it_names_the_later_jobs_id_key_and_state(self, store: SqliteJobStore) -> None:
        _job(store, JobState.FAILED)
        later = _job(store, JobState.DONE)
        assert superseded_note(later) == f"superseded by job 2 ({later.job_key}, done)"


class TestOneRead:
    """The check asks the store once for a page of failed jobs, not once per file: on a
    shared PostgreSQL store 3,000 failed jobs took 1.9 s a refresh (bench/results/
    superseded_s35_before.md)."""

    def test_many_failed_files_are_judged_in_one_statement(self, tmp_path: Path) -> None:
        statements: list[str] = []
        with SqliteJobStore(tmp_path / "counted.sqlite3",
                            on_statement=statements.append) as store:
            failed = [_job(store, JobState.FAILED, digest=f"d{n}") for n in range(5)]
            printed = _job(store, JobState.DONE, digest="d3")
            statements.clear()
            assert superseded(store, failed) == {failed[3].id: printed}
        assert sum(1 for s in statements if s.lstrip().upper().startswith("SELECT")) == 1

    def test_no_failed_job_asks_nothing(self, tmp_path: Path) -> None:
        statements: list[str] = []
        with SqliteJobStore(tmp_path / "counted.sqlite3",
                            on_statement=statements.append) as store:
            done = _job(store, JobState.DONE)
            statements.clear()
            assert superseded(store, [done]) == {}
        assert not any(s.lstrip().upper().startswith("SELECT") for s in statements)
