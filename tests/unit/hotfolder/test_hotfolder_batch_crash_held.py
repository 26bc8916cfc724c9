"""A batch that crashes after it gave some of its jobs back to the loop (their build filled
too little of the platform: ``min_fill``): those jobs are no longer the batch's, so the crash
neither fails them nor touches the build another batch made of them meanwhile. Read where a
user reads it: the files in processing/ and failed/, the notes, the store's records and the
printed jobs."""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

import pytest
from daemon_support import Script, ScriptedRunner, make_daemon, names, processing_job
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.batcher import Batch, BatchItem, ReleaseReason
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import fleet_jobs, write_recipe
from preform_pipeline.settings.hotfolder import BatchingSettings
from preform_pipeline.store import Build, JobState, SqliteJobStore

CRASH = "an internal error stopped its batch (ZeroDivisionError: division by zero)"
#: How long a test waits for what another worker thread does (far more than it takes).
WAIT_S = 10.0
#: One model per build: a 100 mm part fills 0.2 of the platform (min_fill exactly), a
#: 78.5 mm part 0.123: its build is held back and its job given back to the loop.
FULL_MM, THIN_MM = 100.0, 78.5


def _daemon(tmp_path: Path, store: SqliteJobStore, script: Script,
            runner: type[ScriptedRunner]) -> HotFolderDaemon:
    """A daemon (not running: the test is its worker thread) holding builds below 0.2."""
    return make_daemon(tmp_path, store, script, write_recipe(tmp_path, per_build=1),
                       batching=BatchingSettings(window_s=0.05, min_fill=0.2, max_hold_s=600.0),
                       runner=runner)


def _batch(reason: ReleaseReason, *job_ids: int) -> Batch:
    """A batch of the recipe ``hot`` released for ``reason``, each job a case of its own."""
    return Batch("hot", tuple(BatchItem(f"job:{i}", "hot", (i,), 0.0) for i in job_ids),
                 reason)


def _models(runner: ScriptedRunner) -> set[str]:
    return {m.path.name for b in runner.plan.builds for m in b.models}


class _RunnerWithABug(ScriptedRunner):
    """Raises an error no part of the run expects when it is to prepare ``full.stl``."""

    def run(self) -> RunResult:
        if "full.stl" in _models(self):
            raise ZeroDivisionError("division by zero")
        return super().run()


class TestACrashAfterJobsWereHeldForFill:
    """The held job keeps waiting in processing/ for company; only the crashed build's job
    fails with the crash."""

    def test_the_held_file_is_not_failed_with_the_crash(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        full = processing_job(store, inbox, "full.stl", 1, size_mm=FULL_MM)
        thin = processing_job(store, inbox, "thin.stl", 2, size_mm=THIN_MM)
        daemon = _daemon(tmp_path, store, script, _RunnerWithABug)
        batch = _batch("window", full, thin)
        with capture_logs() as logs:
            # What the daemon's worker thread does with a batch whose run raises.
            with pytest.raises(ZeroDivisionError) as raised:
                daemon.worker.run_batch(batch)
            daemon.worker.crashed(batch, raised.value)
        waiting, crashed = store.get_job(thin), store.get_job(full)
        assert (waiting.state, waiting.build_id) == (JobState.PROCESSING, None)
        assert [h.to_state for h in store.history(thin)] == [JobState.PROCESSING]
        assert (crashed.state, crashed.reason) == (JobState.FAILED, CRASH)
        assert names(inbox / "failed") == ["full.stl", "full.stl.error.txt"]
        assert names(inbox / "processing") == [f"{waiting.job_key}/thin.stl"]
        (build,) = store.list_builds()
        assert (build.job_ids, build.state) == ((full,), JobState.FAILED)
        (crash,) = [e for e in logs if e["event"] == "batch_crashed"]
        assert crash["jobs"] == 1  # the job it still had, not the one it gave back


class TestACrashWhileAnotherBatchPreparesTheHeldJob:
    """The held job, batched again by another worker thread before the crash is handled,
    is that batch's: its build is not failed under it, and its model prints once."""

    def test_the_other_batch_builds_and_prints_the_held_job(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        full = processing_job(store, inbox, "full.stl", 1, size_mm=FULL_MM)
        thin = processing_job(store, inbox, "thin.stl", 2, size_mm=THIN_MM)
        preparing, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def other_worker() -> None:
            # The loop released the held item (max_hold_s) to another worker thread.
            try:
                daemon.worker.run_batch(_batch("held", thin))
            except BaseException as exc:  # reported by the test below, not lost
                errors.append(exc)
                preparing.set()

        other = threading.Thread(target=other_worker, name="hotfolder-worker-2")

        class _Runner(ScriptedRunner):
            """``full.stl``'s run starts the other worker thread and, once that one's
            build is preparing, raises; ``thin.stl``'s run waits to be released."""

            def run(self) -> RunResult:
                if "full.stl" in _models(self):
                    other.start()
                    assert preparing.wait(WAIT_S), "the other batch never started its run"
                    raise ZeroDivisionError("division by zero")
                preparing.set()
                assert release.wait(WAIT_S), "the test never released the other batch"
                return super().run()

        daemon = _daemon(tmp_path, store, script, _Runner)
        batch = _batch("window", full, thin)
        try:
            with pytest.raises(ZeroDivisionError) as raised:
                daemon.worker.run_batch(batch)
            daemon.worker.crashed(batch, raised.value)
            held = store.get_job(thin)
            assert held.build_id is not None
            assert store.get_build(held.build_id).state is JobState.PREPARING
        finally:
            release.set()
            if other.is_alive() or other.ident is not None:
                other.join(WAIT_S)
        assert not other.is_alive() and errors == []
        printed, crashed = store.get_job(thin), store.get_job(full)
        assert (printed.state, crashed.state) == (JobState.PRINT_SENT, JobState.FAILED)
        assert crashed.reason == CRASH
        assert printed.build_id is not None
        (sent,) = fleet_jobs(script.fleet_dir)
        assert sent["job_id"] == store.get_build(printed.build_id).print_job_id
        assert names(inbox / "failed") == ["full.stl", "full.stl.error.txt"]
        assert CRASH not in {h.reason for h in store.history(thin)}


class TestACrashWhileAnotherThreadHoldsJobsOfItsOwn:
    """Worker threads share one worker: what another thread's batch held meanwhile does not
    make the crashed batch forget what it held itself."""

    def test_neither_held_file_is_failed_with_the_crash(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        full = processing_job(store, inbox, "full.stl", 1, size_mm=FULL_MM)
        thin = processing_job(store, inbox, "thin.stl", 2, size_mm=THIN_MM)
        other = processing_job(store, inbox, "other.stl", 3, size_mm=THIN_MM)

        class _Runner(_RunnerWithABug):
            """Before ``full.stl``'s run raises, another worker thread runs a batch of
            ``other.stl`` alone, which holds it back too."""

            def run(self) -> RunResult:
                if "full.stl" in _models(self):
                    second = threading.Thread(
                        target=daemon.worker.run_batch, args=(_batch("window", other),),
                        name="hotfolder-worker-2")
                    second.start()
                    second.join(WAIT_S)
                    assert not second.is_alive(), "the other batch never ended"
                return super().run()

        daemon = _daemon(tmp_path, store, script, _Runner)
        batch = _batch("window", full, thin)
        with pytest.raises(ZeroDivisionError) as raised:
            daemon.worker.run_batch(batch)
        daemon.worker.crashed(batch, raised.value)
        assert [store.get_job(i).state for i in (full, thin, other)] == [
            JobState.FAILED, JobState.PROCESSING, JobState.PROCESSING]
        assert names(inbox / "failed") == ["full.stl", "full.stl.error.txt"]


#: What the store seams say when they fail (a database restart).
AWAY = "the job store is away"


class _StoreAwayAtTheFirstBuild(SqliteJobStore):
    """The store seam: the first ``create_build`` (after the hold) finds the store away."""

    armed = True

    def create_build(self, *, recipe: str, job_ids: Collection[int] = (),
                     server: str | None = None, reason: str = "batched") -> Build:
        if self.armed:
            self.armed = False
            raise StoreError(AWAY)
        return super().create_build(recipe=recipe, job_ids=job_ids, server=server,
                                    reason=reason)


class _RunnerWithTheStoreAway(ScriptedRunner):
    """The store goes away as ``full.stl``'s run starts (after its build was made)."""

    def run(self) -> RunResult:
        if "full.stl" in _models(self):
            raise StoreError(AWAY)
        return super().run()


class TestABatchPostponedAfterJobsWereHeldForFill:
    """A batch the store's absence stops gives back to the loop only the jobs it still
    had: the held job is handed back once, held (given again, it could be batched twice)."""

    def test_an_abandoned_batch_hands_the_held_job_back_once(
        self, tmp_path: Path, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        with _StoreAwayAtTheFirstBuild(tmp_path / "jobs.sqlite3") as store:
            full = processing_job(store, inbox, "full.stl", 1, size_mm=FULL_MM)
            thin = processing_job(store, inbox, "thin.stl", 2, size_mm=THIN_MM)
            daemon = _daemon(tmp_path, store, script, ScriptedRunner)
            handed: list[tuple[tuple[tuple[int, ...], ...], bool]] = []

            def loop(items: tuple[BatchItem, ...], held: bool) -> None:
                # The seam where the daemon's loop takes items back (worker and recovery).
                handed.append((tuple(i.job_ids for i in items), held))

            daemon.worker.give_back = daemon.worker.recovery.give_back = loop
            daemon.worker.run_batch(_batch("window", full, thin))
            assert handed == [(((thin,),), True), (((full,),), False)]
            assert [store.get_job(i).state for i in (full, thin)] == [JobState.PROCESSING] * 2
            assert store.list_builds() == ()
        assert names(inbox / "failed") == []

    def test_a_run_the_store_stopped_leaves_its_build_to_the_loop_and_the_held_job_alone(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        full = processing_job(store, inbox, "full.stl", 1, size_mm=FULL_MM)
        thin = processing_job(store, inbox, "thin.stl", 2, size_mm=THIN_MM)
        daemon = _daemon(tmp_path, store, script, _RunnerWithTheStoreAway)
        batch = _batch("window", full, thin)
        with capture_logs() as logs:
            daemon.worker.run_batch(batch)  # the error stays in: the loop settles the build
        (failed,) = [e for e in logs if e["event"] == "batch_run_failed"]
        assert failed["build_ids"] == [store.get_job(full).build_id]
        assert store.get_job(thin).build_id is None  # held: given back, in no build
        # Had the error left the batch, its thread would give back only what it still owns.
        assert [i.job_ids for i in daemon.worker.owned_items(batch)] == [(full,)]
