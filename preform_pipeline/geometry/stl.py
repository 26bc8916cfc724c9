"""STL: binary and ASCII reading, writing, and a completeness check for files still arriving.

Binary STL is an 80-byte header, a little-endian uint32 triangle count, then 50 bytes per
triangle (normal, three vertices, attribute word). Many exporters start the binary header with
the word ``solid``, so the format is decided by the size first: a file whose size is exactly
``84 + 50 * count`` is binary whatever its first bytes say; otherwise a file that starts with
``solid`` and whose first bytes are text is ASCII; anything else is a binary file of the wrong
size (truncated or padded), reported with expected and actual byte counts. A UTF-8 byte order
mark before ``solid`` (Windows editors save "UTF-8 with BOM") is passed over in that decision,
and only there: a binary file of the exact size is binary whatever its header starts with.

"Whose first bytes are text" is judged as the ASCII readers do, by what follows the name: a
file that starts with ``solid`` is ASCII when its first bytes are UTF-8 text, or when the line
after the ``solid`` line starts a facet (or ends the solid). The name is free text: a
Latin-1 name (``solid Zahnkr\xf6ne``), or a NUL in it, no longer makes an ASCII STL "not a
mesh", nor does a NUL further on (a facet's number holding one is named with its line). A
binary header that starts with ``solid`` is followed by triangle records, never by a line
that starts ``facet``, so such a file (cut short, or padded) is still judged binary.

:func:`read_stl_file` decides all of that from the file's size and its first few kilobytes,
then streams a binary STL: fixed-size slices of the 50-byte records are read into one reused
buffer and their vertices copied into the mesh's array, so a 300 MB file costs its vertex
array (216 MB) and a few MB more, never the file's bytes as well. ASCII STL is text to parse
as a whole and is read as a whole (within the reader's size limit).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import re
from pathlib import Path
from typing import IO, Final, NoReturn

import numpy as np
import numpy.typing as npt

from preform_pipeline.wording import counted

from ..errors import ModelFileError, NotAModelError
from ._checks import (
    MAX_NUMBER_CHARS,
    OVERLONG_TOKEN,
    checked_mesh,
    line_number,
    overlong_number,
)
from .bounded import read_file_bounded
from .mesh import Mesh, triangle_chunks
from .numerals import is_text_number, shown_token, text_numbers_may_pass
from .sniff import EXPORT_HINT, SNIFF_BYTES, require_format

__all__ = [
    "BINARY_HEADER_BYTES",
    "BINARY_RECORD_DTYPE",
    "STREAM_RECORDS",
    "read_stl_bytes",
    "read_stl_file",
    "records_follow_header",
    "stl_completeness",
    "write_binary_stl",
    "write_stl",
]

BINARY_HEADER_BYTES = 84
#: One binary STL triangle record; 50 bytes, no padding.
BINARY_RECORD_DTYPE = np.dtype(
    [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")]
)
# How many leading bytes decide "is this text?" and how far from the end "endsolid" may sit.
_TEXT_PROBE_BYTES = 512
_ENDSOLID_TAIL_BYTES = 4096
# Records sampled to tell a damaged binary STL from a file that is not an STL at all.
_PLAUSIBILITY_RECORDS = 64
_PLAUSIBLE_COORDINATE = 1e7
# Text is UTF-8 holding no control character but TAB, LF and CR: a solid's name, or a digit
# of another script where a number belongs (which the ASCII reader then refuses with its
# line), may be any character. A binary STL's first 512 bytes are never text so: its triangle
# count ends in a NUL below 2^24 triangles, and its records' floats hold control bytes (1.0 is
# 00 00 80 3F) and bytes that are no UTF-8.
_CONTROL_BYTE: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UTF8: Final = codecs.getincrementaldecoder("utf-8")
_UTF8_BOM: Final = b"\xef\xbb\xbf"
#: Binary records read at a time while streaming (3.2 MB of file per read).
STREAM_RECORDS: Final = 1 << 16
# The leading bytes every decision about a file's layout needs: the sniffed head, the text
# probe, the header and the records the plausibility check samples.
_HEAD_BYTES: Final = max(
    SNIFF_BYTES, _TEXT_PROBE_BYTES, BINARY_HEADER_BYTES + 50 * _PLAUSIBILITY_RECORDS
)

# A facet's numbers are bounded (MAX_NUMBER_CHARS): a longer one fails the facet, and
# _raise_malformed_facet names it.
_NUMBER = rb"(\S{1,%d})" % MAX_NUMBER_CHARS
_WS = rb"\s+"
_ASCII_HINT = "the ASCII STL is damaged; export it again, preferably as binary STL"
_FACET = re.compile(
    rb"facet" + _WS + rb"normal" + (_WS + _NUMBER) * 3 + _WS + rb"outer" + _WS + rb"loop"
    + (_WS + rb"vertex" + (_WS + _NUMBER) * 3) * 3
    + _WS + rb"endloop" + _WS + rb"endfacet"
)
_FACET_KEYWORD = re.compile(rb"(?<![A-Za-z_])facet(?![A-Za-z_])")


def _binary_count(data: bytes) -> int:
    return int.from_bytes(data[80:84], "little")


def _text_start(data: bytes) -> bytes:
    # An ASCII STL saved "UTF-8 with BOM" is still one: the mark is no part of its "solid".
    return data.removeprefix(_UTF8_BOM)


def _looks_like_text(data: bytes) -> bool:
    probe = _text_start(data)[:_TEXT_PROBE_BYTES]
    if _CONTROL_BYTE.search(probe) is not None:
        return False
    try:
        _UTF8().decode(probe, final=False)  # the probe may end inside a character's bytes
    except UnicodeDecodeError:
        return False
    return True


def _starts_solid(data: bytes) -> bool:
    return _text_start(data).lstrip()[:5].lower() == b"solid"


def _facets_follow_name(data: bytes) -> bool:
    """Does the line after the ``solid`` line (the name, any bytes) start a facet, or end
    the solid? Only the first bytes are asked (the text probe)."""
    head = _text_start(data).lstrip()[:_TEXT_PROBE_BYTES]
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if not ends:
        return False
    after = head[min(ends):].lstrip()[:8].lower()
    return after.startswith(b"facet") or after.startswith(b"endsolid")


def _ascii_head(data: bytes) -> bool:
    """Whether a file (not of a binary STL's exact size) starting with ``data`` is ASCII STL
    (the module docstring)."""
    return _starts_solid(data) and (_looks_like_text(data) or _facets_follow_name(data))


def _ends_with_endsolid(tail: bytes) -> bool:
    # The last non-blank line must be "endsolid ...": a multi-solid file cut off mid-way may
    # still contain an earlier solid's endsolid near the end.
    text = tail.rstrip()
    # A line may end in a CR alone (classic Mac OS): the last line starts after either.
    last_line = text[max(text.rfind(b"\n"), text.rfind(b"\r")) + 1:]
    return last_line.lstrip().lower().startswith(b"endsolid")


def _is_binary(data: bytes) -> bool:
    if len(data) >= BINARY_HEADER_BYTES and len(data) == (
        BINARY_HEADER_BYTES + 50 * _binary_count(data)
    ):
        return True
    return not _ascii_head(data)


def read_stl_bytes(data: bytes, *, origin: Path, name: str, source: Path | None) -> Mesh:
    """Parse binary or ASCII STL bytes; ``origin`` names the file in errors."""
    exact_binary = len(data) >= BINARY_HEADER_BYTES and len(data) == (
        BINARY_HEADER_BYTES + 50 * _binary_count(data)
    )
    if not exact_binary and not _triangles_follow_header(data[:_HEAD_BYTES], len(data)):
        require_format(data[:SNIFF_BYTES], ".stl", origin)
    if _is_binary(data):
        return _read_binary(data, origin, name, source)
    return _read_ascii(data, origin, name, source)


def _plausible_records(head: bytes, size: int) -> bool:
    """Do the complete 50-byte records after the header look like triangles?

    ``head`` is the file's first bytes (at least the sampled records), ``size`` its length.
    Real binary STL records hold finite coordinates of modest size and unit (or zero)
    normals; random bytes (a renamed document, an image) almost never do across many records.
    """
    available = max(0, (size - BINARY_HEADER_BYTES) // 50)
    count = min(available, _PLAUSIBILITY_RECORDS)
    if count == 0:
        return size <= BINARY_HEADER_BYTES and not _looks_like_text(head)
    records = np.frombuffer(head, dtype=BINARY_RECORD_DTYPE, count=count, offset=84)
    with np.errstate(all="ignore"):
        coordinates = records["vertices"].astype(np.float64)
        normals = records["normal"].astype(np.float64)
        sane = np.isfinite(coordinates).all() and bool(
            (np.abs(coordinates) < _PLAUSIBLE_COORDINATE).all()
        )
        lengths = np.linalg.norm(normals, axis=1)
    unit_or_zero = (np.abs(lengths - 1.0) < 0.01) | (lengths < 1e-6)
    return bool(sane and np.isfinite(lengths).all() and unit_or_zero.mean() >= 0.9)


def _triangles_follow_header(head: bytes, size: int) -> bool:
    """Do triangle records (not all zeros) follow the 84-byte header of a file of ``size``
    bytes starting with ``head``? Then it is a binary STL, damaged when its size is wrong,
    whatever its header's first bytes look like: the header is 80 bytes of free text, where
    an exporter may write ``Plywood jig``, ``BMW bracket`` or a PNG's signature (session 42's
    review: such a file cut short was called "a PNG image, not an STL", and a hot folder told
    to keep it out of the inbox). A renamed image or document holds no such records."""
    if size < BINARY_HEADER_BYTES + 50 or not _plausible_records(head, size):
        return False
    count = min((size - BINARY_HEADER_BYTES) // 50, _PLAUSIBILITY_RECORDS)
    records = np.frombuffer(head, dtype=BINARY_RECORD_DTYPE, count=count, offset=84)
    return bool(records["vertices"].any())  # zeros (a black bitmap's pixels) are no mesh


def records_follow_header(path: Path) -> bool:
    """Whether triangle records follow the header of the STL file ``path``: a binary STL
    then, still being written or damaged, whatever its header's first bytes look like
    (:func:`_triangles_follow_header`). False when it cannot be read."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return False
    return _triangles_follow_header(head, size)


def _read_binary(data: bytes, origin: Path, name: str, source: Path | None) -> Mesh:
    if len(data) < BINARY_HEADER_BYTES or len(data) != (
        BINARY_HEADER_BYTES + 50 * _binary_count(data)
    ):
        _raise_bad_binary(data[:_HEAD_BYTES], len(data), origin)
    records = np.frombuffer(
        data, dtype=BINARY_RECORD_DTYPE, count=_binary_count(data), offset=84
    )
    triangles = np.ascontiguousarray(records["vertices"])
    return checked_mesh(triangles, origin, name, source)


def _raise_bad_binary(head: bytes, size: int, origin: Path) -> NoReturn:
    """Say why a file taken for binary STL, of ``size`` bytes starting with ``head``, is not
    one: too short for the header, text, not triangles at all, truncated, or too long."""
    if size < BINARY_HEADER_BYTES:
        if _looks_like_text(head):
            _raise_not_stl_text(head, origin)
        raise ModelFileError(
            origin,
            f"binary STL is {size} bytes, shorter than its {BINARY_HEADER_BYTES}-byte "
            "header",
            hint="the file was cut short; copy or export it again",
        )
    count = _binary_count(head)
    expected = BINARY_HEADER_BYTES + 50 * count
    if _looks_like_text(head):
        _raise_not_stl_text(head, origin)
    if not _plausible_records(head, size):
        raise NotAModelError(
            origin,
            "this is not a mesh: neither ASCII STL text nor binary STL triangles",
            looks_like=None,
            hint=EXPORT_HINT,
        )
    room = (size - BINARY_HEADER_BYTES) // 50
    if size < expected:
        state = (
            f"is truncated: its header declares {counted(count, 'triangle')}, so expected "
            f"{expected} bytes, but the file has {size} bytes (room for "
            f"{counted(room, 'triangle')})"
        )
        hint = "the file was cut short; copy or export it again"
    else:
        state = (
            f"is longer than its header says: it declares {counted(count, 'triangle')}, so "
            f"expected {expected} bytes, but the file has {size} bytes (room for {room})"
        )
        hint = "the header's triangle count is wrong; export the model again"
    raise ModelFileError(origin, f"binary STL {state}", hint=hint)


def read_stl_file(
    path: Path, size: int, *, max_bytes: int, name: str, source: Path | None
) -> Mesh:
    """Read the STL file ``path`` of ``size`` bytes (as its checked ``stat`` said).

    An exact binary STL is streamed (see the module docstring); an ASCII one is read whole
    within ``max_bytes``; anything else gets the error :func:`read_stl_bytes` would give,
    decided from the size and the first bytes only.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
            if size >= BINARY_HEADER_BYTES and len(head) >= BINARY_HEADER_BYTES and size == (
                BINARY_HEADER_BYTES + 50 * _binary_count(head)
            ):
                return _stream_binary(handle, head, path, name, source)
    except OSError as exc:
        raise ModelFileError(
            path, f"cannot be read ({exc.strerror or exc})", hint="check file permissions"
        ) from None
    if not _triangles_follow_header(head, size):
        require_format(head[:SNIFF_BYTES], ".stl", path)
    stripped = _text_start(head).lstrip()
    if len(stripped) < 5 or _ascii_head(head):
        # Text (or blanks running past the head): ASCII STL is parsed as a whole.
        return read_stl_bytes(
            read_file_bounded(path, max_bytes), origin=path, name=name, source=source
        )
    _raise_bad_binary(head, size, path)


def _stream_binary(
    handle: io.BufferedReader, head: bytes, origin: Path, name: str, source: Path | None
) -> Mesh:
    """The triangles of an exact binary STL, read ``STREAM_RECORDS`` records at a time into
    one buffer; a file that shrinks or grows while being read gets the size errors."""
    count = _binary_count(head)
    triangles = np.empty((count, 3, 3), dtype=np.float32)
    buffer = bytearray(50 * min(count, STREAM_RECORDS))
    handle.seek(BINARY_HEADER_BYTES)
    done = 0
    while done < count:
        wanted = min(STREAM_RECORDS, count - done)
        got = handle.readinto(memoryview(buffer)[: 50 * wanted])
        if got != 50 * wanted:  # it shrank after stat()
            _raise_bad_binary(head, BINARY_HEADER_BYTES + 50 * done + got, origin)
        records = np.frombuffer(buffer, dtype=BINARY_RECORD_DTYPE, count=wanted)
        triangles[done:done + wanted] = records["vertices"]
        done += wanted
    if handle.read(1):  # it grew after stat()
        handle.seek(0, 2)
        _raise_bad_binary(head, handle.tell(), origin)
    return checked_mesh(triangles, origin, name, source)


def _raise_not_stl_text(data: bytes, origin: Path) -> NoReturn:
    raise NotAModelError(
        origin,
        "this is a text file that is not an STL (an ASCII STL starts with 'solid')",
        looks_like="a text file",
        hint=EXPORT_HINT,
    )


def _read_ascii(data: bytes, origin: Path, name: str, source: Path | None) -> Mesh:
    if not _ends_with_endsolid(data[-_ENDSOLID_TAIL_BYTES:]):
        raise ModelFileError(
            origin,
            # The line named is the file's last one with text: a final newline (or blank
            # lines) after it is not a line of its own to the user's editor.
            f"ASCII STL ends without 'endsolid' (at line "
            f"{line_number(data, len(data.rstrip()))})",
            hint="the file was cut short; copy or export it again",
        )
    matches = _FACET.findall(data)
    keywords = len(_FACET_KEYWORD.findall(data))
    if keywords != len(matches):
        _raise_malformed_facet(data, origin)
    fields = np.array(matches, dtype=np.bytes_).reshape(-1, 12)
    numbers: npt.NDArray[np.float64] | None = None
    # "1_0", which float() reads as 10; "1\x00", which numpy reads as 1.
    if text_numbers_may_pass(fields.tobytes(), nul_in_text=b"\x00" in data):
        with contextlib.suppress(ValueError):
            numbers = fields.astype(np.float64)
    if numbers is None:  # named outside the except: no numpy error chained to the refusal
        bad = _bad_number(data, origin)
        if bad is not None:
            raise bad
        # Every number is one: the NUL that sent the file here is elsewhere (a solid's name).
        numbers = fields.astype(np.float64)
    # A coordinate beyond float32 (1e39) becomes infinite, which checked_mesh refuses in words;
    # numpy's overflow warning would only print a source line on the user's console.
    with np.errstate(over="ignore"):
        triangles: npt.NDArray[np.float32] = numbers[:, 3:].reshape(-1, 3, 3).astype(np.float32)
    return checked_mesh(triangles, origin, name, source)


def _raise_malformed_facet(data: bytes, origin: Path) -> None:
    covered = [(m.start(), m.end()) for m in _FACET.finditer(data)]
    starts = {s for s, _ in covered}
    for kw in _FACET_KEYWORD.finditer(data):
        pos = kw.start()
        if pos in starts:
            continue
        if any(s <= pos < e for s, e in covered):  # the "facet" inside "endfacet"
            continue
        end = data.find(b"endfacet", pos)
        overlong = OVERLONG_TOKEN.search(data, pos, len(data) if end < 0 else end)
        if overlong is not None:
            raise overlong_number(data, overlong, origin, _ASCII_HINT)
        raise ModelFileError(
            origin,
            f"line {line_number(data, pos)}: malformed facet (expected 'facet normal x y z', "
            "'outer loop', three 'vertex x y z' lines, 'endloop', 'endfacet')",
            hint=_ASCII_HINT,
        )
    raise ModelFileError(origin, "malformed ASCII STL facet structure")  # pragma: no cover


def _bad_number(data: bytes, origin: Path) -> ModelFileError | None:
    """The refusal of the first facet number that is not a number, if there is one."""
    for match in _FACET.finditer(data):
        for group in range(1, 13):
            token = match.group(group)
            if not is_text_number(token):
                return ModelFileError(
                    origin,
                    f"line {line_number(data, match.start(group))}: "
                    f"{shown_token(token)} is not a number",
                    hint=_ASCII_HINT,
                )
    return None


def _normals(triangles: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    t = triangles.astype(np.float64)
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where(length > 0, n / np.where(length > 0, length, 1.0), 0.0)
    return unit.astype(np.float32)


def write_binary_stl(handle: IO[bytes], triangles: npt.ArrayLike, *, name: str = "") -> None:
    """Write ``(N, 3, 3)`` triangles to an open binary stream as binary STL, normals computed,
    a slice of records at a time (a 300 MB file never sits in memory as bytes)."""
    tri = np.ascontiguousarray(np.asarray(triangles, dtype=np.float32).reshape(-1, 3, 3))
    header = (f"binary STL {name}".encode("ascii", "replace") + b" " * 80)[:80]
    handle.write(header + tri.shape[0].to_bytes(4, "little"))
    for chunk in triangle_chunks(tri):
        records = np.zeros(chunk.shape[0], dtype=BINARY_RECORD_DTYPE)
        records["normal"] = _normals(chunk)
        records["vertices"] = chunk
        handle.write(records.tobytes())


def write_stl(
    path: Path | str, triangles: npt.ArrayLike, *, ascii: bool = False, name: str = ""
) -> None:
    """Write ``(N, 3, 3)`` triangles as binary (default) or ASCII STL, normals computed.

    ASCII coordinates are written with 9 significant digits so float32 values read back
    bit-identical.
    """
    tri = np.ascontiguousarray(np.asarray(triangles, dtype=np.float32).reshape(-1, 3, 3))
    path = Path(path)
    if not ascii:
        with path.open("wb") as handle:
            write_binary_stl(handle, tri, name=name)
        return
    normals = _normals(tri)
    # ASCII STL is ASCII: a name outside it is written with "?" (as in the binary header).
    label = name.replace("\n", " ").encode("ascii", "replace").decode("ascii")
    facet = (
        "  facet normal %.9g %.9g %.9g\n    outer loop\n"
        "      vertex %.9g %.9g %.9g\n      vertex %.9g %.9g %.9g\n"
        "      vertex %.9g %.9g %.9g\n    endloop\n  endfacet\n"
    )
    values = np.concatenate([normals, tri.reshape(-1, 9)], axis=1).astype(np.float64)
    body = (facet * tri.shape[0]) % tuple(values.ravel().tolist())
    path.write_text(f"solid {label}\n{body}endsolid {label}\n", encoding="ascii", newline="\n")


def stl_completeness(path: Path | str) -> bool:
    """True when an STL file looks completely written.

    Binary: size is exactly ``84 + 50 * count``. ASCII: the last non-blank line starts with
    ``endsolid``. False for missing, unreadable, partially written or oversized files. Reads
    only the head and tail of the file, so it is cheap to poll.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(max(_TEXT_PROBE_BYTES, BINARY_HEADER_BYTES))
            handle.seek(max(0, size - _ENDSOLID_TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return False
    if size >= BINARY_HEADER_BYTES and size == BINARY_HEADER_BYTES + 50 * _binary_count(head):
        return True
    if _ascii_head(head):
        return _ends_with_endsolid(tail)
    return False
