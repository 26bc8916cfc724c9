"""Counted nouns: the one rule for writing "1 build" but "2 builds" in what a user reads;
the one way a message quotes a value someone else sent, cut short (:func:`quoted`); and the one
way text is shown on a terminal or in a note with its control characters visible, not obeyed
(:func:`printable`).

A leaf of the base layer with no imports from the package, so the errors, the console, the
progress lines, the planner's messages and the simulator can all use it.
"""

from __future__ import annotations

__all__ = ["counted", "noun", "printable", "quoted"]


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


# Every C0 and C1 control character and DEL, as Python writes it in a string's repr ("\n",
# "\x1b", "\x9b"). A file name may hold any of them (POSIX names are bytes): written raw,
# ESC and CSI start terminal commands (a drop named "\x1b[2J.stl" would clear the operator's
# screen, an OSC sequence retitle the window), a line break splits a note's labelled lines.
_CONTROL_ESCAPES: dict[int, str] = {
    code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0))
}


def printable(text: str) -> str:
    """``text`` with each control character written as its escape (``\\n``, ``\\x1b``), so a
    name shown on a console or in a note is seen as it is and cannot steer the terminal."""
    return text.translate(_CONTROL_ESCAPES)
