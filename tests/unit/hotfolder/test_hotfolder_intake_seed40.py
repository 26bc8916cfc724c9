"""Session 22, seed 40: the case folder a crash left empty is told by the store's jobs, also
when the store holds jobs the hot folder never placed (a ``run``'s claims share the store and
have no ``_hotfolder`` field) and when the case held no model file at all; and a duplicate a
user cancels while intake skips it stays cancelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daemon_support import Script, claimed_by_a_run, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs
from test_hotfolder_crash_windows import (
    DiesBeforeRemovingTheFolder,
    Killed,
    drop_case,
    killed_while_taking,
)
from test_hotfolder_intake import drop_file

from preform_pipeline.errors import StoreConflictError
from preform_pipeline.hotfolder.intake import Drop, Intake
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore


def _claimed(tmp_path: Path, store: SqliteJobStore) -> Job:
    """A model a live ``run`` claimed in the hot folder's store (no place of the hot folder)."""
    model = tmp_path / "models" / "arch.stl"
    model.parent.mkdir()
    model.write_bytes(tetra_stl_bytes(7))
    return claimed_by_a_run(store, model)


def _removed(logs: list[dict[str, object]]) -> list[object]:
    return [e["root"] for e in logs if e["event"] == "case_folder_removed"]


class TestAnEmptyFolderBesideARunsClaims:
    """Looking for the case an empty folder was skips the jobs the hot folder never placed."""

    def test_a_folder_the_user_made_stays_and_the_runs_model_is_left_to_it(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        job = _claimed(tmp_path, store)
        made = tmp_path / "inbox" / "C-3000"
        made.mkdir(parents=True)
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert made.is_dir() and list(made.iterdir()) == []
        assert _removed(logs) == []
        assert store.get_job(job.id).state is JobState.PROCESSING
        assert store.get_job(job.id).source_path == job.source_path
        assert job.source_path.is_file()

    def test_a_case_emptied_before_a_runs_newer_claim_is_still_removed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        _claimed(tmp_path, store)  # the newest job, looked at first
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert not case.exists()
        assert _removed(logs) == [str(case)]
        assert names(tmp_path / "inbox" / "done") == [
            "case8/m8a.stl", "case8/m8a.stl.report.json",
            "case8/m8b.stl", "case8/m8b.stl.report.json"]


class TestACaseOfNoModelFile:
    """A case folder holding only files that are not models is the case its rejected files
    came from: emptied by a crash before its removal, the restart removes it."""

    def test_the_folder_a_crash_left_empty_is_removed_on_restart(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = tmp_path / "inbox" / "C-5000"
        case.mkdir(parents=True)
        (case / "notes.txt").write_text("left side first\n", encoding="utf-8")
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        with pytest.raises(Killed):
            DiesBeforeRemovingTheFolder(store, [inbox]).take(
                Drop(inbox, case, "hot", True, others=(case / "notes.txt",)))
        assert case.is_dir() and list(case.iterdir()) == []
        assert [j.state for j in store.list_jobs()] == [JobState.FAILED]
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert not case.exists()
        assert _removed(logs) == [str(case)]
        assert names(tmp_path / "inbox" / "failed") == [
            "C-5000/notes.txt", "C-5000/notes.txt.error.txt"]
        assert fleet_jobs(script.fleet_dir) == []


class CancelledBeforeTheSkip:
    """The store seam: the first move of a job to DUPLICATE_SKIPPED lets a user's cancel of it
    land first, as ``jobs cancel`` would between intake's creating the job and skipping it."""

    def __init__(self, inner: SqliteJobStore) -> None:
        self.inner = inner
        self.armed = True

    def transition(self, job_id: int, to_state: JobState, reason: str, **kw: Any) -> Job:
        if to_state is JobState.DUPLICATE_SKIPPED and self.armed:
            self.armed = False
            self.inner.transition(job_id, JobState.CANCELLED, "cancelled by a user")
        return self.inner.transition(job_id, to_state, reason, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TestADuplicateCancelledWhileSkipped:
    """A duplicate the user cancels while intake skips it is not skipped over the cancel."""

    def test_the_take_stops_on_the_conflict_and_the_cancel_stands(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        Intake(store, [inbox]).take(drop_file(inbox, "a.stl", tetra_stl_bytes(5)))
        intake = Intake(CancelledBeforeTheSkip(store), [inbox], duplicates="skip")
        with pytest.raises(StoreConflictError) as raised:
            intake.take(drop_file(inbox, "b.stl", tetra_stl_bytes(5)))
        copy = next(j for j in store.list_jobs() if j.original_name == "b.stl")
        assert raised.value.message == f"job {copy.id} is cancelled, expected queued"
        assert raised.value.hint == "it changed meanwhile; read it again and decide again"
        assert [(t.to_state, t.reason) for t in store.history(copy.id)][-1:] == [
            (JobState.CANCELLED, "cancelled by a user")]
        assert store.get_job(copy.id).state is JobState.CANCELLED
        assert (inbox.path / "b.stl").read_bytes() == tetra_stl_bytes(5)
        assert list(inbox.folder("failed").iterdir()) == []
