"""Reading the small text files people write (recipes, settings, sidecars, secret files).

``Path.read_text`` reads until the end of the file: a recipe path that names ``/dev/zero``
filled the memory (gigabytes in seconds), and one that names a named pipe with no writer
waited for ever. :func:`read_small_text` opens without blocking, refuses anything but a
regular file, and reads at most ``max_bytes``. Its refusals are ``OSError`` with a
``strerror`` a person can read, so callers that already say "cannot read the file:
<strerror>" need no new branch.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

__all__ = ["NOT_REGULAR", "read_small_text"]

#: The reason given for a device, pipe or socket.
NOT_REGULAR: Final = "not a regular file (a device, pipe or socket)"
# Opening a named pipe for reading blocks until a writer comes, unless non-blocking.
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def read_small_text(path: Path, *, max_bytes: int, encoding: str = "utf-8") -> str:
    """The text of the regular file ``path``, of at most ``max_bytes`` bytes.

    Raises ``IsADirectoryError`` for a folder, ``OSError`` (``EINVAL``, :data:`NOT_REGULAR`)
    for a device, pipe or socket, ``OSError`` (``EFBIG``) for a file over ``max_bytes``
    (whatever its size said when asked), and ``UnicodeDecodeError`` for bytes that are not
    ``encoding``.
    """
    descriptor = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, NOT_REGULAR, str(path))
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = -1  # the handle closes it now
            data = handle.read(max_bytes + 1)
    finally:
        if descriptor >= 0:
            os.close(descriptor)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"over {max_bytes} bytes", str(path))
    return data.decode(encoding)
