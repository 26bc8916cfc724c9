"""The hot folder's worker under mutation (session 21, seed 39's fresh sample): a prepared
build that someone else moved just as the worker settles it. Read where a user reads it: the
store's records and history, and structured events."""

from __future__ import annotations

from pathlib import Path

from daemon_support import Script, ScriptedRunner, drop, make_daemon, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import Build, JobState, SqliteJobStore

CANCELLED_BY_USER = "cancelled by a user meanwhile"


class _StoreMovedUnderfoot(SqliteJobStore):
    """The store seam: once ``armed``, the next build read returns the build as it was and
    then a user's cancel lands (another process writing between the worker's read and its
    write)."""

    armed = False

    def get_build(self, build_id: int) -> Build:
        build = super().get_build(build_id)
        if self.armed:
            self.armed = False
            super().transition_build(build_id, JobState.CANCELLED, CANCELLED_BY_USER)
        return build


class _RunnerThenCancel(ScriptedRunner):
    """Runs as the scripted runner does, and arms the store as the run ends, so the cancel
    lands just as the worker reads the finished build."""

    def run(self) -> RunResult:
        result = super().run()
        store = self.script.store
        assert isinstance(store, _StoreMovedUnderfoot)
        store.armed = True
        return result


class TestAPreparedBuildCancelledWhileItIsSettled:
    """A dry-run build cancelled by someone else as it is settled keeps the cancel, and the
    event says the build changed meanwhile (it was not prepared any more)."""

    def test_the_cancel_stands_and_the_event_names_the_state_it_found(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreMovedUnderfoot(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                        dry_run=True, runner=_RunnerThenCancel))
            (build,) = store.list_builds()
            (job,) = store.list_jobs()
            history = [(t.from_state, t.to_state) for t in store.build_history(build.id)]
        (failed,) = [e for e in logs if e["event"] == "build_finish_failed"]
        assert failed["error"] == (
            f"build {build.id} is cancelled, expected preparing "
            "(it changed meanwhile; read it again and decide again)")
        assert (build.state, build.reason) == (JobState.CANCELLED, CANCELLED_BY_USER)
        assert job.state is JobState.CANCELLED
        assert history[-1] == (JobState.PREPARING, JobState.CANCELLED)
        assert JobState.DONE not in [to for _, to in history]
