"""When a disk counts as full: the one rule for every writer that must tell a full disk from
another failure (the job store's SQLite errors, the JSON log taking events again).

SQLite says "database or disk is full", or only "disk I/O error" when its shared-memory file
cannot grow, and a log file's write is refused with ENOSPC while a few bytes of a cut line
may still be given back; neither is a measure of the room left. A disk with less than
:data:`FULL_BELOW_BYTES` free to this user is full: what a store's journal page or a few log
lines need, and more than the bytes a refused write gives back. A disk with fewer than
:data:`FULL_BELOW_INODES` free files is full too: a file system out of inodes refuses a new
file with the same ENOSPC while its free space looks ample (many small reports and notes on a
disk formatted for large scans), and the bytes alone would call it a disk with room.

A used-up quota (EDQUOT) shows in neither: the room a quota leaves this user is not what
``statvfs`` reports. A caller retrying a write refused so cannot wait for this to say "room"
and backs off instead (``hotfolder/outcomes.py``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

__all__ = ["FULL_BELOW_BYTES", "FULL_BELOW_INODES", "disk_is_full"]

#: Free space below which a disk counts as full.
FULL_BELOW_BYTES: Final = 64 * 1024
#: Free files (inodes) below which a disk counts as full: a settle writes a note or report
#: through a temporary beside it, and may make a case's folder for it.
FULL_BELOW_INODES: Final = 16


def disk_is_full(folder: Path) -> bool:
    """Whether the disk holding ``folder`` (or its nearest existing parent) is full. False
    when that cannot be told: the caller's own error then stands as it is."""
    for place in (folder, *folder.parents):
        try:
            return _full(place)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return False


def _full(place: Path) -> bool:
    if shutil.disk_usage(place).free < FULL_BELOW_BYTES:
        return True
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        return False  # Windows: NTFS has no fixed count of files to run out of
    stats = statvfs(place)
    # A file system with no fixed count of files (btrfs) says 0 for both: never full so.
    return bool(stats.f_files) and stats.f_favail < FULL_BELOW_INODES
