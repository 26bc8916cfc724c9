"""Which mount a path is on (hotfolder/mounts.py): real bind mounts of a folder of the same
disk (``tests/share_mount.py``: root on Linux, failed so in CI), which the device number
alone does not tell apart."""

from __future__ import annotations

import os
from pathlib import Path

from preform_pipeline.hotfolder.mounts import is_mount_point, on_two_mounts
from tests.share_mount import mounted_share


class TestABindMountOfTheSameDisk:
    """Seen in the kernel's mount table, where :func:`os.path.ismount` sees nothing."""

    def test_is_a_mount_point_while_mounted(self, tmp_path: Path) -> None:
        with mounted_share(tmp_path / "volume", tmp_path / "in box") as share:
            assert not os.path.ismount(share.at)  # (one device number on both sides)
            assert is_mount_point(share.at)  # (its name's space escaped in the table)
            share.unmount()
            assert not is_mount_point(share.at)

    def test_a_file_across_it_is_on_another_mount(self, tmp_path: Path) -> None:
        outside = tmp_path / "processing"
        outside.mkdir()
        (outside / "b.stl").write_bytes(b"b")
        with mounted_share(tmp_path / "volume", tmp_path / "inbox") as share:
            (share.at / "a.stl").write_bytes(b"a")
            (share.at / "c.stl").write_bytes(b"c")
            assert on_two_mounts(share.at / "a.stl", outside / "b.stl")
            assert not on_two_mounts(share.at / "a.stl", share.at / "c.stl")
            assert not on_two_mounts(share.content / "a.stl", outside / "b.stl")

    def test_a_file_that_cannot_be_read_is_on_no_other(self, tmp_path: Path) -> None:
        assert not on_two_mounts(tmp_path / "gone.stl", Path("/dev/shm"))
