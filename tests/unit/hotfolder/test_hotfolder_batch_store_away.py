"""A batch abandoned because the store went away while its builds were made: its jobs go
back to batching even when the store is still away as they are looked up again, so a
live daemon prints them once the store is back (a PostgreSQL restart on a shared store)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from daemon_support import Script, drop, levels_of, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.batchrest import MAX_REST_S
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes
from preform_pipeline.store import Build, Job, JobState, SqliteJobStore


class StoreAwayWhileBatching(SqliteJobStore):
    """The store, unreachable when the first build is sent to the pool and again at the
    next job read after that (a database restart): the store seam."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.away_for_builds = True
        self.away_for_a_read = False

    def transition_build(self, build_id: int, to_state: JobState, reason: str,
                         **changes: Any) -> Build:
        if to_state is JobState.PREPARING and self.away_for_builds:
            self.away_for_builds = False
            self.away_for_a_read = True
            raise StoreError("the job store is away", hint="it comes back")
        return super().transition_build(build_id, to_state, reason, **changes)

    def get_job(self, job_id: int) -> Job:
        if self.away_for_a_read:
            self.away_for_a_read = False
            raise StoreError("the job store is away", hint="it comes back")
        return super().get_job(job_id)


class TestABatchAbandonedWhileTheStoreIsAway:
    """Its files are printed once the store is back, by the same daemon, none twice."""

    def test_the_file_is_printed_once_and_settles_in_done(
        self, tmp_path: Path, script: Script, recipe: Path
    ) -> None:
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        with StoreAwayWhileBatching(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
            jobs = store.list_jobs()
        assert names(tmp_path / "inbox" / "done") == ["m1.stl", "m1.stl.report.json"]
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert [j.state for j in jobs] == [JobState.PRINT_SENT]
        events = [e["event"] for e in logs]
        assert "batch_abandoned" in events
        (dissolved,) = [e for e in logs if e["event"] == "build_dissolved"]
        assert dissolved["jobs"] == 1  # the build made before the store went away
        (given_back,) = [e for e in logs if e["event"] == "batch_given_back_unread"]
        assert given_back["jobs"] == 1


class StoreFullWhileBatching(SqliteJobStore):
    """The store refuses the first ``misses`` builds (its disk full), then takes them."""

    def __init__(self, path: Path, misses: int) -> None:
        super().__init__(path)
        self.misses = misses

    def create_build(self, **values: Any) -> Build:
        if self.misses:
            self.misses -= 1
            raise StoreError("the disk holding the job store is full", hint="free some space")
        return super().create_build(**values)


class TestABatchAbandonedAgainAndAgain:
    """While the store stays away each batching window tries the batch again: the first
    abandoned batch is a warning, the later ones debug events, until it is printed once;
    a later outage is said again."""

    def test_said_once_per_outage_and_printed_once(
        self, tmp_path: Path, script: Script, recipe: Path
    ) -> None:
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        with StoreFullWhileBatching(tmp_path / "jobs.sqlite3", misses=3) as store, \
                capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, recipe)
            run_daemon_once(daemon)
            drop(tmp_path, "m2.stl", tetra_stl_bytes(2))
            store.misses = 1
            run_daemon_once(daemon)

        assert len(fleet_jobs(script.fleet_dir)) == 2
        assert names(tmp_path / "inbox" / "done") == [
            "m1.stl", "m1.stl.report.json", "m2.stl", "m2.stl.report.json"]
        said = levels_of(logs, "batch_abandoned")
        assert said == [("batch_abandoned", "warning"),
                        ("batch_abandoned_again", "debug"),
                        ("batch_abandoned_again", "debug"),
                        ("batch_abandoned", "warning")]



class TestTheTriesRest:
    """While the store stays away the tries of a batch rest longer each time (from the
    batching window, doubling, to at most ``MAX_REST_S``) and read its models once."""

    def test_the_rest_grows_and_the_models_are_read_once(
        self, tmp_path: Path, script: Script, recipe: Path
    ) -> None:
        # Units not stated: the model's are guessed, and said each time it is read.
        recipe.write_text(recipe.read_text(encoding="utf-8").replace(
            "  units: MILLIMETERS\n", ""), encoding="utf-8")
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1, size_mm=20.0))
        with StoreFullWhileBatching(tmp_path / "jobs.sqlite3", misses=3) as store, \
                capture_logs() as logs:
            started = time.monotonic()
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
            took = time.monotonic() - started

        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert names(tmp_path / "inbox" / "done") == ["m1.stl", "m1.stl.report.json"]
        tries = [e for e in logs if e["event"].startswith("batch_abandoned")]
        assert [(e["event"], e["log_level"], e["retry_in_s"]) for e in tries] == [
            ("batch_abandoned", "warning", 0.1),  # the test daemon's batching window
            ("batch_abandoned_again", "debug", 0.2),
            ("batch_abandoned_again", "debug", 0.4)]
        assert tries[0]["longest_wait_s"] == MAX_REST_S
        assert took >= 0.1 + 0.2 + 0.4  # each rest was kept (a bound that cannot flake)
        assert [e["event"] for e in logs].count("units_guessed") == 1

    def test_the_tries_count_as_one_batch(
        self, tmp_path: Path, script: Script, recipe: Path
    ) -> None:
        """`watch` says "stopped after N batches" from ``hotfolder_stopped``'s count: a try
        put back to rest is not a batch (one build was said as 4 batches)."""
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        with StoreFullWhileBatching(tmp_path / "jobs.sqlite3", misses=3) as store, \
                capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, recipe)
            run_daemon_once(daemon)

        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert [e["event"] for e in logs].count("batch_abandoned_again") == 2
        assert daemon.batches_run == 1
        assert [e["batches"] for e in logs if e["event"] == "hotfolder_stopped"] == [1]
