"""Counted nouns: the one rule for writing "1 build" but "2 builds" in what a user reads;
and the one way a message quotes a value someone else sent, cut short (:func:`quoted`).

A leaf of the base layer with no imports from the package, so the errors, the console, the
progress lines, the planner's messages and the simulator can all use it.
"""

from __future__ import annotations

__all__ = ["counted", "noun", "quoted"]


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
