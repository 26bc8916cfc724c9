"""A batch stopped by an error nobody foresaw (a bug in the run): its file fails with the
error named and is kept in failed/, the other recipe's batch still prints, and a once-run
ends instead of batching the file again for ever."""

from __future__ import annotations

import threading
from pathlib import Path

from daemon_support import Script, ScriptedRunner, drop, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.store import JobState, SqliteJobStore


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
            once = threading.Thread(target=daemon.run, kwargs={"once": True}, daemon=True)
            once.start()
            once.join(60)
        assert not once.is_alive(), "the once-run never ended"
        jobs = {j.original_name: j for j in store.list_jobs()}
        assert jobs["p.stl"].state is JobState.FAILED
        assert jobs["q.stl"].state is JobState.PRINT_SENT
        assert len(fleet_jobs(script.fleet_dir)) == 1
        inbox = tmp_path / "inbox"
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        assert names(inbox / "processing") == []
        note = (inbox / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert note.startswith("What failed: an internal error stopped its batch "
                               "(ZeroDivisionError: division by zero)\n")
        assert "this is a bug in preform-pipeline: please report it" in note
        assert f"preform-pipeline jobs retry {jobs['p.stl'].job_key}" in note
        (crash,) = [e for e in logs if e["event"] == "batch_crashed"]
        assert (crash["recipe"], crash["jobs"], crash["error"]) == (
            "hot", 1, "ZeroDivisionError: division by zero")
        assert crash["at"].startswith("test_hotfolder_batch_crash.py:")
        (build,) = [b for b in store.list_builds() if b.recipe == "hot"]
        assert build.state is JobState.FAILED
