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
and backs off instead.

The waits of every writer a disk refused for want of room (the hot folder's files waiting
for room, the JSON log's file) are one rule: a look (this module's one ``statvfs``, a few
microseconds) is made at most every :data:`ROOM_LOOK_EVERY_S` while the disk stays full, so
room a person makes is taken up within about a second; only a write refused again on a disk
that looked to have room waits longer each time (:func:`room_retry_in`), since that write
is what costs (a quota, or a write larger than the room left, refuses it again and again).
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
    "ROOM_LOOK_EVERY_S",
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

#: How often a writer waiting for room looks at its disk while the disk stays full: a
#: look costs next to nothing, and a person who frees space sees the writer take it up
#: within it (looks backing off to a minute apart cost them up to that minute, and saved
#: only a ``statvfs`` a second).
ROOM_LOOK_EVERY_S: Final = 1.0
#: The wait after a write refused for want of room before the next try, doubled at each
#: refusal up to :data:`ROOM_RETRY_MAX_S`: a disk whose refusals no look can see (a used-up
#: quota, a write larger than the room left) is not written to on every pass or event, and
#: room made on it is taken up within a minute.
ROOM_RETRY_FIRST_S: Final = 2.0
ROOM_RETRY_MAX_S: Final = 60.0


def room_retry_in(refused: int) -> float:
    """Seconds before the next try of a write a disk refused for want of room, after
    ``refused`` earlier such refusals since the writer began to wait (0: the first wait).
    A look that finds the disk still full is no refusal: the next look is
    :data:`ROOM_LOOK_EVERY_S` later."""
    return backoff(refused, ROOM_RETRY_FIRST_S, ROOM_RETRY_MAX_S)


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
