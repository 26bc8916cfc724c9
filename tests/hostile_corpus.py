"""A corpus of hostile model files, generated at test time, each with the message it must get.

:func:`write_corpus` writes every entry into a folder and returns the :class:`Entry` list.
Nothing here is committed as a binary: images, documents, zip bombs and XML bombs are built
from their published signatures and structures in a few milliseconds each (the 1.5 GiB zip
bomb repeats one flushed deflate block, so it costs about 1.5 MB and half a second).

:func:`write_yaml_corpus` does the same for hand-written YAML (settings files, recipes,
sidecars): each :class:`YamlEntry` with the message class every reader of it must give and the
line it must name.

Entries marked ``reader=False`` are only meaningful in a hot folder (a link out of the inbox
reads fine on its own); ``hotfolder=False`` ones are left out of hot-folder runs (a folder
named ``x.stl`` is a case folder there, a looping link cannot be moved).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from preform_pipeline.geometry import write_stl

__all__ = ["Entry", "YamlEntry", "damaged", "encrypted", "tetra", "write_corpus",
           "write_yaml_corpus", "zip_bomb", "zip_members"]

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"

# Message classes: a regular expression the error's reason must match.
IMPOSTOR = r"this is (a|an) [^,]+, not (an STL|an OBJ|a 3MF)"
NOT_MESH = r"not a mesh|text file that is not an STL|binary file, not an OBJ|not a 3MF package"
TRUNCATED = r"truncated|ends without 'endsolid'|shorter than its 84-byte header"
EMPTY = r"empty \(0 bytes\)"
NON_FINITE = r"NaN or infinite"
ZERO_AREA = r"zero area"
FLAT = r"encloses no volume"
NO_TRIANGLES = r"contains no triangles"
MALFORMED = (r"malformed|not a number|out of range|not a readable zip|missing or non-numeric"
             r"|cannot be unpacked: the package is damaged")
BOMB = r"would inflate|inflates to over"
DTD = r"document type declaration"
DEPTH = r"nest deeper than"
NO_MODEL_PART = r"has no model part"
WRONG_COUNT = r"longer than its header says"
FOLDER = r"is a folder, not a model file"
TOO_BIG = r"file is 2048\.0 MiB, over the 512\.0 MiB limit for model files"
NOT_REGULAR = r"not a regular file"
UNREADABLE = r"cannot be read"
OUTSIDE = r"outside the inbox"
MULTIPLIED = r"its components expand to [\d,]+ object copies"
SHORT_FACE = r"a face needs at least 3 vertices"
CYCLE = r"component references form a cycle"
UNDEFINED = r"reference to undefined object id"
TWICE = r"the package holds two members named"
OVERLONG = r"line \d+: a number [\d,]+ characters long"
# Session 34: what Python's float() and int() take but no model format defines ("1_0", "nan"
# in a 3MF, a digit of another script), named with its line or element.
NOT_A_NUMBER = (r"(line \d+: |vertex \d+: [xyz]=|triangle \d+: v[123]=)'[^']*' "
                r"is not a (number|vertex index)")
# Session 35: 3MF object ids are positive numbers; a transform attribute holds 12 numbers.
OBJECT_ID = r"object \d+ \(in file order\): id='[^']*' is not an object id"
EMPTY_TRANSFORM = r"build item \d+: transform is empty"
# Session 44: a member flagged encrypted (zipfile's RuntimeError asking for a password).
ENCRYPTED = r"3D/3dmodel\.model is encrypted \(it needs a password\)"


@dataclass(frozen=True)
class Entry:
    """One hostile input: its file name, the message class it must get, where it applies."""

    name: str
    expect: str
    reader: bool = True
    hotfolder: bool = True
    #: The message class in a hot folder, where it differs from the reader's.
    hot_expect: str | None = None


def tetra(scale: float = 10.0) -> np.ndarray:
    """A closed tetrahedron with outward-facing triangles."""
    a, b, c, d = (np.array(p, dtype=np.float64) * scale
                  for p in ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)))
    return np.array([[a, c, b], [a, b, d], [a, d, c], [b, c, d]], dtype=np.float32)


def _stl(triangles: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tri = np.asarray(triangles, dtype=np.float32).reshape(-1, 3, 3)
    records = np.zeros(tri.shape[0], dtype=[("n", "<f4", (3,)), ("v", "<f4", (3, 3)),
                                            ("a", "<u2")])
    records["v"] = tri
    buffer.write(b"hostile".ljust(80, b" ") + struct.pack("<I", tri.shape[0]))
    buffer.write(records.tobytes())
    return buffer.getvalue()


def _valid_stl() -> bytes:
    return _stl(tetra())


def _ascii(facets: str, *, end: bool = True) -> bytes:
    return ("solid x\n" + facets + ("endsolid x\n" if end else "")).encode()


def _facet(*vertices: tuple[str, str, str]) -> str:
    body = "".join(f"    vertex {x} {y} {z}\n" for x, y, z in vertices)
    return f"  facet normal 0 0 1\n   outer loop\n{body}   endloop\n  endfacet\n"


def zip_members(members: dict[str, bytes]) -> bytes:
    """A deflated ZIP holding ``members`` (name to bytes), in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _model(body: str, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}'
            f'<model unit="millimeter" xmlns="{CORE}">{body}</model>').encode()


def _mesh_model(vertices: str, triangles: str) -> bytes:
    return _model(f'<resources><object id="1" type="model"><mesh><vertices>{vertices}'
                  f'</vertices><triangles>{triangles}</triangles></mesh></object></resources>'
                  '<build><item objectid="1"/></build>')


def _threemf(model: bytes) -> bytes:
    return zip_members({"[Content_Types].xml": b"<Types/>", "3D/3dmodel.model": model})


def _twice(second_name: str) -> bytes:
    """A package whose model part is there twice: an empty model first, a tetrahedron
    second (zipfile reads the last of one name; other readers the first)."""
    buffer = io.BytesIO()
    tetrahedron = _mesh_model(
        "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>'
                for x, y, z in ((0, 0, 0), (9, 0, 0), (0, 9, 0), (0, 0, 9))),
        "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>'
                for a, b, c in ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("3D/3dmodel.model", _model("<resources/>"))
            archive.writestr(second_name, tetrahedron)
    return buffer.getvalue()


def damaged(package: bytes, member: str) -> bytes:
    """``package`` with ``member``'s stored data overwritten by 0xFF bytes: a deflated
    member then starts with block type 3, which does not exist; a stored one fails its CRC."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        info = archive.getinfo(member)
    name_length, extra_length = struct.unpack_from("<HH", package, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    return package[:start] + b"\xff" * info.compress_size + package[start + info.compress_size:]


def encrypted(package: bytes) -> bytes:
    """``package`` with every member flagged encrypted in the central directory, as a
    password-protected archive is (the bytes themselves are left as they are)."""
    data = bytearray(package)
    start = data.find(b"PK\x01\x02")
    while start >= 0:
        data[start + 8] |= 0x01  # the general-purpose flags follow the two version fields
        start = data.find(b"PK\x01\x02", start + 4)
    return bytes(data)


def _billion_laughs() -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    return _threemf(_model("&lol9;", f"<!DOCTYPE model [{entities}]>\n"))


def _xxe() -> bytes:
    return _threemf(_model("&x;", '<!DOCTYPE model [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'))


def _deep() -> bytes:
    return _threemf(_model("<a>" * 5000 + "</a>" * 5000))


def _doubling_components(levels: int = 32) -> bytes:
    """Objects that each use the next one twice: 2**33 tetrahedra asked for in under 1 KiB."""
    vertices = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>'
                       for x, y, z in ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)))
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>'
                        for a, b, c in ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)))
    objects = [f'<object id="1"><mesh><vertices>{vertices}</vertices>'
               f"<triangles>{triangles}</triangles></mesh></object>"]
    objects += [f'<object id="{n + 1}"><components><component objectid="{n}"/>'
                f'<component objectid="{n}"/></components></object>'
                for n in range(1, levels + 1)]
    return _threemf(_model(f'<resources>{"".join(objects)}</resources>'
                           f'<build><item objectid="{levels + 1}"/></build>'))


def _raw_zip(name: str, deflated: bytes, size: int, crc: int) -> bytes:
    """A one-member zip written by hand, so the member can hold pre-built deflate data."""
    encoded = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(deflated),
                        size, len(encoded), 0) + encoded
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc,
                          len(deflated), size, len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                      len(local) + len(deflated), 0)
    return local + deflated + central + end


_BOMB_BLOCK = 1024 * 1024
_BOMB_BLOCKS = 1536


@cache
def _bomb_stream() -> tuple[bytes, int]:
    """About 1.5 MB of raw deflate inflating to 1.5 GiB of zeros, and the zeros' CRC-32."""
    block, count = _BOMB_BLOCK, _BOMB_BLOCKS
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = compressor.compress(b"\0" * block) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor starts afresh, so every further block is this chunk.
    again = compressor.compress(b"\0" * block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zeros = b"\0" * block
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    return chunk + again * (count - 1) + b"\x03\x00", crc  # an empty final block ends it


def zip_bomb(member: str = "3D/3dmodel.model", *, lie: bool = False) -> bytes:
    """A zip whose one ``member`` is the 1.5 GiB bomb, declaring its true size or (``lie``) a
    harmless 1 KB."""
    stream, crc = _bomb_stream()
    return _raw_zip(member, stream, 1024 if lie else _BOMB_BLOCK * _BOMB_BLOCKS, crc)


def _ratio_bomb() -> bytes:
    return _threemf(b" " * (16 * 1024 * 1024))


#: A "number" of this many digits in a text model: each reader converts its numbers as an
#: array as wide as the longest, so the few below cost 48 MB unbounded (a 400 kB one, 67 GiB).
_LONG_DIGITS = 4000


def _long_number_stl() -> bytes:
    far = ("1" + "0" * _LONG_DIGITS, "0", "0")
    corners = [("0", "0", "0"), ("1", "0", "0"), ("0", "1", "0")]
    return _ascii(_facet(far, *corners[1:]) + _facet(*corners) * 1000)


def _long_number_obj() -> bytes:
    return (b"v 1" + b"0" * _LONG_DIGITS + b" 0 0\n" + b"v 0 0 0\n" * 4000
            + b"v 1 0 0\nv 0 1 0\nf 4002 4003 4001\n")


def _long_index_obj() -> bytes:
    return (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 " + b"0" * _LONG_DIGITS + b"3\n"
            + b"f 1 2 3\n" * 4000)


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


_WRITERS: dict[str, tuple[str, Callable[[], bytes]]] = {
    # STL impostors and damage
    "photo.stl": (IMPOSTOR, _png),
    "scan.stl": (IMPOSTOR, lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(300)),
    "drawing.stl": (IMPOSTOR, lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"1 0 obj\n" * 40),
    "page.stl": (IMPOSTOR, lambda: b"<!DOCTYPE html><html><body>404</body></html>"),
    "archive.stl": (IMPOSTOR, lambda: zip_members({"part.stl": _valid_stl()})),
    "cad.stl": (IMPOSTOR, lambda: b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('x'),'2;1');\n"),
    "anim.stl": (IMPOSTOR, lambda: b"GIF89a" + bytes(200)),
    "packed.stl": (IMPOSTOR, lambda: b"\x1f\x8b\x08\x00" + bytes(200)),
    "program.stl": (IMPOSTOR, lambda: b"\x7fELF\x02\x01\x01" + bytes(300)),
    "empty.stl": (EMPTY, lambda: b""),
    "one-byte.stl": (TRUNCATED, lambda: b"\x00"),
    "cut.stl": (TRUNCATED, lambda: _valid_stl()[:-30]),
    "huge-count.stl": (TRUNCATED, lambda: _valid_stl()[:80] + struct.pack("<I", 2**32 - 1)
                       + _valid_stl()[84:]),
    "wrong-count.stl": (WRONG_COUNT, lambda: _valid_stl()[:80] + struct.pack("<I", 2)
                        + _valid_stl()[84:]),
    "no-endsolid.stl": (TRUNCATED, lambda: _ascii(_facet(("0", "0", "0"), ("1", "0", "0"),
                                                         ("0", "1", "0")), end=False)),
    "nan.stl": (NON_FINITE, lambda: _ascii(_facet(("nan", "0", "0"), ("1", "0", "0"),
                                                  ("0", "1", "0")))),
    "underscore.stl": (NOT_A_NUMBER, lambda: _ascii(_facet(("0", "0", "0"), ("1_0", "0", "0"),
                                                           ("0", "1", "0")))),
    "inf.stl": (NON_FINITE, lambda: _stl(np.where(np.arange(36).reshape(4, 3, 3) == 5,
                                                  np.inf, tetra()))),
    "zero-area.stl": (ZERO_AREA, lambda: _stl(np.repeat(
        np.array([[[0, 0, 0], [1, 1, 1], [2, 2, 2]]], np.float32), 5, axis=0))),
    "points.stl": (ZERO_AREA, lambda: _stl(np.ones((3, 3, 3), np.float32))),
    "flat.stl": (FLAT, lambda: _stl(np.array([[[0, 0, 0], [9, 0, 0], [0, 9, 0]],
                                              [[9, 0, 0], [9, 9, 0], [0, 9, 0]]], np.float32))),
    "no-triangles.stl": (NO_TRIANGLES, lambda: _stl(np.zeros((0, 3, 3), np.float32))),
    "no-facets.stl": (NO_TRIANGLES, lambda: _ascii("")),
    "noise.stl": (NOT_MESH, lambda: np.random.default_rng(13).bytes(4000)),
    "notes.stl": (NOT_MESH, lambda: b"this is a text file with notes about the part\n" * 20),
    "bad-number.stl": (MALFORMED, lambda: _ascii(_facet(("0", "0", "0"), ("1", "x1", "0"),
                                                        ("0", "1", "0")))),
    "header-only.stl": (TRUNCATED, lambda: _valid_stl()[:84]),
    # Saved "UTF-8 with BOM": read as ASCII STL past the mark (session 26), so told what the
    # text holds, not that the mark is there.
    "notepad-short.stl": (NO_TRIANGLES, lambda: b"\xef\xbb\xbfsolid x\nendsolid x\n"),
    "notepad-flat.stl": (FLAT, lambda: b"\xef\xbb\xbf" + _ascii(_facet(("0", "0", "0"),
                                                                     ("1", "0", "0"),
                                                                     ("0", "1", "0")))),
    "notepad-notes.stl": (NOT_MESH, lambda: b"\xef\xbb\xbf" + b"notes about the part\n" * 20),
    # Beyond float32: infinite once read, and no numpy warning on the console (session 25).
    "huge.stl": (NON_FINITE, lambda: _ascii(_facet(("1e39", "0", "0"), ("1", "0", "0"),
                                                   ("0", "1", "0")))),
    # Session 34: a number thousands of digits long (the readers' arrays are as wide as it).
    "long-number.stl": (OVERLONG, _long_number_stl),
    # OBJ
    "long-number.obj": (OVERLONG, _long_number_obj),
    "long-index.obj": (OVERLONG, _long_index_obj),
    "photo.obj": (IMPOSTOR, _png),
    "drawing.obj": (IMPOSTOR, lambda: b"%PDF-1.4\n" + b"stream\n" * 20),
    "page.obj": (IMPOSTOR, lambda: b"<html><head></head><body></body></html>"),
    "noise.obj": (NOT_MESH, lambda: b"\x01\x00" + np.random.default_rng(5).bytes(3000)),
    "empty.obj": (EMPTY, lambda: b""),
    "no-faces.obj": (NO_TRIANGLES, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
    "bad-index.obj": (MALFORMED, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),
    "huge-index.obj": (MALFORMED, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 " + b"9" * 20 + b"\n"),
    "nan.obj": (NON_FINITE, lambda: b"v nan 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n"),
    "underscore.obj": (NOT_A_NUMBER, lambda: b"v 0 0 0\nv 1_0 0 0\nv 0 1 0\nf 1 2 3\n"),
    "underscore-index.obj": (NOT_A_NUMBER, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0_3\n"),
    "huge.obj": (NON_FINITE, lambda: b"v 1e39 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n"),
    "behind-first.obj": (MALFORMED, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf -9 -2 -1\n"),
    "zero-index.obj": (MALFORMED, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n"),
    "two-corners.obj": (SHORT_FACE, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2\n"),
    "line.obj": (ZERO_AREA, lambda: b"v 0 0 0\nv 1 1 1\nv 2 2 2\nf 1 2 3\nf 3 2 1\n"),
    "flat.obj": (FLAT, lambda: b"v 0 0 0\nv 5 0 0\nv 5 5 0\nv 0 5 0\nf 1 2 3 4\n"),
    # 3MF
    "bomb.3mf": (BOMB, lambda: zip_bomb(lie=False)),
    "lying-bomb.3mf": (MALFORMED, lambda: zip_bomb(lie=True)),
    "ratio-bomb.3mf": (BOMB, _ratio_bomb),
    "laughs.3mf": (DTD, _billion_laughs),
    "xxe.3mf": (DTD, _xxe),
    "deep.3mf": (DEPTH, _deep),
    "components.3mf": (MULTIPLIED, _doubling_components),
    "no-model.3mf": (NO_MODEL_PART, lambda: zip_members({"readme.txt": b"hello"})),
    "photo.3mf": (IMPOSTOR, _png),
    "drawing.3mf": (IMPOSTOR, lambda: b"%PDF-1.5\n" + bytes(100)),
    "notes.3mf": (NOT_MESH, lambda: b"just some text\n"),
    "empty.3mf": (EMPTY, lambda: b""),
    "cut.3mf": (MALFORMED, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/>', '<triangle v1="0" v2="0" v3="0"/>'))[:-40]),
    "bad-xml.3mf": (MALFORMED, lambda: _threemf(b"<model xmlns='" + CORE.encode() + b"'><res")),
    # Session 32: pyexpat asks Python for the declared codec; an unknown one was exit 70.
    "unknown-encoding.3mf": (MALFORMED, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/>', "").replace(b"UTF-8", b"UTFinf-8"))),
    "bad-vertex.3mf": (MALFORMED, lambda: _threemf(_mesh_model(
        '<vertex x="zero" y="0" z="0"/>', ""))),
    "nan.3mf": (NOT_A_NUMBER, lambda: _threemf(_mesh_model(
        '<vertex x="nan" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/>',
        '<triangle v1="0" v2="1" v3="2"/>'))),
    "no-triangles.3mf": (NO_TRIANGLES, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/>', ""))),
    "self-made.3mf": (CYCLE, lambda: _threemf(_model(
        '<resources><object id="1"><components><component objectid="1"/></components>'
        '</object></resources><build><item objectid="1"/></build>'))),
    "no-object.3mf": (UNDEFINED, lambda: _threemf(_model(
        '<resources></resources><build><item objectid="7"/></build>'))),
    # Session 34: one name twice (or twice but for case) was read as the last of the two.
    "twice.3mf": (TWICE, lambda: _twice("3D/3dmodel.model")),
    "twice-cased.3mf": (TWICE, lambda: _twice("3D/3DModel.model")),
    "underscore.3mf": (NOT_A_NUMBER, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/><vertex x="1_0" y="0" z="0"/><vertex x="0" y="1" z="0"/>',
        '<triangle v1="0" v2="1" v3="2"/>'))),
    "arabic-digit.3mf": (NOT_A_NUMBER, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/>',
        '<triangle v1="0" v2="1" v3="\u0662"/>'))),
    "huge.3mf": (NON_FINITE, lambda: _threemf(_mesh_model(
        '<vertex x="1e39" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/>',
        '<triangle v1="0" v2="1" v3="2"/>'))),
    # Session 35: ids that are no ST_ResourceID, and a transform of no numbers (read as none).
    "zero-id.3mf": (OBJECT_ID, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/>', "").replace(b'id="1"', b'id="0"'))),
    "empty-transform.3mf": (EMPTY_TRANSFORM, lambda: _threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/>', "").replace(b'objectid="1"', b'objectid="1" transform=""'))),
    # Session 35: numpy dropped a number's trailing NUL ("10\x00" read as 10) past the bytes
    # that judge a file text; an Arabic-Indic digit in an ASCII STL's first bytes made it "not
    # a mesh"; a control byte after the last face's indices failed the OBJ reader.
    "nul-number.stl": (NOT_A_NUMBER, lambda: _ascii(_facet(("0", "0", "0"), ("10", "0", "0"),
                                                           ("0", "10", "0")) * 8
                                                    + _facet(("0", "0", "0"), ("10\x00", "0", "0"),
                                                             ("0", "10", "0")))),
    "arabic-digit.stl": (NOT_A_NUMBER, lambda: _ascii(_facet(("0", "0", "0"), ("\u0661", "0", "0"),
                                                             ("0", "1", "0")))),
    "nul-number.obj": (NOT_A_NUMBER, lambda: b"#" * 1100 + b"\nv 0 0 0\nv 1\x00 0 0\nv 0 1 0\n"
                                             b"f 1 2 3\n"),
    "control-byte.obj": (NOT_A_NUMBER, lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3 \x01\n"),
    # Session 36: an ASCII STL is judged by what follows its name (any bytes), a text OBJ by
    # more than a stray control byte: damage in their first bytes is named where it is, and
    # a binary STL whose header starts "solid" (SolidWorks) is still binary when cut.
    "latin1-cut.stl": (TRUNCATED, lambda: b"solid Zahnkr\xf6ne\n" + _facet(
        ("0", "0", "0"), ("1", "0", "0"), ("0", "1", "0")).encode()),
    "nul-first-facet.stl": (NOT_A_NUMBER, lambda: _ascii(_facet(
        ("0", "0", "0"), ("10\x00", "0", "0"), ("0", "10", "0")))),
    "solidworks-cut.stl": (TRUNCATED, lambda: (b"solid part\n".ljust(80, b" ")
                                               + _valid_stl()[80:])[:-30]),
    "nul-first-vertex.obj": (NOT_A_NUMBER, lambda: b"v 0 0 0\nv 1\x00 0 0\nv 0 1 0\n"
                                                   b"f 1 2 3\n"),
    "binary-stl.obj": (NOT_MESH, _valid_stl),
    "encrypted.3mf": (ENCRYPTED, lambda: encrypted(_threemf(_mesh_model(
        '<vertex x="0" y="0" z="0"/><vertex x="9" y="0" z="0"/><vertex x="0" y="9" z="0"/>',
        '<triangle v1="0" v2="1" v3="2"/>')))),
}


def write_corpus(folder: Path, outside: Path | None = None) -> list[Entry]:
    """Write every hostile input into ``folder``; ``outside`` is a folder for link targets.

    Returns the entries written (special ones depend on what the platform supports).
    """
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    for name, (expect, make) in _WRITERS.items():
        (folder / name).write_bytes(make())
        entries.append(Entry(name, expect))
    (folder / "folder.stl").mkdir()
    entries.append(Entry("folder.stl", FOLDER, hotfolder=False))
    # A file whose name is not valid UTF-8 (POSIX file names are bytes).
    if os.name == "posix":
        odd = os.fsdecode(b"caf\xe9-photo.stl")
        (folder / odd).write_bytes(_png())
        entries.append(Entry(odd, IMPOSTOR, hot_expect=r"is not valid UTF-8"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.stl")
        entries.append(Entry("pipe.stl", NOT_REGULAR))
        # Session 37: the reader of a pipe named .3mf opens nothing either (`run` hung on one).
        os.mkfifo(folder / "pipe.3mf")
        entries.append(Entry("pipe.3mf", NOT_REGULAR))
    if os.name == "posix":
        # 2 GiB of holes: no disk, no time to write, and refused by its size before a byte
        # is read; in a hot folder too since session 38 (its content hash read it all first).
        with (folder / "sparse.stl").open("wb") as handle:
            handle.truncate(2 * 1024**3)
        entries.append(Entry("sparse.stl", TOO_BIG))
    try:
        (folder / "loop-a.stl").symlink_to(folder / "loop-b.stl")
        (folder / "loop-b.stl").symlink_to(folder / "loop-a.stl")
        entries.append(Entry("loop-a.stl", UNREADABLE, hotfolder=False))
        if outside is not None:
            outside.mkdir(parents=True, exist_ok=True)
            write_stl(outside / "elsewhere.stl", tetra())
            (folder / "link-out.stl").symlink_to(outside / "elsewhere.stl")
            entries.append(Entry("link-out.stl", OUTSIDE, reader=False))
            case = folder / "case-loop"
            case.mkdir()
            (case / "part.stl").write_bytes(_valid_stl())
            (case / "again").symlink_to(case)
            entries.append(Entry("case-loop", r"linked folders are not followed", reader=False))
    except OSError:  # no symlink privilege (Windows without developer mode)
        pass
    return entries


# Hostile YAML (session 37): what settings files, recipes and sidecars are all read by. Before,
# a settings file's alias bomb ran `run`, `watch` and `jobs` for minutes into gigabytes (its
# values were walked by the schema check and quoted whole in its message), a key given twice
# in one was dropped in silence, a control character was "position 28" of "<unicode string>",
# and a Latin-1 byte was the codec's "can't decode byte 0xe9 in position 25".
YAML_TOO_LARGE = r"too large: over 100000 values once its aliases \(\*name\) are expanded"
YAML_RECURSIVE = r"recursive alias"
YAML_CONTROL = r"a control character \(U\+{code}\) is not allowed in YAML text"
YAML_NOT_UTF8 = r"not UTF-8 text: line {line}, column {column} holds the byte 0x{byte}"
YAML_TAG = r"YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not supported in a"


@dataclass(frozen=True)
class YamlEntry:
    """One hostile YAML file: its name, the message class it must get, and the line the
    message must name (``file:LINE:``), or None when the message itself says where."""

    name: str
    expect: str
    line: int | None


def _yaml_alias_bomb() -> bytes:
    """Nine lines that each name the line before ten times: 10**9 values, in 400 bytes."""
    lines = ["bomb:", "  a0: &a0 [l, l, l, l, l, l, l, l, l, l]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return ("\n".join([*lines, "servers:", "  count: *a8", ""])).encode()


_YAML_WRITERS: dict[str, tuple[str, int | None, Callable[[], bytes]]] = {
    # Placed at the alias that took the count past the bound (session 38; it was the
    # anchor a0 on line 2, whose value the composer puts wherever it is named): a4's list
    # on line 6 names a3 ten times, and the bound is passed inside its eighth *a3.
    "alias-bomb.yaml": (YAML_TOO_LARGE + r", reached inside \*a3 here \(&a3 at line 5\)", 6,
                        _yaml_alias_bomb),
    # At the alias inside its own value (line 3), not the anchor (line 1).
    "recursive-alias.yaml": (YAML_RECURSIVE + r": \*s is inside the value it names \(&s at "
                             r"line 1\)", 3,
                             lambda: b"servers: &s\n  count: 1\n  extra_args: [*s]\n"),
    "twice.yaml": (r"duplicate key 'servers' \(first given at line 1\)", 3,
                   lambda: b"servers:\n  count: 1\nservers:\n  count: 3\n"),
    "twice-inside.yaml": (r"duplicate key 'count' \(first given at line 2\)", 3,
                          lambda: b"servers:\n  count: 1\n  count: 3\n"),
    "nul.yaml": (YAML_CONTROL.format(code="0000"), 2, lambda: b"servers:\n  count: 1\x00\n"),
    "escape.yaml": (YAML_CONTROL.format(code="001B"), 1, lambda: b"name: \x1b]0;owned\x07\n"),
    # A program, every byte below 0x80: UTF-8 text to the decoder, control characters to YAML.
    "program.yaml": (YAML_CONTROL.format(code="007F"), 1,
                     lambda: b"\x7fELF\x02\x01\x01" + bytes(120)),
    "latin1.yaml": (YAML_NOT_UTF8.format(line=2, column=18, byte="E9"), None,
                    lambda: b"servers:\n  count: 1  # caf\xe9\n"),
    # Saved "UTF-8 with BOM", then a Latin-1 byte: the mark is no character an editor
    # shows, so the column is counted after it, by every reader alike.
    "bom-latin1.yaml": (YAML_NOT_UTF8.format(line=1, column=15, byte="E9"), None,
                        lambda: b"\xef\xbb\xbfservers: # caf\xe9\n  count: 1\n"),
    "utf16.yaml": (YAML_NOT_UTF8.format(line=1, column=1, byte="FF")
                   + r".*\(the file is UTF-16 text\)", None,
                   lambda: "servers:\n  count: 1\n".encode("utf-16")),
    "python-tag.yaml": (YAML_TAG, 1,
                        lambda: b"servers: !!python/object/apply:os.system [echo owned]\n"),
    "tab.yaml": (r"a tab character; YAML indents with spaces only", 2,
                 lambda: b"servers:\n\tcount: 1\n"),
}


def write_yaml_corpus(folder: Path) -> list[YamlEntry]:
    """Write every hostile YAML file into ``folder``; returns their entries."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (expect, line, make) in _YAML_WRITERS.items():
        (folder / name).write_bytes(make())
        entries.append(YamlEntry(name, expect, line))
    return entries
