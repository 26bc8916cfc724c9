"""A waiting build with no saved .form can never be sent: the sender's error names the
commands that prepare its jobs again, by whose build it is, and those commands do (a real
SQLite store, ``jobs`` through the CLI's own ``run``)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.dispatch.sender import FormSender
from preform_pipeline.errors import PipelineError
from preform_pipeline.printing import PrintOwner
from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.executor.executor_support import FakePool


class TestAHotFolderBuildWithoutItsForm:
    """The hot folder's: cancel, then retry, each job; the job is queued again for the
    daemon and the build can no longer be sent as it is."""

    def test_the_hint_names_commands_that_queue_its_jobs_again(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        jobs = f"preform-pipeline jobs --store {path}"
        with SqliteJobStore(path) as store:
            members = [store.create_job(recipe="r", source_path=str(tmp_path / f"{n}.stl"),
                                        state=JobState.PROCESSING) for n in ("a", "b")]
            build = store.create_build(recipe="r", job_ids=[j.id for j in members])
            for state in (JobState.PREPARING, JobState.PREPARED):
                store.transition_build(build.id, state, "prepared")
            build = store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer",
                                           print_target={"names": ["Form4-Lab"]})
            sender = FormSender(FakePool([]), PrintOwner(store, jobs=jobs),
                                request_timeout_s=1.0)
            with pytest.raises(PipelineError) as raised:
                sender(build, "Form4-Lab")
        a, b = (j.job_key for j in members)
        assert raised.value.hint == (
            f"cancel its jobs, then queue them again (`{jobs} cancel {a}`, `{jobs} cancel "
            f"{b}`; then `{jobs} retry {a}`, `{jobs} retry {b}`): the hot folder prepares "
            "them again")
        for job in members:  # a retry looks for each job's file: it is where it was
            Path(job.source_path).touch()
        for command in ("cancel", "retry"):  # the commands the hint names, in its order
            for key in (a, b):
                err = io.StringIO()
                code = cli.run(["jobs", "--store", str(path), command, key], io.StringIO(), err)
                assert code == 0, err.getvalue()
        with SqliteJobStore(path) as store:
            assert [store.get_job(j.id).state for j in members] == [JobState.QUEUED] * 2
            assert store.get_build(build.id).state is not JobState.WAITING_FOR_PRINTER
