"""When a disk counts as full: under 64 KiB or under 16 files free on the disk of a folder, or
of its nearest existing parent (a real small tmpfs, filled with bytes or with files)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from preform_pipeline.atomicfile import write_text_atomically
from preform_pipeline.diskspace import FULL_BELOW_BYTES, disk_is_full
from preform_pipeline.errors import (
    FileWriteError,
    PipelineError,
    StoreError,
    refused_by_a_full_disk,
    write_hint,
)
from tests.small_disk import SmallDisk, looks_at_disks, mounted_small_disk


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

    def test_one_look_at_the_disk_tells_its_bytes_and_its_files(
        self, small_disk: SmallDisk, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        looks = looks_at_disks(monkeypatch)

        assert not disk_is_full(small_disk.root)  # room: both figures read

        assert looks == [small_disk.root]

    def test_a_disk_out_of_files_is_full_though_it_has_bytes_to_spare(
        self, tmp_path: Path
    ) -> None:
        with mounted_small_disk(tmp_path / "disk", inodes=64) as disk:
            made = disk.use_up_files()
            assert disk.free_bytes() > 256 * 1024
            assert disk_is_full(disk.root / "inbox" / "failed")
            for path in made[-16:]:  # 16 files free again: room for a settle
                path.unlink()
            assert not disk_is_full(disk.root)

    def test_a_disk_with_no_count_of_files_is_not_full_for_want_of_files(
        self, tmp_path: Path
    ) -> None:
        # It says 0 files and 0 free (btrfs, FAT, SMB; here a tmpfs of unlimited files).
        with mounted_small_disk(tmp_path / "disk", inodes=0) as disk:
            (disk.root / "inbox").mkdir()
            stats = os.statvfs(disk.root)
            assert (stats.f_files, stats.f_favail) == (0, 0)
            assert not disk_is_full(disk.root / "inbox" / "failed")
            disk.fill()
            assert disk_is_full(disk.root / "inbox")  # its bytes still count

    def test_a_disk_with_exactly_64_kib_free_has_room(self, small_disk: SmallDisk) -> None:
        # Session 42's mutation run: nothing told "below 64 KiB" from "64 KiB or less".
        small_disk.fill()
        filled = small_disk.filler.stat().st_size
        os.truncate(small_disk.filler, filled - FULL_BELOW_BYTES)
        assert small_disk.free_bytes() == FULL_BELOW_BYTES
        assert not disk_is_full(small_disk.root)
        with open(small_disk.filler, "ab") as filler:
            filler.write(b"x")  # one more byte takes a page of the 64 KiB
        assert disk_is_full(small_disk.root)

    def test_a_disk_that_cannot_be_asked_is_not_called_full(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("a file, not a folder")
        # Below a file: statvfs says "not a directory"; the caller's own error stands.
        assert not disk_is_full(tmp_path / "file" / "below")


class TestAWriteRefusedForWantOfRoom:
    """Told by the errno a write's error carries, through the errors it was raised from;
    never by its words."""

    def test_a_refused_write_on_a_full_disk_is_one(self, small_disk: SmallDisk) -> None:
        small_disk.fill()
        with pytest.raises(FileWriteError) as caught:
            write_text_atomically(small_disk.root / "report.json", "{}\n" * 4096)
        assert refused_by_a_full_disk(caught.value)
        # Raised on from it by another layer (a store, a settle): still told.
        try:
            raise StoreError("could not record it") from caught.value
        except StoreError as wrapped:
            assert refused_by_a_full_disk(wrapped)

    def test_a_used_up_quota_is_one_and_says_so(self) -> None:
        quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        assert refused_by_a_full_disk(quota)
        assert write_hint(quota).startswith("the disk quota is used up: free some space")

    def test_the_words_alone_are_not(self) -> None:
        assert not refused_by_a_full_disk(PipelineError("No space left on device"))
        assert not refused_by_a_full_disk(
            OSError(errno.EACCES, "Permission denied", "/lab/No space left on device"))
