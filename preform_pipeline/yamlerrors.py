"""Saying plainly what PyYAML's syntax errors mean, for recipes and settings alike, and
writing the key path of a problem the way both show it (:func:`format_json_path`).

PyYAML reports a tab used for indentation as "found character '\\t' that cannot start any
token", which users do not read as "you typed a tab". :func:`describe_yaml_error` turns a
``yaml.YAMLError`` into a 1-based position and a sentence that names the usual causes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import yaml

__all__ = ["describe_yaml_error", "format_json_path"]


def format_json_path(path: Sequence[str | int]) -> str:
    """``("steps", 2, "auto_support")`` -> ``$.steps[2].auto_support``."""
    out = "$"
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif elem.isidentifier():
            out += f".{elem}"
        else:
            out += "[" + repr(elem) + "]"
    return out

_TAB: Final = "a tab character; YAML indents with spaces only (replace the tab with spaces)"
_EXPLAINED: Final[tuple[tuple[str, str], ...]] = (
    ("found character '\\t' that cannot start any token", _TAB),
    ("found a tab character", _TAB),
    (
        "mapping values are not allowed here",
        "a ':' where a value was expected (quote values that contain ': ', or fix the "
        "indentation of this line)",
    ),
)


def describe_yaml_error(
    exc: yaml.YAMLError, text: str = ""
) -> tuple[int | None, int | None, str]:
    """``(line, column, message)`` of a YAML syntax error; positions are 1-based or None.

    ``text`` is the document: the character at the error's position tells a tab apart (the
    C parser's message does not show it).
    """
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or "")
        if mark is not None and _char_at(text, int(mark.line), int(mark.column)) == "\t":
            return (*_position(mark), f"YAML syntax error: {_TAB}")
        for raw, plain in _EXPLAINED:
            if raw in problem:
                return (*_position(mark), f"YAML syntax error: {plain}")
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return (*_position(mark), f"YAML syntax error: {what}")
    return None, None, f"YAML error: {exc}"


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def _position(mark: object) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return int(getattr(mark, "line", 0)) + 1, int(getattr(mark, "column", 0)) + 1
