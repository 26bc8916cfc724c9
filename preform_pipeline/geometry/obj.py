"""Wavefront OBJ: ``v`` and ``f`` lines; everything else (normals, texture coordinates, groups,
materials) is ignored because a print job needs only the surface.

Faces may be polygons (fan-triangulated from their first vertex), may use ``v/vt/vn``,
``v//vn`` and ``v/vt`` forms (only the vertex index is used), and may use negative indices,
which count back from the last vertex defined *before* that face line. Positive indices
may refer to vertices defined later in the file, as most readers allow.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from preform_pipeline.wording import counted

from ..errors import ModelFileError, NotAModelError
from ._checks import (
    MAX_NUMBER_CHARS,
    OVERLONG_TOKEN,
    checked_mesh,
    lf_lines,
    line_number,
    overlong_number,
)
from .mesh import Mesh, weld_vertices
from .numerals import (
    is_text_index,
    is_text_number,
    shown_token,
    text_indices_may_pass,
    text_numbers_may_pass,
)
from .sniff import EXPORT_HINT, SNIFF_BYTES, mostly_binary, require_format

__all__ = ["SLICE_BYTES", "read_obj_bytes", "write_obj"]

#: Bytes of the file parsed at a time (cut at a line end). Parsing a slice makes Python objects
#: for each of its lines and indices, 20 to 40 times its size, so this bounds the reader's peak
#: to the file, its mesh and a few dozen MB. Larger slices are no faster: on the 64 MiB bench
#: file, slices of 1, 4 and 16 MiB took 4.7, 5.0 and 5.7 s CPU and peaked 211, 257 and 338 MiB
#: above the process's baseline (bench/results/large_obj_after.md).
SLICE_BYTES = 1024 * 1024

# A line may start with a UTF-8 byte order mark: Windows tools write one before the first line,
# which is then a vertex (or face) line like any other.
_VERTEX_LINE = re.compile(rb"^(?:\xef\xbb\xbf)?[ \t]*v[ \t]", re.MULTILINE)
# A coordinate is at most MAX_NUMBER_CHARS long: a longer one fails the vertex line, and
# _parse_vertices names it (the numbers are converted as a fixed-width array).
_COORDINATE = rb"(\S{1,%d})(?!\S)" % MAX_NUMBER_CHARS
_VERTEX_XYZ = re.compile(
    rb"^(?:\xef\xbb\xbf)?[ \t]*v" + rb"[ \t]+" + _COORDINATE + rb"[ \t]+" + _COORDINATE
    + rb"[ \t]+" + _COORDINATE,
    re.MULTILINE,
)
_FACE_LINE = re.compile(rb"^(?:\xef\xbb\xbf)?[ \t]*f[ \t]+([^\r\n#]*)", re.MULTILINE)
_AFTER_SLASH = re.compile(rb"/[^\s]*")
_HINT = "the OBJ file is damaged; export it again"
_MAX_INDEX = int(np.iinfo(np.int64).max)
# Ranks of the face errors that wait for the rest of the file (a short face never waits).
_BAD_TOKEN = 2
_OUT_OF_RANGE = 3


def read_obj_bytes(data: bytes, *, origin: Path, name: str, source: Path | None) -> Mesh:
    """Parse OBJ bytes into a triangle mesh; ``origin`` names the file in errors.

    The file is parsed in slices of about :data:`SLICE_BYTES` cut at line ends: parsing makes
    Python objects for every line and index of a slice (20 to 40 times its size), so slicing
    keeps that to one slice's worth whatever the file's size. Errors are the whole file's:
    every vertex line is checked before any face line, and among face errors a short face
    anywhere comes first, then a token that is not an index, then an index out of range, each
    the first of its kind in the file.
    """
    require_format(data[:SNIFF_BYTES], ".obj", origin)
    if mostly_binary(data[:SNIFF_BYTES]):
        raise NotAModelError(
            origin, "this is a binary file, not an OBJ (an OBJ is text)",
            looks_like="a binary file", hint=EXPORT_HINT,
        )
    # Lines ended by a CR alone (classic Mac OS), in a whole file or among LF lines: every
    # pattern here reads LF-ended lines, and would join such a line to the next.
    data = lf_lines(data)
    vertices, defined_before = _parse_vertices(data, origin)
    parts: list[npt.NDArray[np.float32]] = []
    faces_before = 0
    # A token or range error waits until the rest of the file shows no short face (and, for a
    # range error, no bad token), which the whole file's rules put first.
    pending: tuple[int, ModelFileError] | None = None
    for (start, end), before in zip(_slices(data), defined_before, strict=True):
        bodies = _FACE_LINE.findall(data, start, end)
        if not bodies:
            continue
        # The slice's face bodies as one text, one line each, "v/vt/vn" reduced to "v".
        text = _AFTER_SLASH.sub(b"", b"\n".join(bodies))
        counts, longest = _tokens_per_line(text, len(bodies))
        if longest > MAX_NUMBER_CHARS:  # before the indices are converted
            _raise_overlong_index(data, (start, end), text, origin)
        if counts.min() < 3:
            bad = int(np.flatnonzero(counts < 3)[0])
            raise ModelFileError(
                origin,
                f"line {_face_line_number(data, faces_before + bad)}: a face needs at least 3 "
                f"vertices, found {int(counts[bad])}",
                hint=_HINT,
            )
        # Once a bad token waits, only a short face can outrank it: the rest is not parsed.
        if pending is None or pending[0] > _BAD_TOKEN:
            found = _slice_triangles(
                data, (start, end), text, counts, vertices, before, faces_before, origin
            )
            if isinstance(found, tuple):
                pending = found if pending is None else min(pending, found, key=lambda p: p[0])
            else:
                parts.append(found)
        del bodies, text
        faces_before += counts.size
    if pending is not None:
        raise pending[1]
    if not faces_before:
        return checked_mesh(np.zeros((0, 3, 3), np.float32), origin, name, source)
    return checked_mesh(np.concatenate(parts), origin, name, source)


def _slices(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of consecutive slices of ``data``, each ending just after a newline
    (or at the end of the data); a line longer than a slice is one slice of its own.

    Each pass walks a fresh generator rather than a stored list of slices: were a change ever
    to stop the walk advancing, the reader would spin until a timeout, not fill the memory.
    """
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + SLICE_BYTES) + 1
        if end <= start:
            end = data.find(b"\n", start + SLICE_BYTES) + 1 or len(data)
        yield start, end
        start = end


def _slice_triangles(
    data: bytes,
    bounds: tuple[int, int],
    text: bytes,
    counts: npt.NDArray[np.int64],
    vertices: npt.NDArray[np.float32],
    before: int,
    faces_before: int,
    origin: Path,
) -> npt.NDArray[np.float32] | tuple[int, ModelFileError]:
    """One slice's faces as triangles, or its first bad token or out-of-range index as
    ``(rank, error)``; ``before`` vertices and ``faces_before`` faces precede the slice."""
    tokens = text.split()
    total = vertices.shape[0]
    try:
        as_bytes = np.array(tokens, dtype=np.bytes_)
        # "1_0", which int() reads as 10; "1\x00", which numpy reads as 1.
        if not text_indices_may_pass(as_bytes.tobytes(), nul_in_text=b"\x00" in text):
            raise ValueError
        flat = as_bytes.astype(np.int64)
    except (ValueError, OverflowError):
        # OverflowError: an integer beyond int64 (a garbled or hostile file). It is out of
        # range, since no file defines that many vertices, and must not escape as a crash.
        offender = next(i for i, t in enumerate(tokens) if not _is_index(t))
        face = int(np.searchsorted(np.cumsum(counts), offender, side="right"))
        token = tokens[offender]
        return _BAD_TOKEN, ModelFileError(
            origin,
            f"line {_face_line_number(data, faces_before + face)}: "
            + (
                f"vertex index {token.decode('ascii')} is out of range "
                f"(the file defines {counted(total, 'vertex', 'vertices')})"
                if is_text_index(token)
                else f"{shown_token(token)} is not a vertex index"
            ),
            hint=_HINT,
        )
    del tokens

    if (flat < 0).any():
        # Negative indices count back from the vertices defined before their face line.
        start, end = bounds
        vertex_starts = np.array(
            [m.start() for m in _VERTEX_LINE.finditer(data, start, end)], np.int64
        )
        face_starts = np.array([m.start() for m in _FACE_LINE.finditer(data, start, end)], np.int64)
        defined = before + np.repeat(np.searchsorted(vertex_starts, face_starts), counts)
        resolved = np.where(flat < 0, defined + flat, flat - 1)
    else:
        # Positive indices may refer forward (many exporters rely on readers allowing it).
        resolved = flat - 1
    invalid = (flat == 0) | (resolved < 0) | (resolved >= total)
    if invalid.any():
        offender = int(np.flatnonzero(invalid)[0])
        face = int(np.searchsorted(np.cumsum(counts), offender, side="right"))
        return _OUT_OF_RANGE, ModelFileError(
            origin,
            f"line {_face_line_number(data, faces_before + face)}: vertex index "
            f"{int(flat[offender])} is out of range "
            f"(the file defines {counted(total, 'vertex', 'vertices')})",
            hint=_HINT,
        )

    # Fan triangulation, vectorised: polygon k-gon at offset o gives (o, o+i, o+i+1), i=1..k-2.
    tris_per_face = counts - 2
    face_offset = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tri_face = np.repeat(np.arange(counts.size), tris_per_face)
    tri_first = np.concatenate([[0], np.cumsum(tris_per_face)[:-1]])
    step = np.arange(tri_face.size) - tri_first[tri_face] + 1
    first = face_offset[tri_face]
    corner_index = np.stack([first, first + step, first + step + 1], axis=1)
    triangles: npt.NDArray[np.float32] = vertices[resolved[corner_index]]
    return triangles


def _raise_overlong_index(
    data: bytes, bounds: tuple[int, int], text: bytes, origin: Path
) -> NoReturn:
    """Refuse the first face of the slice ``bounds`` whose index (in ``text``, the slice's
    face bodies) is longer than a number may be, naming its line."""
    face = text.count(b"\n", 0, next(OVERLONG_TOKEN.finditer(text)).start())
    line = next(m for i, m in enumerate(_FACE_LINE.finditer(data, *bounds)) if i == face)
    raise overlong_number(data, next(OVERLONG_TOKEN.finditer(data, line.start(1), line.end(1))),
                          origin, _HINT)


def _tokens_per_line(text: bytes, lines: int) -> tuple[npt.NDArray[np.int64], int]:
    """Whitespace-separated tokens on each of ``lines`` newline-separated lines, and the
    length of the longest token, vectorised from one pass over the bytes."""
    raw = np.frombuffer(text, dtype=np.uint8)
    # The tokens text.split() makes: it splits at space and at TAB, LF, VT, FF and CR (9 to
    # 13) only, so a NUL or other control byte is part of a token (refused as no index, on its
    # face's line), not a space between two. (Three comparisons: a 256-entry table lookup
    # took four times as long.)
    is_token = (raw != 32) & ((raw < 9) | (raw > 13))
    edges = np.flatnonzero(np.diff(np.concatenate([[False], is_token, [False]])))
    starts = edges[::2]
    line_of = np.cumsum(raw == 10)
    counts = np.bincount(line_of[starts], minlength=lines).astype(np.int64)
    return counts, int((edges[1::2] - starts).max(initial=0))


def _face_line_number(data: bytes, face: int) -> int:
    match = next(m for i, m in enumerate(_FACE_LINE.finditer(data)) if i == face)
    return line_number(data, match.start())


def _is_index(token: bytes) -> bool:
    """An integer that fits the int64 the indices are read into."""
    return is_text_index(token) and abs(int(token)) <= _MAX_INDEX


def _parse_vertices(data: bytes, origin: Path) -> tuple[npt.NDArray[np.float32], list[int]]:
    """Every vertex of the file, and how many precede each of its :func:`_slices`.

    A vertex line without x y z anywhere is named before a coordinate that is not a number.
    """
    parts: list[npt.NDArray[np.float32]] = []
    defined_before: list[int] = []
    defined = 0
    bad_number: ModelFileError | None = None
    for start, end in _slices(data):
        defined_before.append(defined)
        rows = _VERTEX_XYZ.findall(data, start, end)
        if len(rows) != len(_VERTEX_LINE.findall(data, start, end)):
            for m in _VERTEX_LINE.finditer(data, start, end):
                if _VERTEX_XYZ.match(data, m.start()) is None:
                    line_end = data.find(b"\n", m.start(), end)
                    overlong = OVERLONG_TOKEN.search(
                        data, m.start(), end if line_end < 0 else line_end)
                    if overlong is not None:
                        raise overlong_number(data, overlong, origin, _HINT)
                    raise ModelFileError(
                        origin,
                        f"line {line_number(data, m.start())}: a vertex needs x y z",
                        hint=_HINT,
                    )
        defined += len(rows)
        if not rows or bad_number is not None:
            continue
        as_bytes = np.array(rows, dtype=np.bytes_)
        values: npt.NDArray[np.float64] | None = None
        # "1_0", which float() reads as 10; "1\x00", which numpy reads as 1.
        if text_numbers_may_pass(as_bytes.tobytes(),
                                 nul_in_text=data.find(b"\x00", start, end) >= 0):
            with contextlib.suppress(ValueError):
                values = as_bytes.astype(np.float64)
        if values is None:
            bad_number = _bad_number(data, start, end, origin)
            if bad_number is not None:
                continue
            # Every coordinate is a number: the NUL that sent the slice here is elsewhere.
            values = as_bytes.astype(np.float64)
        # Beyond float32 is infinite, refused by checked_mesh; no numpy warning on the console.
        with np.errstate(over="ignore"):
            parts.append(values.astype(np.float32))
    if bad_number is not None:
        raise bad_number
    if not parts:
        return np.zeros((0, 3), np.float32), defined_before
    return np.concatenate(parts), defined_before


def _bad_number(data: bytes, start: int, end: int, origin: Path) -> ModelFileError | None:
    """The first coordinate between ``start`` and ``end`` that is not a number."""
    for m in _VERTEX_XYZ.finditer(data, start, end):
        for group in (1, 2, 3):
            if not is_text_number(m.group(group)):
                return ModelFileError(
                    origin,
                    f"line {line_number(data, m.start(group))}: "
                    f"{shown_token(m.group(group))} is not a number",
                    hint=_HINT,
                )
    return None


def write_obj(path: Path | str, triangles: npt.ArrayLike) -> None:
    """Write triangles as OBJ with welded (shared) vertices, 9 significant digits."""
    vertices, faces = weld_vertices(triangles)
    v_text = ("v %.9g %.9g %.9g\n" * vertices.shape[0]) % tuple(
        vertices.astype(np.float64).ravel().tolist()
    )
    f_text = ("f %d %d %d\n" * faces.shape[0]) % tuple((faces + 1).ravel().tolist())
    Path(path).write_text(
        f"# written by preform-pipeline\n{v_text}{f_text}", encoding="ascii", newline="\n"
    )
