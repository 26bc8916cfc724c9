"""Reading model bytes with limits, so a hostile file costs a clear error, not the machine.

* :func:`read_file_bounded`: a regular file of at most ``max_bytes`` (folders, devices and
  pipes are refused by name: a symlink to ``/dev/zero`` must not be read for ever);
  :func:`checked_file_size` is the same check for readers that stream the file, and
  :func:`oversize` its size rule alone, for those that must refuse a file before reading
  any of it (the hot folder hashes what it takes);
* :func:`read_zip_member`: one zip member, refused when its size or its compression ratio is
  beyond the limits *before* it is inflated, and read in chunks that stop at the limit even
  when the archive's directory lies (a "zip bomb" costs milliseconds and little memory);
* :func:`parse_xml`: expat driven with no DTD at all (so no entity can expand, "billion
  laughs" and external entities included) and an element nesting limit.
"""

from __future__ import annotations

import errno
import lzma
import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final
from xml.parsers import expat

from ..errors import ModelFileError

__all__ = [
    "DEFAULT_MAX_COMPRESSION_RATIO",
    "DEFAULT_MAX_MODEL_FILE_BYTES",
    "DEFAULT_MAX_XML_DEPTH",
    "DEFAULT_MAX_ZIP_MEMBER_BYTES",
    "RATIO_CHECK_MIN_BYTES",
    "TOO_LARGE_HINT",
    "checked_file_size",
    "oversize",
    "parse_xml",
    "permission_refusal",
    "read_file_bounded",
    "read_zip_member",
    "stat_oversize",
]

_MIB: Final = 1024 * 1024
#: Largest model file read: a binary STL of about 10 million triangles. Larger files are
#: almost always scans that need decimating before they can print.
DEFAULT_MAX_MODEL_FILE_BYTES: Final = 512 * _MIB
#: Largest 3MF model part (XML) inflated: about 4 million triangles.
DEFAULT_MAX_ZIP_MEMBER_BYTES: Final = 256 * _MIB
#: Model XML deflates 5 to 30 times; deflate itself cannot exceed about 1030. A member
#: inflating more than this is a bomb, not a model.
DEFAULT_MAX_COMPRESSION_RATIO: Final = 200
#: Members smaller than this are not ratio-checked: a tiny highly repetitive part is harmless.
RATIO_CHECK_MIN_BYTES: Final = 1 * _MIB
#: A 3MF model nests 5 levels (model, resources, object, mesh, vertices); extensions add a few.
DEFAULT_MAX_XML_DEPTH: Final = 64
_CHUNK: Final = 1 * _MIB
#: What zipfile raises for a member whose data is damaged: deflate's, bzip2's (OSError) and
#: LZMA's errors, data cut short, a bad checksum or local header. (A method zipfile does not
#: know, Deflate64 say, is NotImplementedError: not damage, said apart.)
_DAMAGED: Final = (zlib.error, lzma.LZMAError, OSError, EOFError, zipfile.BadZipFile)
#: A zip entry's general-purpose flag bit 0: the entry is encrypted (APPNOTE 4.4.4).
_ENCRYPTED: Final = 0x1
#: What helps with a model file over the limit; the limit is the readers' own, no setting.
TOO_LARGE_HINT: Final = ("reduce (decimate) the mesh or split the model; the limit is built "
                         "in (no setting raises it)")


def _mib(size: int) -> str:
    return f"{size / _MIB:.1f} MiB" if size >= _MIB else f"{size} bytes"


def oversize(size: int, max_bytes: int = DEFAULT_MAX_MODEL_FILE_BYTES) -> str | None:
    """Why a model file of ``size`` bytes is refused unread (it is over ``max_bytes``), or
    None: the one size rule of ``run``'s readers (:func:`checked_file_size`) and the hot
    folder's intake, which judges it by ``stat`` before hashing the file (a 20 GB file
    dropped by mistake was read whole, minutes of disk, to be refused afterwards)."""
    if size <= max_bytes:
        return None
    return f"file is {_mib(size)}, over the {_mib(max_bytes)} limit for model files"


def stat_oversize(path: Path, max_bytes: int = DEFAULT_MAX_MODEL_FILE_BYTES) -> str | None:
    """:func:`oversize` of the file ``path`` by its ``stat`` size, none of it read; None too
    when it cannot be looked at (gone meanwhile: the reader or the next look says so)."""
    try:
        return oversize(path.stat().st_size, max_bytes)
    except OSError:
        return None


def checked_file_size(path: Path, max_bytes: int = DEFAULT_MAX_MODEL_FILE_BYTES) -> int:
    """The size of the regular file ``path``, or :class:`ModelFileError` saying why it is not
    one a reader may open (missing, unreadable, a folder, a device, over ``max_bytes``)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():  # the link is there, what it names is not
            raise ModelFileError(path, f"is a link to {os.readlink(path)}, which is not there",
                                 hint="copy the model itself here, or mend the link") from None
        raise ModelFileError(path, "file not found", hint="check the path") from None
    except OSError as exc:
        hint = "check file permissions"
        if exc.errno == errno.ELOOP:
            hint = "the symbolic links loop; replace the link with the file itself"
        raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})", hint=hint) from None
    if stat.S_ISDIR(info.st_mode):
        try:
            os.scandir(path).close()
        except OSError as exc:  # a folder given to a command, which it could not list
            raise ModelFileError(path, f"is a folder that cannot be read "
                                 f"({exc.strerror or exc})", hint="check its permissions"
                                 ) from None
        raise ModelFileError(
            path,
            "is a folder, not a model file",
            hint="rename the folder, or put model files inside it",
        )
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(
            path,
            "is not a regular file (a device, pipe or socket)",
            hint="copy the model into an ordinary file",
        )
    too_large = oversize(info.st_size, max_bytes)
    if too_large is not None:
        raise ModelFileError(path, too_large, hint=TOO_LARGE_HINT)
    return info.st_size


def permission_refusal(path: Path) -> str | None:
    """Why this account may not read the regular file ``path`` (``Permission denied``), or
    None. POSIX only, where a refusal is the file's mode or owner, which no later look
    changes: a file in it is refused at once, not waited for as if still being written. On
    Windows a file being copied is locked and refused alike, and there it is being written.
    Opening a regular file does not block (a pipe's would: ask this of regular files)."""
    if os.name != "posix":
        return None
    try:
        with open(path, "rb"):
            return None
    except PermissionError as exc:
        return exc.strerror or str(exc)
    except OSError:  # gone meanwhile, or another trouble: the reader says which
        return None


def read_file_bounded(path: Path, max_bytes: int = DEFAULT_MAX_MODEL_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, or :class:`ModelFileError` saying why not."""
    size = checked_file_size(path, max_bytes)
    try:
        with path.open("rb") as handle:
            # read(n) allocates n bytes first: ask for what stat() saw (plus one byte to
            # notice growth), never for the whole limit.
            data = handle.read(min(size, max_bytes) + 1)
            while len(data) > size and len(data) <= max_bytes:
                more = handle.read(_CHUNK)  # it is growing: follow it in chunks
                if not more:
                    break
                data += more
    except OSError as exc:
        raise ModelFileError(
            path, f"cannot be read ({exc.strerror or exc})", hint="check file permissions"
        ) from None
    if len(data) > max_bytes:  # it grew after stat()
        raise ModelFileError(
            path,
            f"file is over the {_mib(max_bytes)} limit for model files",
            hint=TOO_LARGE_HINT,
        )
    return data


def read_zip_member(
    archive: zipfile.ZipFile,
    name: str,
    origin: Path,
    *,
    max_bytes: int = DEFAULT_MAX_ZIP_MEMBER_BYTES,
    max_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
) -> bytes:
    """The inflated bytes of member ``name``, refusing bombs before inflating them."""
    info = archive.getinfo(name)
    hint = "the 3MF package is damaged or not a model; export it again"
    if info.flag_bits & _ENCRYPTED:
        # zipfile would ask for a password with a RuntimeError; no 3MF part is ever encrypted.
        raise ModelFileError(
            origin,
            f"{name} is encrypted (it needs a password); 3MF and .form packages never are",
            hint="export the model again without a password or encryption",
        )
    if info.file_size > max_bytes:
        raise ModelFileError(
            origin,
            f"{name} would inflate to {_mib(info.file_size)}, over the {_mib(max_bytes)} limit",
            hint="reduce (decimate) the mesh or split the model",
        )
    if info.file_size >= RATIO_CHECK_MIN_BYTES and info.file_size > max_ratio * max(
        info.compress_size, 1
    ):
        raise ModelFileError(
            origin,
            f"{name} would inflate {info.file_size / max(info.compress_size, 1):.0f} times "
            f"(to {_mib(info.file_size)}); a model part inflates at most {max_ratio:.0f} "
            "times, so this is a zip bomb or a damaged archive",
            hint=hint,
        )
    parts: list[bytes] = []
    total = 0
    # zipfile stops at the declared size, but read in chunks anyway so a lying directory
    # entry can never make one read() allocate more than the limit.
    try:
        with archive.open(info) as stream:
            while total <= max_bytes:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                parts.append(chunk)
    except NotImplementedError:
        raise ModelFileError(
            origin, f"{name} is compressed by a method this reader does not support (zip "
            f"method {info.compress_type}); 3MF and .form packages use deflate or none",
            hint="export the model again (or re-zip it with ordinary deflate compression)",
        ) from None
    except _DAMAGED as exc:
        # Its compressed data or checksum, read here for the first time: a damaged member
        # of a whole directory (callers reading the directory catch its own failures).
        raise ModelFileError(
            origin, f"{name} cannot be unpacked: the package is damaged ({exc})", hint=hint
        ) from None
    if total > max_bytes:
        raise ModelFileError(origin, f"{name} inflates to over {_mib(max_bytes)}", hint=hint)
    return b"".join(parts)


StartHandler = Callable[[str, dict[str, str]], None]


def parse_xml(
    data: bytes,
    origin: Path,
    part: str,
    on_start: StartHandler,
    *,
    max_depth: int = DEFAULT_MAX_XML_DEPTH,
) -> None:
    """Feed every element of ``data`` to ``on_start(tag, attributes)``, in document order.

    Tags come as ``{namespace}local`` (ElementTree's form). A document type declaration
    (where entities are declared) is refused outright: model files never need one. Errors
    raised by ``on_start`` propagate; XML errors become :class:`ModelFileError`.
    """
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0

    def refuse_dtd(*_: object) -> None:
        raise ModelFileError(
            origin,
            f"{part}: has a document type declaration (DTD); model files never need one, and "
            "its entities could expand without bound",
            hint="export the model again from a 3MF-capable program",
        )

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > max_depth:
            raise ModelFileError(
                origin,
                f"{part}: elements nest deeper than {max_depth} levels",
                hint="the 3MF package is damaged or not a model; export it again",
            )
        on_start("{" + name if "}" in name else name, attributes)

    def end(_: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ModelFileError(
            origin,
            f"{part}: XML is malformed ({expat.ErrorString(exc.code)} at line {exc.lineno}, "
            f"column {exc.offset + 1})",
            hint="the 3MF package is damaged or incomplete; export it again",
        ) from None
    except LookupError as exc:
        # The XML declaration names an encoding Python has no codec for (pyexpat asks
        # Python for it): a traceback and exit 70 before this.
        raise ModelFileError(
            origin,
            f"{part}: XML is malformed (it declares an encoding no reader knows: {exc})",
            hint="the 3MF package is damaged; export it again (3MF model parts are UTF-8)",
        ) from None
