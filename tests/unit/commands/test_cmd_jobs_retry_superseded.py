"""``jobs retry`` of a failure a later job printed: refused as the dashboard refuses it, in
the same words; ``--force`` queues it when a person wants the print once more."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.superseded import WHY_SUPERSEDED

S = JobState


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    opened = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield opened
    opened.close()


def _ended(store: SqliteJobStore, tmp: Path, case_id: str, state: JobState,
           digest: str = "h1") -> Job:
    """A job of recipe ``grey`` and content ``digest`` that ended in ``state`` (FAILED, as a
    killed run leaves it; DONE, prepared by a recipe without a print step). No hot-folder
    place: only the superseded rule can refuse its retry."""
    job = store.create_job(recipe="grey", source_path=tmp / f"{case_id}.stl",
                           content_hash=digest, case_id=case_id, state=S.PROCESSING)
    if state is S.FAILED:
        return store.transition(job.id, S.FAILED, "its run died before printing it")
    build = store.create_build(recipe="grey", job_ids=[job.id])
    for step in (S.PREPARING, S.PREPARED, state):
        store.transition_build(build.id, step, "test")
    return store.get_job(job.id)


def _retry(store: SqliteJobStore, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs", "retry", *args, "--store", str(store.path)], out, err)
    return code, out.getvalue(), err.getvalue()


class TestRetryOfASupersededFailure:
    """The rule the dashboard's Retry follows (``retry_check``), said the same way."""

    def test_refused_naming_the_later_job_and_the_explicit_way(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        killed = _ended(store, tmp_path, "K-1", S.FAILED)
        later = _ended(store, tmp_path, "K-2", S.DONE)
        code, out, err = _retry(store, str(killed.id))
        assert (code, out) == (1, "")
        assert err == (
            f"error: job {killed.id} ({killed.job_key}) was not queued again: {WHY_SUPERSEDED}"
            f" (superseded by job {later.id} ({later.job_key}, done)); there is nothing to "
            f"retry; to print it once more anyway: preform-pipeline jobs --store {store.path} "
            f"retry --force {killed.job_key}\n")
        assert store.get_job(killed.id).state is S.FAILED  # not printed a second time

    def test_force_queues_it(self, store: SqliteJobStore, tmp_path: Path) -> None:
        killed = _ended(store, tmp_path, "K-1", S.FAILED)
        _ended(store, tmp_path, "K-2", S.DONE)
        code, out, err = _retry(store, killed.job_key, "--force")
        assert (code, err) == (0, "")
        assert out.startswith(f"job {killed.id} ({killed.job_key}) queued again (was failed)")
        assert store.get_job(killed.id).state is S.QUEUED

    def test_a_case_retries_its_other_failure_and_refuses_the_superseded_one(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        put_right = _ended(store, tmp_path, "M-1", S.FAILED, digest="m-a")
        other = _ended(store, tmp_path, "M-1", S.FAILED, digest="m-b")
        _ended(store, tmp_path, "P-1", S.DONE, digest="m-a")
        code, out, err = _retry(store, "case:M-1")
        assert code == 1  # one of the case's jobs was refused, as `jobs retry CASE` says
        assert f"job {put_right.id} ({put_right.job_key}) was not queued again" in err
        assert f"job {other.id} ({other.job_key}) queued again" in out
        assert (store.get_job(put_right.id).state, store.get_job(other.id).state) == (
            S.FAILED, S.QUEUED)
