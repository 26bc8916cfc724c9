"""The hot folder's worker under mutation (session 22, seed 40's sample): a batch that crashes
just after a user cancelled one of its jobs. Read where a user reads it: the files and notes
in failed/, and the store's records."""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

from daemon_support import Script, drop, make_daemon, names

from preform_pipeline.commands.jobs import CANCEL_REASON
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import Build, JobState, SqliteJobStore

CRASH = "an internal error stopped its batch (ZeroDivisionError: division by zero)"


class _CancelThenBug(SqliteJobStore):
    """The store seam: the first ``create_build`` lets a user's ``jobs cancel`` of the
    build's last job land (another process, the job still unbatched), then raises an error
    nobody foresaw, so the batch crashes with that job cancelled and its file in
    processing/."""

    armed = True

    def create_build(self, *, recipe: str, job_ids: Collection[int] = (),
                     server: str | None = None, reason: str = "batched") -> Build:
        if self.armed:
            self.armed = False
            *_, last = job_ids
            self.transition(last, JobState.CANCELLED, CANCEL_REASON, expect=JobState.PROCESSING)
            raise ZeroDivisionError("division by zero")
        return super().create_build(recipe=recipe, job_ids=job_ids, server=server,
                                    reason=reason)


def _run_once(daemon: HotFolderDaemon) -> None:
    """The daemon's once-run, in a thread: it must end."""
    once = threading.Thread(target=daemon.run, kwargs={"once": True}, daemon=True)
    once.start()
    once.join(60)
    assert not once.is_alive(), "the once-run never ended"


class TestACrashJustAfterAJobWasCancelled:
    """The cancelled job's note says a user cancelled it, not that the batch crashed; the
    other job fails with the crash."""

    def test_each_note_in_failed_tells_its_own_story(self, tmp_path: Path,
                                                     script: Script) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        drop(tmp_path, "q.stl", tetra_stl_bytes(2))
        with _CancelThenBug(tmp_path / "jobs.sqlite3") as store:
            _run_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            jobs = {j.original_name: j for j in store.list_jobs()}
            assert store.list_builds() == ()
        crashed, cancelled = jobs["p.stl"], jobs["q.stl"]
        assert (crashed.state, crashed.reason) == (JobState.FAILED, CRASH)
        assert (cancelled.state, cancelled.reason) == (JobState.CANCELLED, CANCEL_REASON)
        failed = tmp_path / "inbox" / "failed"
        assert names(failed) == ["p.stl", "p.stl.error.txt", "q.stl", "q.stl.error.txt"]
        assert names(tmp_path / "inbox" / "processing") == []
        key = cancelled.job_key
        assert (failed / "q.stl.error.txt").read_text(encoding="utf-8") == (
            f"What failed: {CANCEL_REASON}\n"
            "Where: cancelled by a user (preform-pipeline jobs cancel)\n"
            "File: q.stl\n"
            f"Job: {key} (see: preform-pipeline jobs show {key})\n"
            f"What to do: nothing; to prepare it after all: preform-pipeline jobs retry {key}\n"
        )
        assert (failed / "p.stl.error.txt").read_text(encoding="utf-8").startswith(
            f"What failed: {CRASH}\n")
