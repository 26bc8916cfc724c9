"""A file held by its process for its life: held while that process runs, free once it is
killed (kill -9: the kernel drops the lock), unknown when there is no file (real child
processes, real files)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from preform_pipeline.heldfile import held, hold, write_held
from tests.small_disk import SmallDisk

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

#: A child that holds its file through the module under test, says so, and waits.
HOLD = ("import os, sys; from preform_pipeline.heldfile import hold; "
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "print('HELD' if hold(fd) else 'NOT', flush=True); sys.stdin.read()")


class TestHeld:
    """Whether some process holds the file: True, False, or None when that cannot be told."""

    @pytest.mark.timeout(30)
    def test_held_while_its_process_runs_and_free_once_it_is_killed(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "record"
        child = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "HELD"
            assert held(path) is True
            assert held(path) is True  # a probe leaves nothing behind
            fd = os.open(path, os.O_RDONLY)
            try:
                assert not hold(fd)  # held by another: refused, without waiting
            finally:
                os.close(fd)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
        assert held(path) is False

    def test_a_file_nobody_holds_and_no_file(self, tmp_path: Path) -> None:
        path = tmp_path / "record"
        path.write_text("{}", encoding="utf-8")
        assert held(path) is False
        assert held(tmp_path / "missing") is None

    def test_this_process_s_own_hold_is_seen(self, tmp_path: Path) -> None:
        # A lock belongs to the open file: a probe through another descriptor sees it.
        path = tmp_path / "record"
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            assert hold(fd) and held(path) is True
        finally:
            os.close(fd)
        assert held(path) is False

    def test_a_link_in_the_record_s_place_is_not_followed(self, tmp_path: Path) -> None:
        # Not the record its writer holds: whatever the link points at says nothing of it.
        target = tmp_path / "someone-else-s"
        fd = os.open(target, os.O_RDWR | os.O_CREAT)
        try:
            assert hold(fd)
            (tmp_path / "record").symlink_to(target)
            assert held(tmp_path / "record") is None
        finally:
            os.close(fd)


class TestAFullDisk:
    """A record its disk cannot take is not left behind, empty, under its own name."""

    def test_the_record_is_removed_and_the_error_names_it(self, small_disk: SmallDisk) -> None:
        path = small_disk.root / "users" / "me.json"
        path.parent.mkdir()
        small_disk.fill()

        with pytest.raises(OSError) as caught:
            write_held(path, lambda is_held: "x" * 10_000)

        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(path)
        assert list(path.parent.iterdir()) == []
