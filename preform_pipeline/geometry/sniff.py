"""What a file really is, judged from its first bytes, before any mesh reader parses it.

Hot folders receive whatever people drop into them: a screenshot saved as ``part.stl``, a PDF
drawing renamed ``.3mf``, a STEP file exported with the wrong extension. Parsed as a mesh, such
a file produces a misleading complaint ("binary STL is truncated, wait until it is written").
:func:`impostor` recognises the common cases from their signatures so the reader can say
"this is a PNG image, not an STL" instead, and :func:`require_format` raises that error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ..errors import NotAModelError

__all__ = [
    "EXPORT_HINT", "FORMAT_NAMES", "SNIFF_BYTES", "impostor", "mostly_binary", "require_format",
]

#: How many leading bytes :func:`impostor` looks at.
SNIFF_BYTES: Final = 1024
#: What helps a user who dropped the wrong kind of file.
EXPORT_HINT: Final = "export the model from your CAD or scanning software as STL, OBJ or 3MF"
#: How each mesh suffix is named in messages.
FORMAT_NAMES: Final[dict[str, str]] = {".stl": "an STL", ".obj": "an OBJ", ".3mf": "a 3MF"}

# Binary signatures at offset 0, most specific first.
_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"\x7fELF", "an executable program"),
    (b"MZ", "a Windows program"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x00\x00\x01\x00", "an icon file"),
    (b"OggS", "an audio or video file"),
    (b"fLaC", "an audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"glTF", "a binary glTF model"),
)
# Text signatures, matched case-insensitively after leading blanks (and a UTF-8 BOM).
_TEXT_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"iso-10303-21", "a STEP CAD file"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"{\\rtf", "an RTF document"),
    (b"ply", "a PLY model"),
    (b"<svg", "an SVG drawing"),
    (b"#!", "a script"),
)
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_RIFF_KINDS: Final = {b"WEBP": "a WebP image", b"WAVE": "a WAV audio file", b"AVI ": "a video"}
_UTF8_BOM: Final = b"\xef\xbb\xbf"


def impostor(head: bytes, suffix: str) -> str | None:
    """What the file is when its first bytes show it is not a mesh of ``suffix``, else None.

    Returns a phrase such as ``"a PNG image"``. ZIP archives are impostors for STL and OBJ
    only: for a 3MF, the 3MF reader itself says what the archive lacks.
    """
    if head.startswith(_ZIP_MAGIC):
        return None if suffix == ".3mf" else "a ZIP archive"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            # "BM" and "MZ" are short: only trust them when the rest is not mesh-like text.
            if len(magic) == 2 and magic != b"\x1f\x8b" and _mostly_text(head):
                continue
            return what
    if head.startswith(b"RIFF") and head[8:12] in _RIFF_KINDS:
        return _RIFF_KINDS[head[8:12]]
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "a video or HEIC image"
    text = head.removeprefix(_UTF8_BOM).lstrip().lower()
    for magic, what in _TEXT_MAGIC:
        if text.startswith(magic):
            if magic == b"#!" and suffix == ".obj":
                continue  # an OBJ comment may start with "#!"
            return what
    if text.startswith(b"<?xml") and suffix != ".3mf":
        return "an XML document"
    return None


#: Control bytes (all but TAB, LF, VT, FF and CR), which text holds none or few of.
_CONTROL_BYTES: Final = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
#: A head with more than one control byte in this many is binary.
_BINARY_ONE_IN: Final = 32


def mostly_binary(head: bytes) -> bool:
    """Whether ``head`` is binary data, not text with a stray control byte or two.

    Text formats are read as their readers read them, line by line: a NUL in an OBJ's
    comment is no reason to refuse the file (session 35: any NUL in the first kilobyte
    did). Binary data holds control bytes throughout (a float's zero bytes, a count's high
    bytes, padding), far more than one in :data:`_BINARY_ONE_IN`.
    """
    if not head:
        return False
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return controls * _BINARY_ONE_IN > len(head)


def _mostly_text(head: bytes) -> bool:
    sample = head[:256]
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    return printable >= 0.95 * len(sample)


def require_format(head: bytes, suffix: str, origin: Path) -> None:
    """Raise :class:`NotAModelError` when ``head`` shows the file is not a ``suffix`` mesh."""
    what = impostor(head, suffix)
    if what is not None:
        expected = FORMAT_NAMES.get(suffix, "a model file")
        raise NotAModelError(origin, f"this is {what}, not {expected}", looks_like=what,
                             hint=EXPORT_HINT)
