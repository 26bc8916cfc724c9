"""A run's job that failed and that a person queued again (``jobs retry``) is prepared by the
next run over its file, as the retry says (docs/jobs.md): before, it stayed queued, and every
later run skipped its file as "being prepared or printed" (real command lines, the embedded
simulator, a real SQLite store)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from preform_pipeline.executor.ledger import RUN_FIELD
from preform_pipeline.printing import SendHolder
from preform_pipeline.store import Job, JobState, SqliteJobStore, content_hash
from tests.command_line import in_a_process as _cli
from tests.integration.test_cli_stdout_escaped import MODEL

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"


def a_runs_job_of_an_inbox_file(folder: Path) -> tuple[Path, Path, Job]:
    """``folder``'s inbox holding the sample model (complete: written long ago) and a store
    beside it with a job a run made of that very file, in ``processing``: (inbox, the
    store's path, the job)."""
    inbox, path = folder / "inbox", folder / "jobs.sqlite3"
    inbox.mkdir()
    model = inbox / MODEL.name
    shutil.copyfile(MODEL, model)
    os.utime(model, (1e9, 1e9))  # complete: no longer being written
    with SqliteJobStore(path) as store:
        job = store.create_job(
            recipe=RECIPE.stem, source_path=str(model), content_hash=content_hash(model),
            state=JobState.PROCESSING,
            fields={RUN_FIELD: SendHolder.local("run", os.getpid(), 0.0).to_json()})
    return inbox, path, job


class TestARunsFailedJobRetried:
    """Said where it goes, and printed once by the next run."""

    def test_the_next_run_prints_it_once(self, tmp_path: Path) -> None:
        inbox, path, job = a_runs_job_of_an_inbox_file(tmp_path)
        with SqliteJobStore(path) as store:  # what a run whose server refused the file left
            store.transition(job.id, JobState.FAILED, "the server refused it")
        retried = _cli(tmp_path, "jobs", "--store", str(path), "retry", job.job_key)
        assert (retried.returncode, retried.stderr) == (0, ""), retried.stdout
        assert retried.stdout == (f"job {job.id} ({job.job_key}) queued again (was failed); "
                                  "the next `run` over its file prepares it\n")
        settings = tmp_path / "settings.yaml"
        settings.write_text("servers: {count: 1}\n", encoding="utf-8")
        argv = ("run", str(RECIPE), str(inbox), "--store", str(path), "--settings",
                str(settings), "--output", str(tmp_path / "out"))

        first = _cli(tmp_path, *argv)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "skipped" not in first.stdout, first.stdout
        assert first.stdout.splitlines()[-1] == "exit 0: 1 of 1 build succeeded", first.stdout
        second = _cli(tmp_path, *argv)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"skipped {MODEL.name}: already printed as job {job.job_key}" in second.stdout
        with SqliteJobStore(path) as store:
            assert [(j.id, j.state) for j in store.list_jobs()] == [
                (job.id, JobState.PRINT_SENT)]
