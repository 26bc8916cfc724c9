"""Watching inboxes: watchdog observers turn file system activity into candidate paths.

Two modes per inbox:

* ``native``: the operating system's notifications (inotify, FSEvents, ReadDirectoryChangesW)
  through watchdog's ``Observer``; immediate and cheap on local disks. The inbox itself is
  watched alone (not what is below it), and each folder directly in it with all it holds (a
  case folder, a route's folder), from when it is made or moved in until it is moved out or
  removed (what it holds when it comes is listed then, as watchdog's recursive watch did):
  the outcome folders are not watched at all. ``done/`` keeps every finished case
  folder for months, and a recursive watch of the inbox held one inotify watch per folder in
  it (``fs.inotify.max_user_watches`` is per user: past it, new folders went unwatched) for
  folders the daemon never acts on. The watch asks only for
  the kinds of event the handler reports, and folders' removals (watchdog's ``event_filter``,
  which it also turns into the inotify mask): the daemon opens and reads each file it judges
  several times, and those opens and closes would otherwise be read from the kernel and
  dispatched to no use.
* ``polling``: watchdog's polling observer lists the folder every ``poll_interval_s``. Network
  shares (SMB, NFS) often deliver no events to the machine that watches them, so polling is
  the only reliable way there. The outcome folders inside the inbox are left out of the
  listing, since ``done/`` grows for months.

The watcher only *reports* paths (files and folders that were created, written, or moved in);
whether a path is a complete drop is decided by the daemon (:mod:`.stability`). Events are
coalesced there, so a file written in many chunks costs one check per look, not per chunk.
:func:`scan` lists an inbox completely: on start (files that arrived while the daemon was
down) and every ``rescan_interval_s`` as a safety net for lost events.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import watchdog.events
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    DirDeletedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserverVFS

from preform_pipeline.hotfolder.stability import is_ignored_name
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.hotfolder import InboxSettings, WatchMode

__all__ = [
    "DEFAULT_OBSERVER_STOP_TIMEOUT_S",
    "InboxWatcher",
    "WatchRoot",
    "scan",
]

log = get_logger(__name__)

#: Observers stop within a poll interval; this bounds the wait on shutdown.
DEFAULT_OBSERVER_STOP_TIMEOUT_S: Final = 5.0

_REPORTED: Final = frozenset(
    {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}
)

#: The kinds of a folder's event in a native inbox after which its folders' watches are looked
#: at again (a folder's "modified" comes with every file written in it: not these).
_FOLDER_COMES_OR_GOES: Final = frozenset({EVENT_TYPE_CREATED, EVENT_TYPE_MOVED, EVENT_TYPE_DELETED})

#: watchdog's event classes of the kinds :class:`_Handler` reports, files' and folders' (a
#: case folder's "modified" included: the handler reports it), and a folder's removal, for a
#: native watch's ``event_filter`` (watchdog 4.0 on). Taken from watchdog's own list so that a
#: kind added to ``_REPORTED`` is asked for too. ``DirDeletedEvent`` is not reported but
#: needed by watchdog itself (7.x): its recursive watch forgets a removed folder on the
#: parent's ``IN_DELETE``; without it, only once the kernel drops the old folder's watch,
#: which waits while anything holds that folder open, so a folder made again under its name
#: meanwhile was never watched (a file dropped into it: no event, found by the rescans only).
_ASKED_EVENTS: Final = sorted(
    (cls for cls in vars(watchdog.events).values()
     if isinstance(cls, type) and issubclass(cls, FileSystemEvent)
     and (cls.event_type in _REPORTED or cls is DirDeletedEvent)),
    key=lambda cls: cls.__name__,
)


@dataclass(frozen=True)
class WatchRoot:
    """One watched folder: how to watch it and which top-level names are not drops."""

    path: Path
    mode: WatchMode = "native"
    poll_interval_s: float = 2.0
    reserved: frozenset[str] = frozenset()

    @classmethod
    def for_inbox(cls, inbox: InboxSettings) -> WatchRoot:
        return cls(inbox.path, inbox.mode, inbox.poll_interval_s, inbox.reserved_names)

    def wanted(self, path: Path) -> bool:
        """False for paths outside the root, in a reserved folder, or hidden/temporary."""
        try:
            rel = path.relative_to(self.path)
        except ValueError:
            return False
        if not rel.parts:
            return False
        if rel.parts[0] in self.reserved:
            return False
        return not any(is_ignored_name(part) for part in rel.parts)

    def watched_folder(self, path: Path) -> bool:
        """Whether ``path`` names a folder directly in the root that a native watch covers
        (what is dropped there is acted on): not an outcome folder, not hidden/temporary."""
        return path.parent == self.path and self.wanted(path)


def _folder_inode(path: Path) -> int | None:
    """The inode of the folder at ``path`` now (links not followed), or None if none is."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_ino if stat.S_ISDIR(info.st_mode) else None


def scan(root: WatchRoot) -> Iterator[Path]:
    """Every wanted file below the root (outcome folders and hidden entries skipped), and
    every wanted folder, parents before children."""

    def walk(folder: Path, top: bool) -> Iterator[Path]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            log.warning("inbox_unreadable", folder=str(folder), error=str(exc))
            return
        for entry in entries:
            if is_ignored_name(entry.name) or (top and entry.name in root.reserved):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            yield path
            if is_dir:
                yield from walk(path, False)

    if root.path.is_dir():
        yield from walk(root.path, True)


class _Handler(FileSystemEventHandler):
    def __init__(self, root: WatchRoot, on_path: Callable[[Path], None],
                 on_folder: Callable[[Path], None] | None = None) -> None:
        self.root = root
        self.on_path = on_path
        #: A native inbox's own watch: told of each folder made, moved or removed in it.
        self.on_folder = on_folder

    def on_any_event(self, event: FileSystemEvent) -> None:
        if (self.on_folder is not None and event.is_directory
                and event.event_type in _FOLDER_COMES_OR_GOES):
            for raw in (event.src_path, event.dest_path):
                if raw:
                    self.on_folder(Path(os.fsdecode(raw)))
        if event.event_type not in _REPORTED:
            return
        raw = event.dest_path if event.event_type == EVENT_TYPE_MOVED else event.src_path
        if not raw:
            return
        path = Path(os.fsdecode(raw))
        if self.root.wanted(path):
            self.on_path(path)


def _listing_without(root: WatchRoot) -> Callable[[str | None], Iterator[os.DirEntry[str]]]:
    top = os.path.normcase(os.path.abspath(root.path))

    def listdir(folder: str | None) -> Iterator[os.DirEntry[str]]:
        at_top = folder is not None and os.path.normcase(os.path.abspath(folder)) == top
        with os.scandir(folder) as entries:
            for entry in entries:
                if at_top and entry.name in root.reserved:
                    continue
                yield entry

    return listdir


class InboxWatcher:
    """Observers for a set of roots; ``on_path`` is called from observer threads.

    ``start()`` creates missing inbox folders (a share mounted late is reported and retried
    by the daemon's rescans instead of failing the start).
    """

    def __init__(self, roots: Sequence[WatchRoot], on_path: Callable[[Path], None]) -> None:
        self.roots = tuple(roots)
        self.on_path = on_path
        self._observers: list[BaseObserver] = []
        self._native: BaseObserver | None = None
        #: Each inbox's observer and watch, to watch it anew (:meth:`rewatch`).
        self._watches: dict[Path, tuple[BaseObserver, ObservedWatch]] = {}
        #: A native inbox's folders watched, each with its watch and the inode it was made for
        #: (a folder removed and made again under its name is another folder).
        self._folders: dict[Path, dict[Path, tuple[ObservedWatch, int]]] = {}
        #: Between :meth:`start` and :meth:`stop` (not told by the observers: a polling
        #: inbox that could not be watched anew has none left, and is watched at its next).
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for root in self.roots:
                try:
                    root.path.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    log.error("inbox_unavailable", inbox=str(root.path), error=str(exc))
                    continue
                self._schedule(root)
            for observer in self._observers:
                observer.daemon = True
                observer.start()
            # After the observer's start: a folder that cannot be watched fails here, said,
            # rather than in watchdog's start, where it would be lost.
            for root in self.roots:
                self._look_at_folders(root)

    def refresh(self) -> None:
        """Watch the folders in each native inbox now, and only them: one whose event was lost
        (or that could not be watched when it came) is watched from here (the daemon's rescans
        call this)."""
        with self._lock:
            if self._started:
                for root in self.roots:
                    self._look_at_folders(root)

    def rewatch(self, path: Path) -> None:
        """Watch inbox ``path`` anew: the folder there now is not the one watched before (a
        share mounted again: the native watch went with the share's unmount, or sees the
        mount point's folder under it), or it was not there at the start. Nothing before
        :meth:`start` (``watch --once`` watches nothing) or after :meth:`stop`."""
        ended: list[BaseObserver] = []
        with self._lock:
            if not self._started:
                return
            for root in self.roots:
                if root.path != path:
                    continue
                old = self._watches.pop(root.path, None)
                if old is not None:
                    old[0].unschedule(old[1])
                    for watch, _ in self._folders.pop(root.path, {}).values():
                        old[0].unschedule(watch)
                    if old[0] is not self._native:  # a polling inbox's own observer
                        self._observers.remove(old[0])
                        ended.append(old[0])
                started = set(self._observers)
                try:
                    self._schedule(root)
                    for observer in self._observers:
                        if observer not in started:
                            observer.daemon = True
                            observer.start()
                except OSError as exc:
                    # Gone again since it was found back (a share that flaps, a folder made
                    # and deleted), or no watch left (inotify's limit): raised, it stopped
                    # the daemon. The rescans still list it; once away and back again, it is
                    # watched anew. (An observer that failed to start has no thread.)
                    self._observers = [o for o in self._observers if o in started]
                    self._watches.pop(root.path, None)
                    self._folders.pop(root.path, None)
                    log.warning("inbox_not_watched", inbox=str(root.path), error=str(exc),
                                reason="its folder could not be watched anew: its files are "
                                "found by the rescans only")
                    continue
                self._look_at_folders(root)
                log.info("inbox_watched_again", inbox=str(root.path), mode=root.mode)
        for observer in ended:
            observer.stop()
            observer.join(DEFAULT_OBSERVER_STOP_TIMEOUT_S)

    def _schedule(self, root: WatchRoot) -> None:
        """Watch ``root`` (the lock held): the one native observer, or a polling one of its
        own; an observer made here is started by the caller. A native inbox is watched
        alone: its folders are watched by :meth:`_look_at_folders`."""
        if root.mode == "polling":
            observer: BaseObserver = PollingObserverVFS(
                os.stat, _listing_without(root), polling_interval=root.poll_interval_s
            )
            self._observers.append(observer)
            watch = observer.schedule(  # a listing's differences: nothing asked of a kernel
                _Handler(root, self.on_path), str(root.path), recursive=True)
        else:
            if self._native is None:
                self._native = Observer()
                self._observers.append(self._native)
            observer = self._native
            handler = _Handler(root, self.on_path,
                               on_folder=lambda path: self._folder_event(root, path))
            watch = observer.schedule(handler, str(root.path), recursive=False,
                                      event_filter=_ASKED_EVENTS)
            self._folders[root.path] = {}
        self._watches[root.path] = (observer, watch)
        log.info("inbox_watched", inbox=str(root.path), mode=root.mode,
                 poll_interval_s=root.poll_interval_s if root.mode == "polling" else None)

    def _folder_event(self, root: WatchRoot, path: Path) -> None:
        """A folder was made, moved or removed at ``path`` (the native observer's thread)."""
        if path.parent != root.path:
            return
        with self._lock:
            if not (self._started and self._watch_folder(root, path)):
                return
        # Watched from now, so what it holds is listed after: what was put in it before its
        # watch was made (a route's folder moved in with its cases, a folder made and filled
        # at once) is reported as watchdog's recursive watch reported it, each entry directly
        # in it (the daemon judges a case folder by all it holds; a route's folder itself is
        # no drop, its cases are).
        try:
            with os.scandir(path) as entries:
                inside = sorted(Path(entry.path) for entry in entries)
        except OSError:  # gone again: its removal's event ends its watch
            return
        for entry_path in inside:
            if root.wanted(entry_path):
                self.on_path(entry_path)

    def _look_at_folders(self, root: WatchRoot) -> None:
        """Watch each folder in native inbox ``root`` as it is now (the lock held)."""
        folders = self._folders.get(root.path)
        if folders is None:  # polling, or its inbox not watched
            return
        try:
            with os.scandir(root.path) as entries:
                there = {Path(entry.path) for entry in entries}
        except OSError:  # the inbox away: its folders are looked at once it is back
            there = set()
        for path in sorted(there | set(folders)):
            self._watch_folder(root, path)

    def _watch_folder(self, root: WatchRoot, path: Path) -> bool:
        """Make the watch of ``path`` in native inbox ``root`` match what is there now (the
        lock held): a folder the daemon acts on is watched with all it holds; a folder gone,
        or another one made under its name, is not watched (as that one). True when a watch
        was made here."""
        folders = self._folders.get(root.path)
        entry = self._watches.get(root.path)
        if folders is None or entry is None:
            return False
        observer = entry[0]
        inode = _folder_inode(path) if root.watched_folder(path) else None
        old = folders.get(path)
        if old is not None and old[1] == inode:
            return False
        if old is not None:
            del folders[path]
            observer.unschedule(old[0])
        if inode is None:
            return False
        try:
            watch = observer.schedule(_Handler(root, self.on_path), str(path), recursive=True,
                                      event_filter=_ASKED_EVENTS)
        except OSError as exc:
            # Gone again already, or no watch left (inotify's limit): its files are found by
            # the rescans, which look at it again.
            log.warning("folder_not_watched", folder=str(path), error=str(exc),
                        reason="its files are found by the rescans only")
            return False
        # Files written into it before its watch was made are found all the same: the folder
        # itself is reported (the event that brought it here, or the daemon's scan), and what
        # is directly in it is listed once it is watched (:meth:`_folder_event`).
        folders[path] = (watch, inode)
        return True

    def stop(self, timeout: float = DEFAULT_OBSERVER_STOP_TIMEOUT_S) -> None:
        with self._lock:
            observers, self._observers = self._observers, []
            self._native, self._watches, self._started = None, {}, False
            self._folders = {}
        for observer in observers:
            observer.stop()
        for observer in observers:
            observer.join(timeout)

    @property
    def running(self) -> bool:
        with self._lock:
            return any(o.is_alive() for o in self._observers)
