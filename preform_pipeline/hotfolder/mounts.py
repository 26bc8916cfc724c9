"""Which mount a path is on, bind mounts of one disk told apart.

A folder of a disk bind-mounted elsewhere (a container's volume, an inbox mounted from a
data disk) has that disk's device number, so :func:`os.path.ismount` (which compares the
folder's device with its parent's) does not see the mount, and two paths on either side of
it look like one file system; yet a rename across it fails with ``EXDEV`` (the move then
copies, as to another disk) and unmounting it leaves its mount point, as a share's does.
On Linux the kernel's table of this process's mounts (``/proc/self/mountinfo``) shows each
of them; elsewhere the device number is all that is told (session 43's review).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

__all__ = ["is_mount_point", "on_two_mounts"]

#: This process's mounts, one a line: ``ID PARENT MAJOR:MINOR ROOT MOUNT-POINT ...``.
MOUNT_TABLE: Final = Path("/proc/self/mountinfo")

_ESCAPED: Final = re.compile(rb"\\([0-7]{3})")


def is_mount_point(path: Path) -> bool:
    """Whether ``path`` is a mount point: one :func:`os.path.ismount` sees, or a bind mount
    of the same disk in the mount table."""
    if os.path.ismount(path):
        return True
    table = _mount_points()
    return table is not None and os.fsencode(os.path.realpath(path)) in table


def on_two_mounts(first: Path, second: Path) -> bool:
    """Whether ``first`` and ``second`` (both there) are on two file systems, or on two
    mounts of one (a rename between them fails with ``EXDEV`` and a move copies); False when
    either cannot be read."""
    try:
        if os.lstat(first).st_dev != os.lstat(second).st_dev:
            return True
    except OSError:
        return False
    table = _mount_points()
    if table is None:
        return False
    return _mount_of(first.parent, table) != _mount_of(second.parent, table)


def _mount_points() -> dict[bytes, str] | None:
    """The mount points of the mount table, each with the ID of the mount on top there;
    None when there is no table to read (not Linux)."""
    try:
        lines = MOUNT_TABLE.read_bytes().splitlines()
    except OSError:
        return None
    table: dict[bytes, str] = {}
    for line in lines:
        fields = line.split()
        if len(fields) > 4:  # (a later line at the same point is mounted over the earlier)
            table[_ESCAPED.sub(lambda m: bytes([int(m[1], 8)]), fields[4])] = fields[0].decode()
    return table


def _mount_of(folder: Path, table: dict[bytes, str]) -> str | None:
    """The ID of the mount ``folder`` (resolved) is on: the nearest mount point above it."""
    at = os.fsencode(os.path.realpath(folder))
    while True:
        if at in table:
            return table[at]
        parent = os.path.dirname(at)
        if parent == at:
            return None
        at = parent
