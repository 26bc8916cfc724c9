"""`jobs` and `jobs retry` on a case exported again after its build was rejected (session
47's dental trial): C-2001's rejected ``upper.stl``, dropped again with new content and
printed, was still listed failed and could be retried into a second print."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, CaseFolder, JobPlace
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.superseded import WHY_SUPERSEDED

S = JobState


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    opened = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield opened
    opened.close()


def _dropped(store: SqliteJobStore, inbox: Path, digest: str, state: JobState) -> Job:
    """``inbox/C-2001/upper.stl`` taken by the hot folder (content ``digest``), its build
    rejected (FAILED) or its print sent (PRINT_SENT)."""
    place = JobPlace(inbox, "C-2001/upper.stl", case=CaseFolder("C-2001", 1, 2))
    job = store.create_job(recipe="dental", source_path=inbox / "processing" / "C-2001" /
                           "upper.stl", content_hash=digest, case_id="C-2001",
                           state=S.PROCESSING, fields={HOTFOLDER_FIELD: place.to_json()})
    if state is S.FAILED:
        return store.transition(job.id, S.FAILED, "rejected by manager (web): too close")
    build = store.create_build(recipe="dental", job_ids=[job.id])
    for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
        store.transition_build(build.id, step, "test")
    return store.get_job(job.id)


def _jobs(store: SqliteJobStore, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs", *argv, "--store", str(store.path)], out, err)
    return code, out.getvalue(), err.getvalue()


class TestACaseExportedAgainAndPrinted:
    """The rejected member is put right: not listed, not retried."""

    def test_jobs_does_not_list_it_and_says_why(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        rejected = _dropped(store, tmp_path / "inbox", "old", S.FAILED)
        printed = _dropped(store, tmp_path / "inbox", "new", S.PRINT_SENT)
        code, out, err = _jobs(store, "list")
        assert (code, err) == (0, "")
        listed = [line.split()[0] for line in out.splitlines()[1:-2]]
        assert listed == [str(printed.id)], out
        assert rejected.job_key not in out
        assert out.splitlines()[-1] == (f"1 failed job not listed: {WHY_SUPERSEDED} "
                                        "(--state failed lists them)")

    def test_jobs_retry_refuses_it_naming_the_new_print(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        rejected = _dropped(store, tmp_path / "inbox", "old", S.FAILED)
        printed = _dropped(store, tmp_path / "inbox", "new", S.PRINT_SENT)
        code, out, err = _jobs(store, "retry", rejected.job_key)
        assert (code, out) == (1, "")
        assert err.startswith(
            f"error: job {rejected.id} ({rejected.job_key}) was not queued again: "
            f"{WHY_SUPERSEDED} (superseded by job {printed.id} ({printed.job_key}, "
            "print_sent)); there is nothing to retry")
        assert store.get_job(rejected.id).state is S.FAILED

    def test_a_new_export_that_failed_too_leaves_both_listed(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        first = _dropped(store, tmp_path / "inbox", "old", S.FAILED)
        second = _dropped(store, tmp_path / "inbox", "new", S.FAILED)
        code, out, _ = _jobs(store, "list")
        assert code == 0
        assert sorted(line.split()[0] for line in out.splitlines()[1:-1]) == sorted(
            [str(first.id), str(second.id)]), out
        assert "not listed" not in out
