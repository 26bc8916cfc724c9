"""When a disk counts as full: the one rule for every writer that must tell a full disk from
another failure (the job store's SQLite errors, the JSON log taking events again).

SQLite says "database or disk is full", or only "disk I/O error" when its shared-memory file
cannot grow, and a log file's write is refused with ENOSPC while a few bytes of a cut line
may still be given back; neither is a measure of the room left. A disk with less than
:data:`FULL_BELOW_BYTES` free to this user is full: what a store's journal page or a few log
lines need, and more than the bytes a refused write gives back.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

__all__ = ["FULL_BELOW_BYTES", "disk_is_full"]

#: Free space below which a disk counts as full.
FULL_BELOW_BYTES: Final = 64 * 1024


def disk_is_full(folder: Path) -> bool:
    """Whether the disk holding ``folder`` (or its nearest existing parent) is full. False
    when that cannot be told: the caller's own error then stands as it is."""
    for place in (folder, *folder.parents):
        try:
            return shutil.disk_usage(place).free < FULL_BELOW_BYTES
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return False
