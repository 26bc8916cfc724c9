"""What every section reader shares: where a value came from, and relative paths.

A reader gets the section's raw mapping (already valid against the schema), the folder its
relative paths start from, and ``source_of``, which names the file or environment variable a
key path came from, so that an error points at what the user has to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from preform_pipeline.errors import ConfigError

__all__ = ["BaseDir", "SourceOf", "resolve_path", "unknown_source"]

#: Names the file or environment variable that set a key path (``["servers", "count"]``).
SourceOf = Callable[[Sequence[str | int]], str]
#: The folder relative paths under a key path start from.
BaseDir = Callable[[Sequence[str]], Path]


def unknown_source(_key_path: Sequence[str | int]) -> str:
    """``source_of`` for sections read on their own (tests, code building settings by hand)."""
    return "settings"


def resolve_path(text: str, base: Path) -> Path:
    """``text`` with ``~`` expanded; a relative path is taken relative to ``base``. A
    ``~name`` naming no user of this machine is a ConfigError (Python's "Could not determine
    home directory" ended the command with a traceback)."""
    try:
        path = Path(text).expanduser()
    except RuntimeError:
        user = Path(text).parts[0]
        raise ConfigError(
            f"{text!r}: {user} names the home folder of user {user[1:]!r}, who has none on "
            "this machine",
            hint="write the folder out in full, or start it with ~/ for your own home",
        ) from None
    return path if path.is_absolute() else base / path
