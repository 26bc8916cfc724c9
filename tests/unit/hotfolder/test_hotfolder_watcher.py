"""Watchers: real watchdog observers report drops; outcome folders and hidden files are not."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import tetra_stl_bytes, wait_for
from preform_pipeline.hotfolder.watcher import InboxWatcher, WatchRoot, scan

TIMEOUT_S = 10.0


class Seen:
    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.lock = threading.Lock()

    def __call__(self, path: Path) -> None:
        with self.lock:
            self.paths.add(path)

    def has(self, path: Path) -> bool:
        with self.lock:
            return path in self.paths


@pytest.fixture(params=["native", "polling"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _reported(inbox: Path, seen: Seen) -> None:
    """A file dropped into ``inbox`` now is reported to ``seen`` (within TIMEOUT_S)."""
    part = inbox / "part.stl"
    part.write_bytes(tetra_stl_bytes())
    wait_for(lambda: seen.has(part), TIMEOUT_S, what="the event for part.stl")


class TestObservers:
    """Both modes report files written into the inbox, and skip outcome folders."""

    def test_a_new_file_is_reported(self, tmp_path: Path, mode: str) -> None:
        inbox = tmp_path / "inbox"
        seen = Seen()
        root = WatchRoot(inbox, mode, 0.1, frozenset({"done"}))  # type: ignore[arg-type]
        watcher = InboxWatcher([root], seen)
        watcher.start()
        try:
            assert inbox.is_dir()
            (inbox / "done").mkdir()
            (inbox / "done" / "old.stl").write_bytes(tetra_stl_bytes())
            (inbox / ".hidden.stl").write_bytes(tetra_stl_bytes())
            part = inbox / "part.stl"
            part.write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(part), TIMEOUT_S, what="the event for part.stl")
            assert not seen.has(inbox / "done" / "old.stl")
            assert not seen.has(inbox / ".hidden.stl")
        finally:
            watcher.stop()
        assert not watcher.running

    def test_a_folder_moved_in_is_reported(self, tmp_path: Path, mode: str) -> None:
        inbox = tmp_path / "inbox"
        outside = tmp_path / "C-7"
        outside.mkdir()
        (outside / "upper.stl").write_bytes(tetra_stl_bytes())
        seen = Seen()
        watcher = InboxWatcher([WatchRoot(inbox, mode, 0.1)], seen)  # type: ignore[arg-type]
        watcher.start()
        try:
            outside.rename(inbox / "C-7")
            wait_for(lambda: seen.has(inbox / "C-7") or seen.has(inbox / "C-7" / "upper.stl"),
                     TIMEOUT_S, what="the event for the moved folder")
        finally:
            watcher.stop()


class TestWatchedAnew:
    """Another folder at the inbox's path (a share mounted again, a folder made again): the
    watch of the one that left sees nothing of it until it is watched anew (``rewatch``),
    which leaves no observer of the old one running."""

    def test_a_file_in_the_folder_there_now_is_reported(self, tmp_path: Path,
                                                        mode: str) -> None:
        inbox = tmp_path / "inbox"
        seen = Seen()
        watcher = InboxWatcher([WatchRoot(inbox, mode, 0.1)], seen)  # type: ignore[arg-type]
        watcher.start()
        try:
            before = list(watcher._observers)
            inbox.rename(tmp_path / "old inbox")
            inbox.mkdir()
            watcher.rewatch(inbox)
            _reported(inbox, seen)
            assert len(watcher._observers) == 1
            gone = [o for o in before if o not in watcher._observers]
            assert all(not o.is_alive() for o in gone)  # (polling: its own observer ended)
        finally:
            watcher.stop()
        assert not watcher.running

    def test_a_folder_gone_again_is_said_and_watched_when_made_again(
        self, tmp_path: Path, mode: str,
    ) -> None:
        """Gone between the daemon's look that found it back and the watch: said, not
        raised (it stopped the daemon), and watched once it is back again."""
        inbox = tmp_path / "inbox"
        seen = Seen()
        watcher = InboxWatcher([WatchRoot(inbox, mode, 0.1)], seen)  # type: ignore[arg-type]
        watcher.start()
        try:
            inbox.rename(tmp_path / "old inbox")
            with capture_logs() as logs:
                watcher.rewatch(inbox)
            inbox.mkdir()
            watcher.rewatch(inbox)
            _reported(inbox, seen)
            assert len(watcher._observers) == 1
        finally:
            watcher.stop()
        (said,) = [e for e in logs if e["event"] == "inbox_not_watched"]
        assert (said["inbox"], said["log_level"]) == (str(inbox), "warning")

    def test_nothing_is_watched_before_the_start(self, tmp_path: Path) -> None:
        watcher = InboxWatcher([WatchRoot(tmp_path / "inbox")], Seen())
        watcher.rewatch(tmp_path / "inbox")
        assert not watcher.running and not (tmp_path / "inbox").exists()


class TestScan:
    """A scan lists every drop, parents first, without outcome folders or hidden entries."""

    def test_scan_lists_what_is_there(self, tmp_path: Path) -> None:
        (tmp_path / "done").mkdir()
        (tmp_path / "done" / "x.stl").write_bytes(b"")
        (tmp_path / "C-1").mkdir()
        (tmp_path / "C-1" / "upper.stl").write_bytes(b"")
        (tmp_path / "C-1" / ".~lock").write_bytes(b"")
        (tmp_path / "a.stl").write_bytes(b"")
        found = list(scan(WatchRoot(tmp_path, reserved=frozenset({"done"}))))
        assert found == [tmp_path / "C-1", tmp_path / "C-1" / "upper.stl", tmp_path / "a.stl"]

    def test_a_missing_inbox_scans_empty(self, tmp_path: Path) -> None:
        assert list(scan(WatchRoot(tmp_path / "absent"))) == []
