"""Intake never loses track of a file, and duplicates are judged within one recipe only.

Written against the package's public names (``preform_pipeline.hotfolder``), so the tests hold
wherever the daemon's split puts the code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore

#: Short, so that a write blocked by another process's lock fails fast (a real StoreError).
BUSY_TIMEOUT_S = 0.2


def _inbox(folder: Path, recipe: str) -> InboxSettings:
    settings = InboxSettings(path=folder, recipe=folder.parent / f"{recipe}.yaml")
    for kind in ("processing", "done", "failed"):
        settings.folder(kind).mkdir(parents=True)
    return settings


def _drop(inbox: InboxSettings, name: str, data: bytes, recipe: str) -> Drop:
    path = inbox.path / name
    path.write_bytes(data)
    return Drop(inbox, path, recipe, False, models=(path,), reasons={path: "test"})


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Another process holds the store's write lock (as a stuck writer would)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


@pytest.fixture
def quick_store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3", busy_timeout_s=BUSY_TIMEOUT_S) as opened:
        yield opened


class TestSettlingOrder:
    """When the store cannot record a file's outcome folder, the file does not move there."""

    @pytest.mark.parametrize(("ok", "outcome"), [(True, "done"), (False, "failed")])
    def test_a_failed_store_write_leaves_the_file_where_the_store_says(
        self, tmp_path: Path, quick_store: SqliteJobStore, ok: bool, outcome: str
    ) -> None:
        inbox = _inbox(tmp_path / "inbox", "r")
        intake = Intake(quick_store, [inbox])
        (job,) = intake.take(_drop(inbox, "part.stl", tetra_stl_bytes(3), "r")).taken
        with _locked(quick_store.path), pytest.raises(StoreError):
            intake.settle(job, ok=ok, report="{}\n", note="What failed: x\n")
        recorded = quick_store.get_job(job.id)
        assert recorded.source_path.is_file(), "the store points where the file is not"
        assert recorded.source_path.read_bytes() == tetra_stl_bytes(3)
        assert not (inbox.folder(outcome) / "part.stl").exists()

    def test_settling_again_after_the_store_recovers_finishes_the_move(
        self, tmp_path: Path, quick_store: SqliteJobStore
    ) -> None:
        inbox = _inbox(tmp_path / "inbox", "r")
        intake = Intake(quick_store, [inbox])
        (job,) = intake.take(_drop(inbox, "part.stl", tetra_stl_bytes(4), "r")).taken
        with _locked(quick_store.path), pytest.raises(StoreError):
            intake.settle(job, ok=True, report="{}\n")
        # A restarted daemon reads the job from the store and settles it again.
        again = Intake(quick_store, [inbox]).settle(quick_store.get_job(job.id), ok=True,
                                                    report="{}\n")
        recorded = quick_store.get_job(job.id).source_path
        assert recorded == again.source_path
        assert recorded.parent == inbox.folder("done")
        assert recorded.read_bytes() == tetra_stl_bytes(4)
        assert recorded.with_name(recorded.name + ".report.json").is_file()
        assert list(inbox.folder("processing").iterdir()) == []


class TestDuplicatesPerRecipe:
    """The same content dropped for two recipes is two jobs; for one recipe, a duplicate."""

    def _two_inboxes(self, tmp_path: Path) -> tuple[InboxSettings, InboxSettings]:
        return _inbox(tmp_path / "crowns", "crowns"), _inbox(tmp_path / "models", "models")

    def test_the_same_file_for_another_recipe_is_taken(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        crowns, models = self._two_inboxes(tmp_path)
        intake = Intake(store, [crowns, models], duplicates="skip")
        (first,) = intake.take(_drop(crowns, "part.stl", tetra_stl_bytes(7), "crowns")).taken
        second = intake.take(_drop(models, "part.stl", tetra_stl_bytes(7), "models"))
        assert second.rejected == ()
        (taken,) = second.taken
        assert (taken.recipe, taken.state) == ("models", JobState.PROCESSING)
        assert first.content_hash == taken.content_hash
        assert list(models.folder("failed").iterdir()) == []

    def test_the_same_file_for_the_same_recipe_is_skipped(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        crowns, models = self._two_inboxes(tmp_path)
        intake = Intake(store, [crowns, models], duplicates="skip")
        (first,) = intake.take(_drop(crowns, "a.stl", tetra_stl_bytes(7), "crowns")).taken
        again = intake.take(_drop(models, "b.stl", tetra_stl_bytes(7), "crowns"))
        (skipped,) = again.rejected
        assert skipped.state is JobState.DUPLICATE_SKIPPED
        note = (models.folder("failed") / "b.stl.error.txt").read_text(encoding="utf-8")
        assert first.job_key in note

    def test_printing_duplicates_again_flags_only_those_of_the_same_recipe(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        crowns, models = self._two_inboxes(tmp_path)
        intake = Intake(store, [crowns, models], duplicates="print")
        intake.take(_drop(crowns, "part.stl", tetra_stl_bytes(8), "crowns"))
        with capture_logs() as logs:
            (other,) = intake.take(_drop(models, "part.stl", tetra_stl_bytes(8), "models")).taken
        assert [e for e in logs if e["event"] == "duplicate_printed_again"] == []
        assert _states(store, other) == [JobState.QUEUED, JobState.PROCESSING]


def _states(store: SqliteJobStore, job: Job) -> list[JobState]:
    return [t.to_state for t in store.history(job.id)]
