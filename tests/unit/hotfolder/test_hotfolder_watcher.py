"""Watchers: real watchdog observers report drops; outcome folders and hidden files are not."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog.events import FileSystemEvent

from preform_pipeline.hotfolder import watcher as watcher_module
from preform_pipeline.hotfolder.files import write_text_atomic
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


OUTCOME_FOLDERS = frozenset({"processing", "done", "failed"})
#: The kinds of event the handler reports (watcher.py's ``_REPORTED``), in watchdog's words.
REPORTED_KINDS = frozenset({"created", "modified", "moved", "closed"})


class Events:
    """The kinds of every event watchdog hands the watcher's handlers (the seam past the
    observer)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._kinds: list[str] = []
        self._lock = threading.Lock()
        dispatch = watcher_module._Handler.dispatch

        def counted(handler: watcher_module._Handler, event: FileSystemEvent) -> None:
            with self._lock:
                self._kinds.append(event.event_type)
            dispatch(handler, event)

        monkeypatch.setattr(watcher_module._Handler, "dispatch", counted)

    @property
    def kinds(self) -> set[str]:
        with self._lock:
            return set(self._kinds)


def _native_watcher(inbox: Path, seen: Seen) -> InboxWatcher:
    for name in OUTCOME_FOLDERS:
        (inbox / name).mkdir(parents=True, exist_ok=True)
    watcher = InboxWatcher([WatchRoot(inbox, "native", reserved=OUTCOME_FOLDERS)], seen)
    watcher.start()
    return watcher


class TestNativeWatchAsksForWhatItReports:
    """A native watch asks watchdog only for the kinds of event the handler reports: the
    daemon's reads and its own work in the outcome folders cost no other event."""

    def test_reading_a_dropped_file_is_no_event(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The daemon reads each file it judges several times (its completeness, its hash)."""
        events = Events(monkeypatch)
        inbox, seen = tmp_path / "inbox", Seen()
        watcher = _native_watcher(inbox, seen)
        try:
            _reported(inbox, seen)
            for _ in range(5):
                (inbox / "part.stl").read_bytes()
            (inbox / "other.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(inbox / "other.stl"), TIMEOUT_S, what="other.stl")
        finally:
            watcher.stop()
        assert events.kinds <= REPORTED_KINDS

    def test_the_daemons_takes_and_notes_bring_only_the_reported_kinds_and_removed_folders(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Each drop moved into ``processing/<key>/``, then into ``done/`` beside a report
        written atomically, its key's folder removed: as the daemon takes and settles it.
        (A folder's removal is asked for: watchdog needs it, the test below.)"""
        events = Events(monkeypatch)
        inbox, seen = tmp_path / "inbox", Seen()
        watcher = _native_watcher(inbox, seen)
        try:
            drops = [inbox / f"p{n}.stl" for n in range(20)]
            for drop in drops:
                drop.write_bytes(tetra_stl_bytes())
            wait_for(lambda: all(seen.has(d) for d in drops), TIMEOUT_S, what="the drops")
            for n, drop in enumerate(drops):
                taken = inbox / "processing" / f"job-{n}" / drop.name
                taken.parent.mkdir()
                drop.rename(taken)
                taken.rename(inbox / "done" / drop.name)
                taken.parent.rmdir()
                write_text_atomic(inbox / "done" / f"{drop.name}.report.json", "{}\n")
            _reported(inbox, seen)  # (watchdog's events come in order: the takes' first)
        finally:
            watcher.stop()
        assert events.kinds <= REPORTED_KINDS | {"deleted"}

    def test_a_temporary_file_written_into_a_case_folder_still_reports_the_case_folder(
        self, tmp_path: Path, mode: str,
    ) -> None:
        """The case folder's "modified" (its temporary file is no drop) is reported as it
        was before the watch asked for reported kinds only."""
        inbox, seen = tmp_path / "inbox", Seen()
        (inbox / "C-1").mkdir(parents=True)
        watcher = InboxWatcher([WatchRoot(inbox, mode, 0.1)], seen)  # type: ignore[arg-type]
        watcher.start()
        try:
            (inbox / "C-1" / "lower.stl.part").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(inbox / "C-1"), TIMEOUT_S,
                     what="the event for the case folder")
        finally:
            watcher.stop()
        assert not seen.has(inbox / "C-1" / "lower.stl.part")


    def test_a_case_folder_made_again_while_the_removed_one_is_held_open_is_watched(
        self, tmp_path: Path, mode: str,
    ) -> None:
        """Removed while something holds it open (a shell in it, a share's server), the kernel
        drops the old folder's watch only once it is let go; watchdog (7.x) forgets the folder
        on its parent's removal event, so without that event asked for, the folder made again
        meanwhile under the same name was never watched: a file dropped into it, no event."""
        inbox, seen = tmp_path / "inbox", Seen()
        case = inbox / "C-1"
        case.mkdir(parents=True)
        watcher = InboxWatcher([WatchRoot(inbox, mode, 0.1)], seen)  # type: ignore[arg-type]
        watcher.start()
        try:
            held = os.open(case, os.O_RDONLY)
            try:
                case.rmdir()
                case.mkdir()
                wait_for(lambda: seen.has(case), TIMEOUT_S, what="the case folder made again")
            finally:
                os.close(held)
            (case / "upper.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(case / "upper.stl"), TIMEOUT_S, what="upper.stl")
        finally:
            watcher.stop()


def _watched_inodes() -> set[int]:
    """The inodes this process's inotify instances watch (Linux lists each watch as an
    ``inotify wd:`` line of its descriptor's fdinfo, with the inode in hex)."""
    inodes: set[int] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            lines = Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
        except OSError:  # the listing's own descriptor, or one closed meanwhile
            continue
        for line in lines:
            if line.startswith("inotify wd:"):
                field = next(f for f in line.split() if f.startswith("ino:"))
                inodes.add(int(field.removeprefix("ino:"), 16))
    return inodes


def _inode(path: Path) -> int:
    return path.stat().st_ino


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="needs Linux's /proc: inotify's watches are listed in its fdinfo")
class TestNativeWatchCoversWhatIsActedOn:
    """A lab keeps months of finished case folders in ``done/``: a recursive watch of the
    inbox held an inotify watch for each (``fs.inotify.max_user_watches`` is per user). The
    inbox is watched alone, and each folder in it with what it holds, while it is there."""

    def test_the_outcome_folders_and_the_cases_in_them_hold_no_watch(
        self, tmp_path: Path,
    ) -> None:
        inbox, seen = tmp_path / "inbox", Seen()
        finished = [inbox / area / f"C-{n}" for area in ("done", "failed") for n in range(150)]
        for folder in finished:
            (folder / "scans").mkdir(parents=True)
        case, route = inbox / "C-1", inbox / "crowns"
        (case / "scans").mkdir(parents=True)
        (route / "C-2").mkdir(parents=True)
        watcher = _native_watcher(inbox, seen)
        try:
            watched = _watched_inodes()
        finally:
            watcher.stop()
        acted_on = {inbox, case, case / "scans", route, route / "C-2"}
        assert {_inode(p) for p in acted_on} <= watched
        outcomes = [inbox / name for name in OUTCOME_FOLDERS]
        not_acted_on = {_inode(p) for p in (*outcomes, *finished)}
        not_acted_on |= {_inode(p / "scans") for p in finished}
        assert not_acted_on & watched == set()

    def test_a_case_folder_is_watched_while_it_is_in_the_inbox(self, tmp_path: Path) -> None:
        """Made after the start, it is watched (a file dropped in it is reported); moved to
        ``done/``, it holds no watch; made again under its name, the new one is watched. (A
        file written into a folder before its watch is made is no event: the daemon judges
        a folder by all it holds, and the folder itself is reported.)"""
        inbox, seen = tmp_path / "inbox", Seen()
        watcher = _native_watcher(inbox, seen)
        try:
            case = inbox / "C-1"
            case.mkdir()
            (case / "upper.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(case / "upper.stl") or seen.has(case), TIMEOUT_S,
                     what="the new case folder")
            wait_for(lambda: _inode(case) in _watched_inodes(), TIMEOUT_S,
                     what="the case folder's watch")
            moved = inbox / "done" / "C-1"
            case.rename(moved)
            wait_for(lambda: _inode(moved) not in _watched_inodes(), TIMEOUT_S,
                     what="the watch of the case folder moved to done/ to end")
            case.mkdir()
            wait_for(lambda: _inode(case) in _watched_inodes(), TIMEOUT_S,
                     what="the watch of the case folder made again")
            (case / "lower.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(case / "lower.stl"), TIMEOUT_S,
                     what="the event for a file in the case folder made again")
            (moved / "late.stl").write_bytes(tetra_stl_bytes())
            _reported(inbox, seen)  # (events come in order: done/'s file's first, if any)
        finally:
            watcher.stop()
        assert not seen.has(moved / "late.stl")


    def test_a_case_folder_renamed_in_the_inbox_is_watched_under_its_new_name(
        self, tmp_path: Path,
    ) -> None:
        inbox, seen = tmp_path / "inbox", Seen()
        (inbox / "C-1").mkdir(parents=True)
        watcher = _native_watcher(inbox, seen)
        try:
            renamed = inbox / "C-1-upper"
            (inbox / "C-1").rename(renamed)
            wait_for(lambda: seen.has(renamed), TIMEOUT_S, what="the renamed case folder")
            (renamed / "upper.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(renamed / "upper.stl"), TIMEOUT_S,
                     what="the event for a file in the renamed case folder")
        finally:
            watcher.stop()

    def test_a_route_folder_moved_in_with_its_cases_has_them_reported(
        self, tmp_path: Path,
    ) -> None:
        """Its cases were in it before its watch was made: no event of theirs, and the route
        folder itself is no drop (the daemon skips it). What is directly in a folder that came
        is listed once it is watched, as watchdog's recursive watch of the inbox reported it
        (review rv49-loose: the branch reported the route folder only, its cases waited for
        the rescan)."""
        inbox, seen = tmp_path / "inbox", Seen()
        staged = tmp_path / "staging" / "crowns"
        (staged / "C-2").mkdir(parents=True)
        (staged / "C-2" / "upper.stl").write_bytes(tetra_stl_bytes())
        (staged / "a.stl").write_bytes(tetra_stl_bytes())
        watcher = _native_watcher(inbox, seen)
        try:
            route = inbox / "crowns"
            staged.rename(route)
            wait_for(lambda: seen.has(route / "C-2") and seen.has(route / "a.stl"), TIMEOUT_S,
                     what="the route folder's case folder and file")
            (route / "C-2" / "lower.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(route / "C-2" / "lower.stl"), TIMEOUT_S,
                     what="the event for a file in the route folder's case folder")
        finally:
            watcher.stop()

    def test_a_folder_that_could_not_be_watched_is_watched_at_the_next_refresh(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """No inotify watch left when it came (the kernel's ENOSPC, here refused by the
        observer for that folder): said, and the rescan's ``refresh`` watches it."""
        refused: set[str] = set()

        class _Short(watcher_module.Observer):  # type: ignore[misc,valid-type]
            def schedule(self, handler: object, path: str, **kwargs: object) -> object:
                if path in refused:
                    raise OSError(28, "No space left on device (no inotify watch left)")
                return super().schedule(handler, path, **kwargs)

        monkeypatch.setattr(watcher_module, "Observer", _Short)
        inbox, seen = tmp_path / "inbox", Seen()
        case = inbox / "C-1"
        refused.add(str(case))
        watcher = _native_watcher(inbox, seen)
        try:
            with capture_logs() as logs:
                case.mkdir()
                wait_for(lambda: seen.has(case), TIMEOUT_S, what="the case folder")
            assert [(e["event"], e["folder"]) for e in logs
                    if e["event"] == "folder_not_watched"] == [("folder_not_watched", str(case))]
            assert _inode(case) not in _watched_inodes()
            refused.clear()
            watcher.refresh()
            assert _inode(case) in _watched_inodes()
            (case / "upper.stl").write_bytes(tetra_stl_bytes())
            wait_for(lambda: seen.has(case / "upper.stl"), TIMEOUT_S,
                     what="the event for a file in the case folder watched at the refresh")
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
