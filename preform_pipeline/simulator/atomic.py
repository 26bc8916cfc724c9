"""Files the simulator saves whole or not at all (.form files, screenshots, fleet state).

Apart from the scene (and its numpy) so that the fleet's and the groups' state files, which
the command line also reads, save without the geometry stack.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

__all__ = ["atomic_write_bytes", "atomic_writer"]

#: The longest file name, in bytes, of the usual file systems (ext4, XFS, Btrfs, APFS).
_NAME_MAX_BYTES: Final = 255


@contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream to ``path`` that readers see whole or not at all: written to a
    temporary name beside it and renamed over it when the block ends without an error."""
    # Not mkstemp: its files are 0600 whatever the umask, and a .form or .png is for sharing.
    tmp = str(path.parent / _temporary_name(path.name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temporary_name(name: str) -> str:
    """``.<name>.<unique>.tmp``; a name too long for that (file systems take 255 bytes, the
    temporary adds 38) is cut between characters and ``~`` and a hash of the whole name
    stand for its end, so any name the file system takes can be saved. (The product's
    ``atomicfile.temporary_name`` does the same; the simulator imports nothing of it.)"""
    suffix = f".{uuid.uuid4().hex}.tmp"
    whole = f".{name}{suffix}"
    if len(os.fsencode(whole)) <= _NAME_MAX_BYTES:
        return whole
    end = f"~{hashlib.sha256(os.fsencode(name)).hexdigest()[:12]}{suffix}"
    room = _NAME_MAX_BYTES - 1 - len(end)  # 1: the leading dot; ``end`` is ASCII
    stem = name[:room]  # a character is at least a byte
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return f".{stem}{end}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    with atomic_writer(path) as handle:
        handle.write(data)
