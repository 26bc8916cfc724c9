"""Counted nouns: the one rule for writing "1 build" but "2 builds" in what a user reads;
the one way a message quotes a value someone else sent, cut short (:func:`quoted`); and the
one way a name someone else chose is shown with its hidden characters written out
(:func:`visible`: the dashboard's pages, the screenshot's legend, the console's log lines, the
hot folder's notes, ``jobs``, ``plan`` and ``run``), or, in text of several lines, with its
line breaks kept (:func:`visible_lines`: the commands' stderr, ``plan``'s steps, what the
commands print on stdout), and in a table's columns (:func:`aligned`: the cells escaped
before they are measured); and the one way a model's size in millimetres is written
(:func:`millimetres`); and the one way a moment is written for a person (:func:`utc_moment`);
and the one way the first bytes of a request a server could not take are written in a log
line (:func:`request_start`: the dashboard's and the simulators' HTTP servers); and what an error
said when a reason quotes it (:func:`error_text`: never empty, never a class's name).

A leaf of the base layer with no imports from the package, so the errors, the console, the
progress lines, the planner's messages and the simulator can all use it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Final

__all__ = [
    "NAME_NOT_TEXT",
    "REQUEST_START_BYTES",
    "aligned",
    "counted",
    "error_text",
    "is_text_path",
    "name_text",
    "millimetres",
    "noun",
    "quoted",
    "request_start",
    "utc_moment",
    "visible",
    "visible_lines",
]

#: From this many millimetres (a kilometre, absurd for a printer: a model in the wrong units or
#: a damaged file) a size is written as 1.0e+38, not as its 39 digits.
_ABSURD_MM: Final = 1e6
#: Joiners that some scripts (Persian, Indic) and emoji need inside a word: kept as they are.
_JOINERS: Final = frozenset("\u200c\u200d")


def noun(count: float, one: str, many: str | None = None) -> str:
    """The noun alone, agreeing with ``count``: ``one`` for exactly 1, else ``many``.

    ``many`` defaults to ``one + "s"``; pass it for the irregular ones ("copy", "copies").
    Zero and fractions take the plural ("0 builds", "1.5 days"), as English does.
    """
    if count == 1:
        return one
    return many if many is not None else one + "s"


def counted(count: float, one: str, many: str | None = None) -> str:
    """``count`` and its noun: ``counted(1, "build")`` is "1 build", ``counted(3, "build")``
    is "3 builds".

    A whole number is written as it is; a float as ``:g`` writes it ("2" for 2.0, "1.5"), the
    way the day counts of retention are shown.
    """
    number = f"{count:g}" if isinstance(count, float) else str(count)
    return f"{number} {noun(count, one, many)}"


def quoted(text: str, limit: int = 100) -> str:
    """``text`` quoted as Python writes it (escapes show a control character), its first
    ``limit`` characters only, then ``...``: what a request sent may be a megabyte."""
    if len(text) <= limit:
        return repr(text)
    shown = repr(text[:limit])
    return f"{shown[:-1]}...{shown[-1]}"


#: How much of a refused request's start a log line shows: enough for a method and a path.
REQUEST_START_BYTES: Final = 32


def error_text(error: BaseException) -> str:
    """What ``error`` says, for a reason a person reads: its own message; for an ``OSError``
    that has none, the system's words for its number; else "no details given". A reason once
    named the class instead (``OSError: ``), and without it an error with no message left the
    reason's parentheses empty."""
    said = str(error).strip()
    if said:
        return said
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return "no details given"


def request_start(data: bytes) -> str:
    """The first :data:`REQUEST_START_BYTES` of ``data``, cut at a query string (a token may
    ride in one) and at the first line's end (a header may be a cookie or a password: after a
    short request line such as ``GET /``, 32 bytes reached a session cookie's value),
    printable ASCII as it is and any other byte as ``\\xNN``: what a server logs of a request
    it could not take, safe for a log line whatever a client sent."""
    start = re.split(rb"[?\r\n]", data[:REQUEST_START_BYTES], maxsplit=1)[0]
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in start)


#: Why a file whose name is not UTF-8 is not taken (and what helps): no store, report or
#: console can write its name as text.
NAME_NOT_TEXT: Final = ("its name is not valid UTF-8 text, so the job store cannot record it; "
                        "rename it (letters, digits, - and _ are safe)")


def is_text_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` can be written as UTF-8 text: on POSIX a name is bytes, and one that
    is not UTF-8 is read by Python as half characters (U+DC80 to U+DCFF)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_text(path: str | os.PathLike[str]) -> str:
    """``path`` as text a store, a note or a log can hold: a name that is not UTF-8 (held by
    Python as half characters) with its bytes escaped (``caf\\xe9.stl``), the same each
    time; a text name as it is."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _hidden(char: str) -> bool:
    """A control character (Cc), an invisible format character (Cf: the bidi overrides and
    isolates, zero-width space, soft hyphen, BOM) other than the joiners, or half of a
    character (Cs: what a file name that is not UTF-8 holds once Python has read it)."""
    return unicodedata.category(char) in ("Cc", "Cf", "Cs") and char not in _JOINERS


def _escaped(char: str) -> str:
    """A hidden character as Python writes its escape; a byte of a file name that is not
    UTF-8 (POSIX names are bytes; Python reads each such byte as U+DC80 to U+DCFF) as that
    byte, ``caf\xe9.stl``: no terminal, store or report can write half a character, and
    printing one ended `run` with a UnicodeEncodeError."""
    if "\udc80" <= char <= "\udcff":
        return f"\\x{ord(char) - 0xDC00:02x}"
    return repr(char)[1:-1]


def visible(text: str) -> str:
    """``text`` with each hidden character written as the escape Python prints for it
    (``\\u202e``, ``\\n``), as :func:`quoted` shows them: a right-to-left override in a file
    name drew ``rtl<U+202E>gnp.stl`` as "rtllts.png", and a line break read as a space."""
    # Fast path, in C: a printable string holds no Cc or Cf character (Python's printable
    # excludes every "Other" category), so nothing in it is hidden. The dashboard runs every
    # string of every page through this on each refresh.
    if text.isprintable():
        return text
    return "".join(_escaped(c) if _hidden(c) else c for c in text)


def visible_lines(text: str) -> str:
    """``text`` with its line breaks (``\\n`` only) kept and every other hidden character
    written as :func:`visible` writes it: a carriage return in a path would otherwise draw
    over its own line. Split at ``\\n`` alone, as ``splitlines`` would also split at the
    separators a name may hold (``\\x1c``, ``\\x85``) and so keep them raw."""
    return "\n".join(visible(line) for line in text.split("\n"))


def aligned(rows: Iterable[Sequence[str]]) -> list[str]:
    """``rows`` (a header first) as lines of left-aligned columns two spaces apart, trailing
    spaces dropped. Each cell is shown as :func:`visible` shows it, and measured so: a cell
    measured raw and escaped when joined pushed every column after it out of line."""
    shown = [[visible(cell) for cell in row] for row in rows]
    widths = [max(map(len, column)) for column in zip(*shown, strict=True)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in shown]


def millimetres(size: Iterable[float]) -> str:
    """``size`` (x, y, z or any count of lengths) as ``12.0 x 3.5 x 1.0 mm``: a tenth of a
    millimetre each, but a length of a kilometre or more as ``1.0e+38``, so an absurd size
    still reads as one."""
    return " x ".join(f"{v:.1f}" if abs(v) < _ABSURD_MM else f"{v:.1e}" for v in size) + " mm"


def utc_moment(when: datetime) -> str:
    """``2026-12-07 10:02:00 UTC``: a moment (aware) as a person reads it in a message."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
