"""Session 23, seed 41: a case folder dropped as a link (``hotfolders.follow_symlinks: true``)
is taken through the link, but the link is not a folder: no job records it as the folder its
files came from, so neither the link nor a folder the user makes later under its name (ext4
often gives that folder the link's freed inode number) is taken for a case a crash left
empty and removed."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.hotfolder.intake import Drop, Intake, place_of
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import SqliteJobStore


def _linked_case(tmp_path: Path, inbox: Path) -> Path:
    """``inbox/C-9``: a link to a case folder kept elsewhere, holding one model."""
    scans = tmp_path / "scans" / "C-9"
    scans.mkdir(parents=True)
    (scans / "upper.stl").write_bytes(tetra_stl_bytes(9))
    link = inbox / "C-9"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(scans, target_is_directory=True)
    return link


class TestACaseTakenThroughALink:
    """A linked case is taken whole, and its link is never a case folder this hot folder
    emptied."""

    def test_its_jobs_record_no_case_folder_and_the_link_is_not_one(
        self, tmp_path: Path, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        link = _linked_case(tmp_path, inbox.path)
        intake = Intake(store, [inbox])
        result = intake.take(Drop(inbox, link, "r", True, models=(link / "upper.stl",)))
        (job,) = result.taken
        assert result.case_id == "C-9"
        assert job.source_path.read_bytes() == tetra_stl_bytes(9)
        assert link.is_symlink()  # a link is not removed as an emptied folder is
        place = place_of(store.get_job(job.id))
        assert place is not None and place.rel == "C-9/upper.stl"
        assert place.case is None
        assert not intake.emptied_case(link)
