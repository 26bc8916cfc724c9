"""The hot folder's worker under mutation (session 23, seed 41's fresh sample): a build that
another process moved between the worker's read and its write: as the worker settles it (after
a failure, and after a print whose ``sent`` write was lost), and right after it was made. Read
where a user reads it: the store's records and history, and structured events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon_support import (
    RunnerLosingSent,
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import Build, JobState, SqliteJobStore

CANCELLED_BY_USER = "cancelled by a user meanwhile"
FOUND_FINISHED = "the prints feed found it finished (another node)"


class _StoreMovedUnderfoot(SqliteJobStore):
    """The store seam: once ``armed`` with a state and reason, the next build read returns
    the build as it was and then that move lands (another process writing between the
    worker's read and its write)."""

    armed: tuple[JobState, str] | None = None

    def get_build(self, build_id: int) -> Build:
        build = super().get_build(build_id)
        if self.armed is not None:
            to_state, reason = self.armed
            self.armed = None
            super().transition_build(build_id, to_state, reason)
        return build


def _arm(script: Script, to_state: JobState, reason: str) -> None:
    store = script.store
    assert isinstance(store, _StoreMovedUnderfoot)
    store.armed = (to_state, reason)


class _RunnerFailsThenCancel(ScriptedRunner):
    """Runs as the scripted runner does (its script fails the build), and arms a user's
    cancel as the run ends, so it lands just as the worker reads the failed build."""

    def run(self) -> RunResult:
        result = super().run()
        _arm(self.script, JobState.CANCELLED, CANCELLED_BY_USER)
        return result


class _RunnerSentThenFoundFinished(RunnerLosingSent):
    """Prints with its ``sent`` write lost (the store still says print_sending), and arms
    another node's move to FINISHED as the run ends."""

    def run(self) -> RunResult:
        result = super().run()
        _arm(self.script, JobState.FINISHED, FOUND_FINISHED)
        return result


class TestAFailedBuildCancelledWhileItIsSettled:
    """A failed build cancelled by someone else as it is settled keeps the cancel, and the
    event says the build changed meanwhile (it was not preparing any more)."""

    def test_the_cancel_stands_and_the_event_names_the_state_it_found(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        script.fail = lambda _build: "the server refused the models"
        with _StoreMovedUnderfoot(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                        runner=_RunnerFailsThenCancel))
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
        assert JobState.FAILED not in [to for _, to in history]


class TestASentPrintFoundFinishedWhileItIsSettled:
    """A print still recorded as sending, which another node found finished as the worker
    settles it, stays finished, and the event says the build changed meanwhile."""

    def test_the_finish_stands_and_the_event_names_the_state_it_found(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreMovedUnderfoot(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                        runner=_RunnerSentThenFoundFinished))
            (build,) = store.list_builds()
            history = [(t.from_state, t.to_state) for t in store.build_history(build.id)]
        (failed,) = [e for e in logs if e["event"] == "build_finish_failed"]
        assert failed["error"] == (
            f"build {build.id} is finished, expected print_sending "
            "(it changed meanwhile; read it again and decide again)")
        assert (build.state, build.reason) == (JobState.FINISHED, FOUND_FINISHED)
        assert history[-1] == (JobState.PRINT_SENDING, JobState.FINISHED)
        assert JobState.PRINT_SENT not in [to for _, to in history]


class _StoreCancelsANewBuild(SqliteJobStore):
    """The store seam: the first build made is cancelled by a user right after it is made
    (another process writing between the worker's creation of the build and its move to
    preparing)."""

    cancelled_one = False

    def create_build(self, *args: Any, **kwargs: Any) -> Build:
        build = super().create_build(*args, **kwargs)
        if not self.cancelled_one:
            self.cancelled_one = True
            super().transition_build(build.id, JobState.CANCELLED, CANCELLED_BY_USER)
        return build


class TestANewBuildCancelledBeforeItIsSentToThePool:
    """A build cancelled as soon as it was made is not prepared: the batch is abandoned, and
    its event says the build changed meanwhile (it was not processing any more)."""

    def test_the_cancel_stands_and_the_event_names_the_state_it_found(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreCancelsANewBuild(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            (build,) = store.list_builds()
            (job,) = store.list_jobs()
            history = [(t.from_state, t.to_state) for t in store.build_history(build.id)]
        (abandoned,) = [e for e in logs if e["event"] == "batch_abandoned"]
        assert abandoned["error"] == (
            f"build {build.id} is cancelled, expected processing "
            "(it changed meanwhile; read it again and decide again)")
        assert (build.state, build.reason) == (JobState.CANCELLED, CANCELLED_BY_USER)
        assert job.state is JobState.CANCELLED
        assert JobState.PREPARING not in [to for _, to in history]
        assert script.runs == []
