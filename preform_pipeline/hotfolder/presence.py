"""Whether each inbox is there: a network share that went away is away, not emptied.

A share (NFS, SMB) unmounted (a NAS reboot, a network cut) leaves its mount point behind: an
empty folder at the inbox's path. Taken at its word, every file of the inbox was gone:
files waiting to be complete were forgotten, a case whose take a crash cut short went on
without its rest, and at the second scan the holds of the case folders whose part was set
aside were forgotten (:mod:`.caseholds`), so when the share came back the rest of each held
case was taken as a new case and printed without that part (session 43 reproduced it with a
bind mount).

Told apart by something true: whether the inbox folder is a mount point (in the kernel's
mount table, :mod:`.mounts`: a folder of the same disk bind-mounted there is one too, which
:func:`os.path.ismount` does not see). One that was (a share mounted at the inbox's path)
and is not any more is the share's mount point left behind: the inbox is *away*, whatever
that folder holds (files copied onto the mount point meanwhile are hidden again under the
share when it comes back), and the daemon keeps all it knows of the inbox until it is back.
No folder at the inbox's path, or one that cannot be looked at (``ESTALE``, ``EIO``: a share
above the inbox gone), is away too. Any other folder is there: one emptied by a user is
emptied (its files are gone), and another folder at the path (a share mounted again, under a
new device number; a folder made again) is the inbox from then on, watched anew
(``inbox_changed``). An inbox turned for good from a share into a local folder stays away
until the daemon starts again (the error says so).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from preform_pipeline.hotfolder.mounts import is_mount_point
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.hotfolder import InboxSettings

__all__ = ["InboxPresence", "Presence"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Presence:
    """One look at the inboxes: those ``away`` now, and those ``back`` since the last look
    (there again, or another folder now): a native watch of the folder that left sees nothing
    of the one there now, so they are watched and listed anew."""

    away: frozenset[Path] = frozenset()
    back: frozenset[Path] = frozenset()


@dataclass(frozen=True)
class _Folder:
    """What tells an inbox folder apart: its device and inode, and whether it is a mount."""

    device: int
    inode: int
    mount: bool


class InboxPresence:
    """Each inbox folder watched (its identity, and whether it is a mount point), and which
    are away (module docstring). Each change is logged once: ``inbox_unavailable`` (error)
    as it goes, ``inbox_available_again`` as it comes back, ``inbox_changed`` for another
    folder at its path."""

    def __init__(self, inboxes: Iterable[InboxSettings]) -> None:
        self._paths = tuple(dict.fromkeys(inbox.path for inbox in inboxes))
        self._known: dict[Path, _Folder] = {}
        self._away: dict[Path, str] = {}

    def look(self) -> Presence:
        back: set[Path] = set()
        for path in self._paths:
            why = self._why_away(path, back)
            if why is None:
                was = self._away.pop(path, None)
                if was is not None:
                    log.warning("inbox_available_again", inbox=str(path), was=was)
                    back.add(path)
            elif path not in self._away:
                self._away[path] = why
                log.error("inbox_unavailable", inbox=str(path), reason=why,
                          action="nothing is taken from it, and nothing it held is "
                          "forgotten (waiting files, held cases, notices), until it is back",
                          hint="mount the share again, or make the folder again if it was "
                          "deleted: it is taken up as it comes back; if the inbox is no "
                          "longer a share, start the hot folder again")
        return Presence(frozenset(self._away), frozenset(back))

    def _why_away(self, path: Path, changed: set[Path]) -> str | None:
        try:
            info = os.stat(path)
        except OSError as exc:
            return f"its folder cannot be looked at ({exc.strerror or exc})"
        if not stat.S_ISDIR(info.st_mode):
            return "there is no folder at its path"
        known = self._known.get(path)
        if known is not None and (info.st_dev, info.st_ino) == (known.device, known.inode):
            # The same folder as last time: a mount on it, or its share's going, would have
            # shown another folder here. The daemon looks at every wake-up, so the mount
            # table (read whole when os.path.ismount does not see a mount) is read only when
            # the folder changed.
            return None
        now = _Folder(info.st_dev, info.st_ino, is_mount_point(path))
        known = self._known.setdefault(path, now)
        if now == known:
            return None
        if known.mount and not now.mount:
            return ("its share is not mounted: the folder at its path is the mount point "
                    "left behind")
        self._known[path] = now
        log.warning("inbox_changed", inbox=str(path),
                    reason="another folder is at its path now (a share mounted again, or the "
                    "folder made again): it is the inbox from now on")
        changed.add(path)
        return None

