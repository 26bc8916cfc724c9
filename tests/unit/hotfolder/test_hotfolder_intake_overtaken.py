"""Intake overtaken by another writer of the same job, between its read and its write: a
settle overtaken by another settle says so, naming the job; a job a user cancels while intake
queues it stays cancelled (a real SQLite store and inbox; the only seam lets the other writer
run in the gap, as another node or a user's command would)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreConflictError
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore
from tests.unit.hotfolder.test_hotfolder_intake import OvertakingStore, drop_file


class TestAnOvertakenSettle:
    """The settle that loses the race logs which job's file was settled elsewhere."""

    def test_the_overtaken_settle_names_the_job_and_where_it_found_the_file(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        seam = OvertakingStore(store)
        stalled, other = Intake(seam, [inbox]), Intake(store, [inbox])
        (job,) = stalled.take(drop_file(inbox, "part.stl", tetra_stl_bytes(0))).taken
        found_at: Path = job.source_path
        job = store.transition(job.id, JobState.FAILED, "x")  # any outcome state will do
        note = f"What failed: x\nJob: {job.job_key} (see: preform-pipeline jobs show)\n"
        settled: list[Job] = []
        seam.overtake = lambda: settled.append(other.settle(store.get_job(job.id), ok=False,
                                                            note=note))
        with capture_logs() as logs:
            late = stalled.settle(job, ok=False, note=note)
        elsewhere = [e for e in logs if e["event"] == "file_settled_elsewhere"]
        assert elsewhere == [{"event": "file_settled_elsewhere", "log_level": "info",
                              "job_key": job.job_key, "path": str(found_at)}]
        assert late.source_path == settled[0].source_path == inbox.folder("failed") / "part.stl"


class CancellingStore:
    """The store seam: the first move of a job to QUEUED lets a user's cancel of it land
    first, as `jobs cancel` would in the gap between intake's read and its write."""

    def __init__(self, inner: SqliteJobStore) -> None:
        self.inner = inner
        self.armed = True

    def transition(self, job_id: int, to_state: JobState, reason: str, **kw: Any) -> Job:
        if to_state is JobState.QUEUED and self.armed:
            self.armed = False
            self.inner.transition(job_id, JobState.CANCELLED, "cancelled by a user")
        return self.inner.transition(job_id, to_state, reason, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TestACancelDuringIntake:
    """A job left DISCOVERED by a crash, cancelled while intake queues it, is not taken."""

    def test_the_cancelled_job_stays_cancelled_and_its_file_stays_in_the_inbox(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = drop_file(inbox, "part.stl", tetra_stl_bytes(0))
        left = store.create_job(recipe="r", source_path=drop.models[0])  # DISCOVERED
        intake = Intake(CancellingStore(store), [inbox])
        with pytest.raises(StoreConflictError):
            intake.take(drop)
        assert store.get_job(left.id).state is JobState.CANCELLED
        assert (inbox.path / "part.stl").read_bytes() == tetra_stl_bytes(0)
        assert list(inbox.folder("processing").iterdir()) == []
