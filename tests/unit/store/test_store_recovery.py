"""After a crash, the store says which jobs were interrupted and in what state."""

from __future__ import annotations

import subprocess
from pathlib import Path

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import (
    INTERRUPTED_STATES,
    JobState,
    JobStore,
    SqliteJobStore,
    extract_key,
)
from tests.conftest import REPO_ROOT
from tests.unit.store.conftest import build_in_state, job_in_state

S = JobState


class TestInterruptedAfterACrash:
    """A process that dies mid-work leaves its jobs listed as interrupted on the next start."""

    def test_a_send_cut_off_by_a_dying_process_is_listed_on_reopening(
        self, store_path: Path, python_exe: str
    ) -> None:
        worker = subprocess.run(
            [python_exe, "-m", "tests.unit.store.store_workers", "crash", str(store_path)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        )
        assert worker.returncode == 3, worker.stderr  # it died, it did not close the store
        job_id, build_id, key = worker.stdout.split()
        with SqliteJobStore(store_path) as store:
            (build,) = store.interrupted_builds()
            (job,) = store.interrupted_jobs()
            assert (build.id, build.state, build.job_key) == (int(build_id), S.PRINT_SENDING, key)
            assert (job.id, job.state, job.build_id) == (int(job_id), S.PRINT_SENDING, build.id)
            # What the verifier needs to look the print up before any resend:
            assert extract_key(build.job_name or "") == key
            assert store.find_build_by_key(key) == build
            assert store.history(job.id)[-1].to_state is S.PRINT_SENDING

    def test_a_closed_and_reopened_store_lists_the_same_interrupted_jobs(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        with SqliteJobStore(store_path, clock=clock) as store:
            sending = build_in_state(store, S.PRINT_SENDING, jobs=1)
            preparing = build_in_state(store, S.PREPARING, jobs=1)
            job_in_state(store, S.QUEUED)
            build_in_state(store, S.PRINT_SENT, jobs=1)
        with SqliteJobStore(store_path, clock=clock) as store:
            assert [b.id for b in store.interrupted_builds()] == [sending.id, preparing.id]
            assert {j.state for j in store.interrupted_jobs()} == INTERRUPTED_STATES
            assert [j.build_id for j in store.interrupted_jobs()] == [sending.id, preparing.id]

    def test_a_resolved_send_is_no_longer_interrupted(self, store: JobStore) -> None:
        build = build_in_state(store, S.PRINT_SENDING, jobs=1)
        store.transition_build(build.id, S.VERIFYING, "found in the prints feed",
                               expect=S.PRINT_SENDING, verified_status="PRINTING")
        assert store.interrupted_jobs() == ()
        assert [b.id for b in store.pending_prints()] == [build.id]
