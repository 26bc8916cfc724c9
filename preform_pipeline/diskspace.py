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
and backs off instead: :func:`room_retry_in`, the one wait for every writer that tries again
after a disk refused it (the hot folder's files waiting for room, the JSON log's file).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

from preform_pipeline.backoff import backoff

__all__ = [
    "FULL_BELOW_BYTES",
    "FULL_BELOW_INODES",
    "ROOM_RETRY_FIRST_S",
    "ROOM_RETRY_MAX_S",
    "disk_is_full",
    "room_retry_in",
]

#: Free space below which a disk counts as full.
FULL_BELOW_BYTES: Final = 64 * 1024
#: Free files (inodes) below which a disk counts as full: a settle writes a note or report
#: through a temporary beside it, and may make a case's folder for it.
FULL_BELOW_INODES: Final = 16

#: The wait after a write a disk refused for want of room (or a look that found it still
#: full) before the next look or try, doubled at each such miss up to :data:`ROOM_RETRY_MAX_S`:
#: a person freeing space, or a quota's room, sees the writer take it up within that, and a
#: disk that stays full is neither written to nor looked at on every pass or event.
ROOM_RETRY_FIRST_S: Final = 2.0
ROOM_RETRY_MAX_S: Final = 60.0


def room_retry_in(misses: int) -> float:
    """Seconds before the next look or try at a disk that refused a write for want of room,
    after ``misses`` looks or tries since that found no room (0: the first wait)."""
    return backoff(misses, ROOM_RETRY_FIRST_S, ROOM_RETRY_MAX_S)


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
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        # Windows: NTFS has no fixed count of files to run out of; the bytes alone.
        return shutil.disk_usage(place).free < FULL_BELOW_BYTES
    # One look gives both figures (``shutil.disk_usage`` would make a second call for the
    # bytes, and it reads them as here: blocks free to this user times the block size).
    stats = statvfs(place)
    if stats.f_bavail * stats.f_frsize < FULL_BELOW_BYTES:
        return True
    # A file system with no fixed count of files (btrfs) says 0 for both: never full so.
    return bool(stats.f_files) and stats.f_favail < FULL_BELOW_INODES
