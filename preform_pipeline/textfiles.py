"""Reading the small text files people write (recipes, settings, sidecars, secret files).

``Path.read_text`` reads until the end of the file: a recipe path that names ``/dev/zero``
filled the memory (gigabytes in seconds), and one that names a named pipe with no writer
waited for ever. :func:`read_small_text` opens without blocking, refuses anything but a
regular file, and reads at most ``max_bytes``. Its refusals are ``OSError`` with a
``strerror`` a person can read, so callers that already say "cannot read the file:
<strerror>" need no new branch. :func:`not_utf8` is the one way its ``UnicodeDecodeError``
is said: where the first byte that is not UTF-8 stands, not the codec's "can't decode byte
0x96 in position 1: invalid start byte".
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path
from typing import Final

__all__ = ["NOT_REGULAR", "SAVE_AS_UTF8", "not_utf8", "read_small_text"]

#: What helps with a file that is not UTF-8 text.
SAVE_AS_UTF8: Final = "save it again as UTF-8 text; a file that is not text at all is the wrong one"
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


def not_utf8(exc: UnicodeDecodeError) -> str:
    """Why a file read by :func:`read_small_text` is not UTF-8 text: the line, the column
    and the byte, ``not UTF-8 text: line 3, column 14 holds the byte 0xE9`` (a Latin-1
    ``é``), so the user finds it."""
    data = bytes(exc.object)
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    if line_start == 0 and data.startswith(codecs.BOM_UTF8):
        # Read as "utf-8", not "utf-8-sig": the mark is there, and no editor counts it.
        line_start = len(codecs.BOM_UTF8)
    line = data.count(b"\n", 0, exc.start) + 1
    column = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
    utf16 = " (the file is UTF-16 text)" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else ""
    return (f"not UTF-8 text: line {line}, column {column} holds the byte "
            f"0x{data[exc.start]:02X}, which UTF-8 does not allow there{utf16}")
