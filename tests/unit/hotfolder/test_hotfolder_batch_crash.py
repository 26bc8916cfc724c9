"""A batch stopped by an error nobody foresaw (a bug in the run): its file fails with the
error named and is kept in failed/, the other recipe's batch still prints, and a once-run
ends instead of batching the file again for ever."""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from daemon_support import Script, ScriptedRunner, drop, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.store import Build, JobState, SqliteJobStore

CRASH = "an internal error stopped its batch (ZeroDivisionError: division by zero)"


def _run_once(daemon: HotFolderDaemon) -> None:
    """The daemon's once-run, in a thread: it must end."""
    once = threading.Thread(target=daemon.run, kwargs={"once": True}, daemon=True)
    once.start()
    once.join(60)
    assert not once.is_alive(), "the once-run never ended"


def _expected_note(key: str, where: str) -> str:
    return (
        f"What failed: {CRASH}\nWhere: {where}\nFile: p.stl\n"
        f"Job: {key} (see: preform-pipeline jobs show {key})\n"
        "What to do: this is a bug in preform-pipeline: please report it with the daemon's "
        f"log. The file is kept here; to try again: preform-pipeline jobs retry {key}\n"
    )


class _RunnerWithABug(ScriptedRunner):
    """Raises an error no part of the run expects, for the recipe named ``hot`` only."""

    def run(self) -> RunResult:
        if self.plan.recipe.name == "hot":
            raise ZeroDivisionError("division by zero")
        return super().run()


class TestABatchThatCrashes:
    """The crash is said once, where a user reads it, and nothing waits for ever."""

    def test_its_file_fails_with_the_error_and_the_other_batch_prints(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        other = write_recipe(tmp_path, name="other")
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        drop(tmp_path, "other/q.stl", tetra_stl_bytes(2))
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                             inbox={"routes": (other,)}, runner=_RunnerWithABug)
        with capture_logs() as logs:
            _run_once(daemon)
        jobs = {j.original_name: j for j in store.list_jobs()}
        assert jobs["p.stl"].state is JobState.FAILED
        assert jobs["q.stl"].state is JobState.PRINT_SENT
        assert len(fleet_jobs(script.fleet_dir)) == 1
        inbox = tmp_path / "inbox"
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        assert names(inbox / "processing") == []
        note = (inbox / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert note == _expected_note(jobs["p.stl"].job_key, "preparing the batch")
        (crash,) = [e for e in logs if e["event"] == "batch_crashed"]
        assert (crash["recipe"], crash["jobs"], crash["error"]) == (
            "hot", 1, "ZeroDivisionError: division by zero")
        assert crash["at"].startswith("test_hotfolder_batch_crash.py:")
        (build,) = [b for b in store.list_builds() if b.recipe == "hot"]
        assert build.state is JobState.FAILED


class _StoreWithABug(SqliteJobStore):
    """The store seam: its first ``create_build`` (``bug_in="create"``) or its first move
    of a build to preparing (``bug_in="prepare"``) raises an error nobody foresaw."""

    bug_in = ""

    def create_build(self, *, recipe: str, job_ids: Collection[int] = (),
                     server: str | None = None, reason: str = "batched") -> Build:
        if self.bug_in == "create":
            self.bug_in = ""
            raise ZeroDivisionError("division by zero")
        return super().create_build(recipe=recipe, job_ids=job_ids, server=server,
                                    reason=reason)

    def transition_build(self, build_id: int, to_state: JobState, reason: str,
                         **kwargs: Any) -> Build:
        if self.bug_in == "prepare" and to_state is JobState.PREPARING:
            self.bug_in = ""
            raise ZeroDivisionError("division by zero")
        return super().transition_build(build_id, to_state, reason, **kwargs)


class TestABatchThatCrashesBeforeItsBuildRuns:
    """A crash before any build was sent to the pool fails the file the same way."""

    def test_a_crash_before_the_build_is_made_fails_the_file(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreWithABug(tmp_path / "jobs.sqlite3") as store:
            store.bug_in = "create"
            _run_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            (job,) = store.list_jobs()
            assert (job.state, job.reason, job.build_id) == (JobState.FAILED, CRASH, None)
            assert store.list_builds() == ()
        inbox = tmp_path / "inbox"
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        assert (inbox / "failed" / "p.stl.error.txt").read_text(encoding="utf-8") == (
            _expected_note(job.job_key, "preparing the batch"))
        assert script.runs == []

    def test_a_build_made_but_not_sent_is_taken_apart_and_its_file_fails(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreWithABug(tmp_path / "jobs.sqlite3") as store:
            store.bug_in = "prepare"
            _run_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            (job,) = store.list_jobs()
            (build,) = store.list_builds()
            assert (job.state, job.reason, job.build_id) == (JobState.FAILED, CRASH, None)
            assert (build.state, store.build_history(build.id)[-1].reason) == (
                JobState.CANCELLED, CRASH)
        inbox = tmp_path / "inbox"
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        assert names(inbox / "processing") == []
        assert script.runs == []


class _RunnerDroppingACaseThenCrashing(ScriptedRunner):
    """Drops case C-2 from its build (as ``on_model_failure: drop_case`` does), then
    raises an error nobody foresaw."""

    def run(self) -> RunResult:
        (build,) = self.plan.builds
        assert self.options.on_model_dropped is not None
        for model in build.models:
            if model.case_id == "C-2":
                self.options.on_model_dropped(build.name, model.path, DROPPED)
        raise ZeroDivisionError("division by zero")


DROPPED = "case C-2: model upper.stl: step label: LABEL_FAILED"


class TestACrashAfterACaseWasDropped:
    """The dropped case keeps its own reason; the others fail with the crash."""

    def test_each_file_goes_to_failed_with_its_own_reason(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        for n, case in enumerate(("C-1", "C-2")):
            drop(tmp_path, f"{case}/upper.stl", tetra_stl_bytes(n))
        _run_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                              runner=_RunnerDroppingACaseThenCrashing))
        jobs = {j.case_id: j for j in store.list_jobs()}
        assert (jobs["C-1"].state, jobs["C-1"].reason) == (JobState.FAILED, CRASH)
        assert (jobs["C-2"].state, jobs["C-2"].reason) == (JobState.FAILED, DROPPED)
        failed = tmp_path / "inbox" / "failed"
        for case, reason in (("C-1", CRASH), ("C-2", DROPPED)):
            assert names(failed / case) == ["upper.stl", "upper.stl.error.txt"]
            note = (failed / case / "upper.stl.error.txt").read_text(encoding="utf-8")
            assert note.startswith(f"What failed: {reason}\n")
        assert names(tmp_path / "inbox" / "processing") == []
