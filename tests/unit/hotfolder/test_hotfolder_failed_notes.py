"""A note that goes nowhere leaves no empty folder in failed/ (a lost settle, a failed write)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, SqliteJobStore


def _taken(store: SqliteJobStore, inbox: InboxSettings, case: str) -> tuple[Intake, Job]:
    """One model dropped in the case folder ``case``, taken into processing/."""
    root = inbox.path / case
    root.mkdir(parents=True)
    (root / "upper.stl").write_bytes(tetra_stl_bytes(1))
    intake = Intake(store, [inbox])
    (job,) = intake.take(Drop(inbox, root, "r", True, models=(root / "upper.stl",))).taken
    return intake, job


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


class TestASettleThatLoses:
    """Another settle placed the job first: this one's note and the folder made for it go."""

    def test_no_empty_case_folder_stays_in_failed(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = _taken(store, inbox, "C-7")
        elsewhere = inbox.folder("done") / "C-7" / "upper.stl"
        store.update_job(job.id, expect_source=job.source_path, source_path=str(elsewhere))
        with capture_logs() as logs:
            settled = intake.settle(job, ok=False, note="What failed: x\n")
        assert settled.source_path == elsewhere
        assert _tree(inbox.folder("failed")) == []
        assert job.source_path.read_bytes() == tetra_stl_bytes(1)  # the user's file, untouched
        assert [e["event"] for e in logs if e["event"].startswith("file_")] == [
            "file_settled_elsewhere"
        ]

    def test_a_folder_that_was_there_before_stays(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = _taken(store, inbox, "C-8")
        (inbox.folder("failed") / "C-8").mkdir()  # made by someone else: not ours to remove
        elsewhere = inbox.folder("done") / "C-8" / "upper.stl"
        store.update_job(job.id, expect_source=job.source_path, source_path=str(elsewhere))
        intake.settle(job, ok=False, note="What failed: x\n")
        assert _tree(inbox.folder("failed")) == ["C-8"]

    def test_the_winners_move_into_failed_still_finds_its_folder(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = _taken(store, inbox, "C-9")
        elsewhere = inbox.folder("failed") / "C-9" / "upper (2).stl"
        store.update_job(job.id, expect_source=job.source_path, source_path=str(elsewhere))
        intake.settle(job, ok=False, note="What failed: x\n")
        # The winner's own move comes after this settle withdrew its note and folder; the
        # move makes the folder it needs, so nothing of the user's is lost.
        move_file(job.source_path, elsewhere)
        assert _tree(inbox.folder("failed")) == ["C-9", "C-9/upper (2).stl"]
        assert elsewhere.read_bytes() == tetra_stl_bytes(1)


class TestANoteThatCannotBeWritten:
    """A note whose write fails leaves neither a temporary nor its folder; the file stays."""

    def test_the_case_folder_made_for_it_is_removed_again(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = _taken(store, inbox, "C-10")
        with pytest.raises(UnicodeEncodeError):
            # A real failure half-way: the text cannot be encoded once the write has begun.
            intake.settle(job, ok=False, note="What failed: \ud800\n")
        assert _tree(inbox.folder("failed")) == []
        assert job.source_path.read_bytes() == tetra_stl_bytes(1)
        assert store.get_job(job.id).source_path == job.source_path
