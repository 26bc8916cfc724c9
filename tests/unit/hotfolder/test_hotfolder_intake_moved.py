"""A move into failed/ whose record as made the store does not take (session 23): the file
is in failed/ with its note all the same, the event says which job's record is missing, and
the move counts as cut short (as before the record existed): the file, put back, is moved
on under its one job instead of becoming a second one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
from test_hotfolder_intake import drop_file

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore

AWAY = "the job store is away"


class _StoreAwayAtTheRecord(SqliteJobStore):
    """The store seam: away at the write that records a move as made (once)."""

    armed = True

    def update_job(self, job_id: int, *, expect_source: Path | str | None = None,
                   **fields: Any) -> Job:
        place = fields.get("fields", {}).get(HOTFOLDER_FIELD, {})
        if self.armed and place.get("moved") is True:
            self.armed = False
            raise StoreError(AWAY, hint="it comes back")
        return super().update_job(job_id, expect_source=expect_source, **fields)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class TestAMoveTheStoreDidNotRecordAsMade:
    """The skipped copy is in failed/; ``move_not_recorded`` names it; put back, it goes
    to failed/ again under its one job."""

    def test_the_file_is_settled_and_the_event_names_the_job_and_its_place(
        self, tmp_path: Path, inbox: InboxSettings
    ) -> None:
        with _StoreAwayAtTheRecord(tmp_path / "jobs.sqlite3") as store:
            intake = Intake(store, [inbox])
            intake.take(drop_file(inbox, "bracket.stl", tetra_stl_bytes(3)))
            with capture_logs() as logs:
                (skipped,) = intake.take(
                    drop_file(inbox, "copy.stl", tetra_stl_bytes(3))).rejected
            failed = inbox.folder("failed")
            assert _names(failed) == ["copy.stl", "copy.stl.error.txt"]
            (event,) = [e for e in logs if e["event"] == "move_not_recorded"]
            assert (event["job_key"], event["path"], event["error"]) == (
                skipped.job_key, str(failed / "copy.stl"), f"{AWAY} (it comes back)")
            assert event["log_level"] == "warning"

            # Put back by a user: without the record it cannot be told from a move a crash
            # cut short, so it is moved on under its job, as before the record existed.
            (failed / "copy.stl").rename(inbox.path / "copy.stl")
            result = intake.take(drop_file(inbox, "copy.stl", tetra_stl_bytes(3)))
            copies = [j for j in store.list_jobs() if j.original_name == "copy.stl"]
        assert (result.taken, result.rejected) == ((), ())
        assert _names(failed) == ["copy.stl", "copy.stl.error.txt"]
        assert [(j.state, j.source_path) for j in copies] == [
            (JobState.DUPLICATE_SKIPPED, failed / "copy.stl")]
