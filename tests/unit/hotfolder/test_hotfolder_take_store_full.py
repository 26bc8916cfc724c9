"""A file dropped while the job store's disk is full (a real small tmpfs): its take is tried
again on every look and said once, not once a second, and the file is printed once the
disk has room (found by ``tests/faults/full_disk_loop.py``, seed 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Script, drop, levels_of, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
)
from preform_pipeline.store import SqliteJobStore
from tests.small_disk import SmallDisk, mounted_small_disk

#: Looks at one drop while the disk stays full: the first said, the others not.
LOOKS = 3
#: The store's disk: room for its WAL, which grows to a few hundred KiB over two prints
#: before SQLite's checkpoint (the fixture's 512 KiB would be filled by the WAL itself).
DISK_KIB = 2048


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """As the suite's fixture, with room for the WAL of two prints."""
    with mounted_small_disk(tmp_path / "disk", DISK_KIB) as disk:
        yield disk


class TestADropWhileTheStoreDiskIsFull:
    """Its take fails with an error once, then at debug level until the disk has room; then
    it is taken and printed once, and a later outage is said again (for a new file of the
    same name too)."""

    def test_said_once_and_printed_once_freed(
        self, tmp_path: Path, small_disk: SmallDisk, script: Script, recipe: Path
    ) -> None:
        with SqliteJobStore(small_disk.root / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, recipe)
            (tmp_path / "inbox").mkdir()
            with running_daemon(daemon):
                small_disk.fill()
                drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
                wait_for(lambda: len(levels_of(logs, "take_failed")) >= LOOKS, 20,
                         what=f"{LOOKS} looks at the drop")
                small_disk.free()
                wait_for(lambda: "m1.stl" in names(tmp_path / "inbox" / "done"), 20,
                         what="the drop printed and in done/")
                tries = len(levels_of(logs, "take_failed"))
                small_disk.fill()
                drop(tmp_path, "m1.stl", tetra_stl_bytes(2))  # a new file, the same name
                wait_for(lambda: len(levels_of(logs, "take_failed")) > tries, 20,
                         what="the second drop looked at")
                small_disk.free()
                wait_for(lambda: len(fleet_jobs(script.fleet_dir)) == 2, 20,
                         what="the second drop printed")
                wait_for(lambda: len(names(tmp_path / "inbox" / "done")) == 4, 20,
                         what="the second drop in done/ with its report")

        said = levels_of(logs, "take_failed")
        assert said[:LOOKS] == [("take_failed", "error")] + [
            ("take_failed_again", "debug")] * (LOOKS - 1)
        assert said[tries:tries + 1] == [("take_failed", "error")]  # a new outage: said
        (first,) = [e for e in logs if e["event"] == "take_failed"][:1]
        assert first["root"] == str(tmp_path / "inbox" / "m1.stl")
        assert "the disk holding the job store is full" in first["error"]
        assert names(tmp_path / "inbox" / "done") == [
            "m1 (2).stl", "m1 (2).stl.report.json", "m1.stl", "m1.stl.report.json"]
        assert len(fleet_jobs(script.fleet_dir)) == 2  # each printed once
