"""A named pipe set aside to a failed/ on another disk is never opened.

A drop holding a pipe is refused without being opened (``drop_refusal``) and set aside to
failed/. On one file system that is a rename; to another disk a regular file is copied, but
opening a pipe to copy it would block until some other program writes to it, and the daemon
would stop with it. The pipe crosses as a pipe instead, and the daemon goes on.

POSIX and Linux only (unavoidably): Windows has no mkfifo, and /dev/shm is the tmpfs that
serves as the other disk.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Script, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import OutcomeFolders
from preform_pipeline.store import SqliteJobStore

#: How long a move may take before the test calls it blocked (a loaded machine included).
BLOCKED_AFTER_S = 20.0


@pytest.fixture
def other_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than ``tmp_path``."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        assert os.stat(other).st_dev != os.stat(tmp_path).st_dev, "need two file systems"
        yield Path(other)


def _unblock(pipe: Path) -> None:
    """Open ``pipe`` for writing and close it, so a reader blocked on it sees its end."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader (or no pipe): nothing is blocked on it
        return
    os.close(fd)


def _finished_in_time(work: threading.Thread, *pipes: Path) -> bool:
    """Whether ``work`` ended within the bound; if not, free it so the test ends anyway."""
    work.join(BLOCKED_AFTER_S)
    blocked = work.is_alive()
    while work.is_alive():
        for pipe in pipes:
            _unblock(pipe)
        work.join(0.1)
    return not blocked


class TestMovingAPipeToAnotherDisk:
    """``move_file`` makes the same pipe on the other disk and never reads the old one."""

    def test_the_pipe_arrives_as_a_pipe_with_its_mode(
        self, tmp_path: Path, other_disk: Path
    ) -> None:
        pipe = tmp_path / "p.stl"
        os.mkfifo(pipe, 0o640)
        target = other_disk / "failed" / "p.stl"
        work = threading.Thread(target=move_file, args=(pipe, target), daemon=True)
        work.start()
        assert _finished_in_time(work, pipe), "the move blocked on reading the pipe"
        assert stat.S_ISFIFO(os.lstat(target).st_mode)
        assert stat.S_IMODE(os.lstat(target).st_mode) == 0o640
        assert not os.path.lexists(pipe)

    def test_a_socket_is_not_copied_and_stays_where_it_was(
        self, tmp_path: Path, other_disk: Path
    ) -> None:
        # AF_UNIX paths are short: bind it in a short folder on the test's disk.
        with tempfile.TemporaryDirectory(dir="/tmp") as short, \
                socket.socket(socket.AF_UNIX) as server:
            sock = Path(short) / "s.stl"
            server.bind(str(sock))
            with pytest.raises(OSError, match="not a regular file"):
                move_file(sock, other_disk / "failed" / "s.stl")
            assert stat.S_ISSOCK(os.lstat(sock).st_mode)
            assert not os.path.lexists(other_disk / "failed" / "s.stl")


class TestTheDaemonWithAPipeInItsInbox:
    """A dropped pipe goes to failed/ on the other disk while a good file prints."""

    def test_the_pipe_is_set_aside_and_the_good_file_printed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
        other_disk: Path,
    ) -> None:
        drop(tmp_path, "part.stl", tetra_stl_bytes(1))
        pipe = tmp_path / "inbox" / "p.stl"
        os.mkfifo(pipe)
        failed = other_disk / "failed"
        daemon = make_daemon(tmp_path, store, script, recipe,
                             inbox={"folders": OutcomeFolders(failed=str(failed))})
        with capture_logs() as logs:
            work = threading.Thread(target=run_daemon_once, args=(daemon,), daemon=True)
            work.start()
            assert _finished_in_time(work, pipe), "the daemon blocked on the pipe"
        assert names(tmp_path / "inbox" / "done") == ["part.stl", "part.stl.report.json"]
        assert stat.S_ISFIFO(os.lstat(failed / "p.stl").st_mode)
        assert not os.path.lexists(pipe)
        (rejected,) = [e for e in logs if e["event"] == "drop_rejected"]
        assert "not a regular file" in str(rejected)
        assert "not a regular file" in (failed / "p.stl.error.txt").read_text(encoding="utf-8")
