"""The hot folder's worker under mutation (session 20, seed 37's fresh sample): what a user
reads when a batch crashes while the job store is away. Each is read where a user reads it:
the store's records, the inbox's folders and structured events."""

from __future__ import annotations

import threading
from pathlib import Path

from daemon_support import Script, ScriptedRunner, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.store import Job, JobState, SqliteJobStore

AWAY = "the job store is away"
#: How long a test waits for a once-run to end (far more than it takes).
WAIT_S = 30.0


class _StoreAwayForOneJobRead(SqliteJobStore):
    """The store seam: once ``away`` is set, the next job read fails (the store was away
    for that one read), and the reads after it work."""

    away = False

    def get_job(self, job_id: int) -> Job:
        if self.away:
            self.away = False
            raise StoreError(f"{AWAY} (reading job {job_id})", hint="it comes back")
        return super().get_job(job_id)


class _RunnerCrashingOnce(ScriptedRunner):
    """The first run raises an error nobody foresaw (a bug) just as the store goes away
    for one read; the runs after it print as the scripted runner does."""

    def run(self) -> RunResult:
        store = self.script.store
        assert isinstance(store, _StoreAwayForOneJobRead)
        if len(self.script.runs) == 0:
            self.script.runs.append(("crashed",))
            store.away = True
            raise ZeroDivisionError("division by zero")
        return super().run()


class TestABatchCrashWhoseJobCannotBeRead:
    """A crashed batch whose job cannot be read while it is settled says which job it could
    not settle, and leaves the job to the next start, which prints it once."""

    def test_the_event_names_the_job_and_the_next_start_prints_it(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreAwayForOneJobRead(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                 runner=_RunnerCrashingOnce)
            once = threading.Thread(target=daemon.run, kwargs={"once": True}, daemon=True)
            once.start()
            once.join(WAIT_S)
            assert not once.is_alive(), "the once-run never ended"
            (job,) = store.list_jobs()
        (unsettled,) = [e for e in logs if e["event"] == "batch_crash_not_settled"]
        assert (unsettled["job_id"], unsettled["error"]) == (
            job.id, f"{AWAY} (reading job {job.id}) (it comes back)")
        # Left as the crash left it (its build made, nothing sent), for the next start.
        assert job.state is JobState.PREPARING
        assert fleet_jobs(script.fleet_dir) == []
        assert names(tmp_path / "inbox" / "failed") == []
        assert names(tmp_path / "inbox" / "processing") == [f"{job.job_key}/p.stl"]
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            (job,) = store.list_jobs()
        # The next start's recovery gives the job back, and it prints once.
        assert job.state is JobState.PRINT_SENT
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]
