"""Builds a batch made before the job store failed it (a ``StoreError`` out of the run, or at
the write of a build's outcome): the running daemon settles them itself, by the rules its
start-up recovery follows, instead of leaving them "preparing" on the dashboard until the
next start. Read where a user reads it: the inbox's folders, the printed jobs, the store's
builds and the daemon's log events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon_support import (
    Script,
    ScriptedRunner,
    drop,
    levels_of,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.store import Build, JobState, SqliteJobStore

#: What the store seam says when it fails (a database restart).
AWAY = "the job store is away"


class _RunnerMeetingTheStoreAway(ScriptedRunner):
    """The store goes away under the batch's first run: the error leaves the run (after
    the batch made its build); later runs go as scripted."""

    failed = False
    met_the_store_away = False

    def run(self) -> RunResult:
        if not _RunnerMeetingTheStoreAway.failed:
            _RunnerMeetingTheStoreAway.failed = self.met_the_store_away = True
            raise StoreError(AWAY, hint="it comes back")
        return super().run()

    def cancel(self) -> None:
        # The script's cancel stops every later run too; this run is over already.
        if not self.met_the_store_away:
            super().cancel()


class _StoreAwayAtTheOutcome(SqliteJobStore):
    """The store seam: away for the first two writes of a build's outcome (DONE), so the
    write fails at the run's end and once more after it."""

    def __init__(self, path: Path, misses: int = 2) -> None:
        super().__init__(path)
        self.misses = misses

    def transition_build(self, build_id: int, to_state: JobState, reason: str,
                         **changes: Any) -> Build:
        if to_state is JobState.DONE and self.misses:
            self.misses -= 1
            raise StoreError(AWAY, hint="it comes back")
        return super().transition_build(build_id, to_state, reason, **changes)


class TestARunStoppedByTheStoreAfterItsBuildsWereMade:
    """The build is taken apart and its file prepared again, by the same daemon: printed
    once, settled in done/, no build left preparing."""

    def test_the_file_is_printed_once_without_a_restart(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        _RunnerMeetingTheStoreAway.failed = False
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        daemon = make_daemon(tmp_path, store, script, recipe,
                             runner=_RunnerMeetingTheStoreAway)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        assert names(tmp_path / "inbox" / "done") == ["m1.stl", "m1.stl.report.json"]
        assert names(tmp_path / "inbox" / "processing") == []
        assert len(fleet_jobs(script.fleet_dir)) == 1
        (job,) = store.list_jobs()
        assert job.state is JobState.PRINT_SENT
        first, second = sorted(store.list_builds(), key=lambda b: b.id)
        assert (first.state, second.state) == (JobState.CANCELLED, JobState.PRINT_SENT)
        # What `builds` and the dashboard show for the build taken apart: why, in words.
        assert first.reason == (f"its run stopped: {AWAY}; nothing was printed: its jobs are "
                                "batched again")
        assert store.list_builds(state=[JobState.PREPARING, JobState.PREPARED]) == ()
        (stopped,) = [e for e in logs if e["event"] == "batch_run_failed"]
        assert (stopped["builds"], stopped["build_ids"], stopped["error"]) == (
            1, [first.id], AWAY)
        (settled,) = [e for e in logs if e["event"] == "build_left_settled"]
        assert (settled["build_id"], settled["state"], settled["action"], settled["why"]) == (
            first.id, "preparing", "prepared again", f"its run stopped: {AWAY}")


class TestABuildWhoseOutcomeTheStoreRefused:
    """A build prepared (no print step) whose DONE the store did not take at the run's
    end is settled by the same daemon once the store answers: DONE, its file in done/,
    prepared once."""

    def test_the_outcome_is_written_once_the_store_is_back(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        with _StoreAwayAtTheOutcome(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer=None))
            run_daemon_once(daemon)
            (build,) = store.list_builds()
            (job,) = store.list_jobs()
        assert (build.state, job.state) == (JobState.DONE, JobState.DONE)
        assert names(tmp_path / "inbox" / "done") == ["m1.stl", "m1.stl.report.json"]
        assert len(script.runs) == 1
        (failed,) = [e for e in logs if e["event"] == "build_finish_failed"]
        assert (failed["build"], failed["error"]) == (build.job_key, f"{AWAY} (it comes back)")
        (retry,) = [e for e in logs if e["event"] == "build_left_unsettled"]
        assert (retry["build_id"], retry["why"], retry["error"], retry["retry"]) == (
            build.id, "its outcome could not be written", AWAY, True)
        (settled,) = [e for e in logs if e["event"] == "build_left_settled"]
        assert (settled["build_id"], settled["action"]) == (build.id, "outcome written")


class TestAStoreAwayForLong:
    """The loop tries a left build again on every pass while the store is away (a full disk
    may last hours): the failure is said once, as a warning, and the tries after it only at
    debug level, until it is settled."""

    def test_said_once_then_settled(self, tmp_path: Path, script: Script) -> None:
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        with _StoreAwayAtTheOutcome(tmp_path / "jobs.sqlite3", misses=4) as store, \
                capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer=None))
            run_daemon_once(daemon)
            (build,) = store.list_builds()

        assert build.state is JobState.DONE
        assert names(tmp_path / "inbox" / "done") == ["m1.stl", "m1.stl.report.json"]
        said = levels_of(logs, "build_left_")
        # The run's end missed once; the loop's first try is said, the next two are not.
        assert said == [("build_left_unsettled", "warning"),
                        ("build_left_still_unsettled", "debug"),
                        ("build_left_still_unsettled", "debug"),
                        ("build_left_settled", "info")]
        # Forgotten once settled: a daemon running for months keeps no note of each.
        assert daemon.recovery._left_said == set()
