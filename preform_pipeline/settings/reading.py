"""What every section reader shares: where a value came from, and relative paths.

A reader gets the section's raw mapping (already valid against the schema), the folder its
relative paths start from, and ``source_of``, which names the file or environment variable a
key path came from, so that an error points at what the user has to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from preform_pipeline.userpath import expand_user
from preform_pipeline.yamlerrors import format_json_path

__all__ = ["BaseDir", "SourceOf", "resolve_path", "unknown_source"]

#: Names the file or environment variable that set a key path (``["servers", "count"]``).
SourceOf = Callable[[Sequence[str | int]], str]
#: The folder relative paths under a key path start from.
BaseDir = Callable[[Sequence[str]], Path]


def unknown_source(_key_path: Sequence[str | int]) -> str:
    """``source_of`` for sections read on their own (tests, code building settings by hand)."""
    return "settings"


def resolve_path(
    text: str, base: Path, key_path: Sequence[str | int], source_of: SourceOf = unknown_source,
    *, secret: bool = False,
) -> Path:
    """``text``, the value at ``key_path``, with ``~`` expanded (:func:`expand_user`, whose
    error names the key and where it was set, not ``text`` when it names a ``secret``'s file);
    a relative path is taken relative to ``base``."""
    path = expand_user(text, source=source_of(key_path), key=format_json_path(key_path),
                       secret=secret)
    return path if path.is_absolute() else base / path
