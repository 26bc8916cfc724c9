"""Moves into failed/ and their record as made (session 23). A move whose record the store
does not take: the file is in failed/ with its note all the same, the event says which job's
record is missing, and the move counts as cut short (as before the record existed). A move
a crash cut short: the file, taken again, is moved on under its one job instead of becoming
a second one."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon_support import claimed_by_a_run
from structlog.testing import capture_logs
from test_hotfolder_intake import drop_file

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, Attachment, Intake
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

    def test_a_copy_put_back_beside_the_settled_file_is_a_new_drop(
        self, tmp_path: Path, inbox: InboxSettings
    ) -> None:
        with _StoreAwayAtTheRecord(tmp_path / "jobs.sqlite3") as store:
            intake = Intake(store, [inbox])
            intake.take(drop_file(inbox, "bracket.stl", tetra_stl_bytes(3)))
            intake.take(drop_file(inbox, "copy.stl", tetra_stl_bytes(3)))
            # A copy of the file (the settled one stays in failed/): not a move to finish.
            result = intake.take(drop_file(inbox, "copy.stl", tetra_stl_bytes(3)))
            copies = [j for j in store.list_jobs() if j.original_name == "copy.stl"]
        assert not (inbox.path / "copy.stl").exists()
        assert len(result.rejected) == 1 and result.rejected[0].id != copies[0].id
        assert [j.state for j in copies] == [JobState.DUPLICATE_SKIPPED] * 2


class Killed(BaseException):
    """The process died here: nothing after this point of the intake runs."""


class _DiesMovingToFailed(Intake):
    """The intake, killed right before a file moves into failed/ (its note written, the
    store naming its place there, the move not recorded as made)."""

    def _move(self, job: Job, source: Path, target: Path,
              attachments: Sequence[Attachment]) -> None:
        if "failed" in target.parts:
            raise Killed(target)
        super()._move(job, source, target, attachments)


def _cut_short(store: SqliteJobStore, inbox: InboxSettings, name: str) -> None:
    with contextlib.suppress(Killed):
        _DiesMovingToFailed(store, [inbox]).take(drop_file(inbox, name, tetra_stl_bytes(3)))
    assert (inbox.path / name).exists()  # the move never happened


class TestAMoveCutShortFinishedWhenTheFileIsTakenAgain:
    """Among the jobs of its content (another cut-short copy, newer; a `run`'s job, newest,
    with no place in the hot folder), the file's own job is found and its move finished:
    in failed/ once, under its one job, the event naming both places; nothing of the
    other copy is touched."""

    def test_the_file_goes_to_failed_under_its_own_job(
        self, tmp_path: Path, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        intake.take(drop_file(inbox, "bracket.stl", tetra_stl_bytes(3)))
        _cut_short(store, inbox, "copy.stl")
        _cut_short(store, inbox, "twin.stl")
        model = tmp_path / "models" / "arch.stl"
        model.parent.mkdir()
        model.write_bytes(tetra_stl_bytes(3))
        claimed_by_a_run(store, model)
        with capture_logs() as logs:
            result = intake.take(drop_file(inbox, "copy.stl", tetra_stl_bytes(3)))
        failed = inbox.folder("failed")
        assert (result.taken, result.rejected) == ((), ())
        assert _names(failed) == ["copy.stl", "copy.stl.error.txt", "twin.stl.error.txt"]
        assert (inbox.path / "twin.stl").exists()
        (copy,) = [j for j in store.list_jobs() if j.original_name == "copy.stl"]
        assert (copy.state, copy.source_path) == (JobState.DUPLICATE_SKIPPED, failed / "copy.stl")
        (event,) = [e for e in logs if e["event"] == "cut_short_move_finished"]
        assert {k: event[k] for k in ("job_key", "path", "target", "state", "log_level")} == {
            "job_key": copy.job_key, "path": str(inbox.path / "copy.stl"),
            "target": str(failed / "copy.stl"), "state": "duplicate_skipped",
            "log_level": "info"}


class TestARetryBetweenTheMoveAndItsRecord:
    """A user retries the skipped copy (``jobs retry``, and the daemon takes it back into
    processing/) in the instant between its move into failed/ and the record of that move:
    the record does not overwrite the retry's place, so when the retried job settles in
    done/ its sidecar goes with it and nothing is left in processing/."""

    def test_the_sidecar_follows_its_model_to_done(
        self, tmp_path: Path, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        retried: list[Job] = []

        def move(src: Path, dst: Path) -> None:
            move_file(src, dst)
            if dst == inbox.folder("failed") / "copy.yaml" and not retried:
                # The last file of the settle's move is there: the retry lands now.
                (job,) = [j for j in store.list_jobs() if j.original_name == "copy.stl"]
                store.transition(job.id, JobState.QUEUED, "retried by a user",
                                 expect=JobState.DUPLICATE_SKIPPED)
                retried.append(Intake(store, [inbox]).requeue(store.get_job(job.id)))

        intake = Intake(store, [inbox], move=move)
        intake.take(drop_file(inbox, "bracket.stl", tetra_stl_bytes(3)))
        (inbox.path / "copy.yaml").write_text("customer: ACME\n", encoding="utf-8")
        intake.take(drop_file(inbox, "copy.stl", tetra_stl_bytes(3)))
        (job,) = retried
        assert job.source_path.parent.parent == inbox.folder("processing")
        # Its build printed: the worker settles it in done/.
        intake.settle(store.get_job(job.id), ok=True, report="{}")
        assert _names(inbox.folder("done")) == ["copy.stl", "copy.stl.report.json",
                                                "copy.yaml"]
        left = [p.name for p in inbox.folder("processing").rglob("*") if p.is_file()]
        assert left == ["bracket.stl"]  # the original's, still being prepared
