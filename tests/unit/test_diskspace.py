"""When a disk counts as full: under 64 KiB free on the disk of a folder, or of its nearest
existing parent (a real small tmpfs, filled)."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.diskspace import disk_is_full
from tests.small_disk import SmallDisk


class TestDiskIsFull:
    """Full below the threshold, not full with room, judged by a folder not made yet too."""

    def test_a_filled_disk_is_full_also_for_a_folder_not_made_yet(
        self, small_disk: SmallDisk
    ) -> None:
        assert not disk_is_full(small_disk.root)
        small_disk.fill()
        assert disk_is_full(small_disk.root)
        assert disk_is_full(small_disk.root / "out" / "2026-12-06")  # its parent's disk
        small_disk.free()
        assert not disk_is_full(small_disk.root / "out")

    def test_a_disk_that_cannot_be_asked_is_not_called_full(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("a file, not a folder")
        # Below a file: statvfs says "not a directory"; the caller's own error stands.
        assert not disk_is_full(tmp_path / "file" / "below")
