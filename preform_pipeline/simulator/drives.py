"""The Windows drives a simulated PreFormServer plays as mounted (``--drive Z:=/srv/share``).

Apart from the request bodies that read paths (``bodies.py``, numpy's geometry with them), so
that the command line sets them without importing numpy: a start that never reaches its
engine (``--help``, a usage error, ``--fail-start``) does without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

__all__ = ["mount_drives", "mounted_drives", "on_drive"]

#: Drive letters this simulator process plays as mounted (``Z:`` → a local folder); set once
#: at start-up by ``--drive`` (a process plays one machine, so this is process-wide).
_DRIVES: dict[str, Path] = {}


def mount_drives(drives: Mapping[str, Path]) -> None:
    """Play a Windows machine with ``drives`` mounted (``{"Z:": Path("/srv/share")}``)."""
    _DRIVES.clear()
    _DRIVES.update({letter.upper(): folder for letter, folder in drives.items()})


def on_drive(text: str) -> Path | None:
    """The local path of ``Z:\\models\\a.stl`` when ``Z:`` is mounted, else None."""
    windows = PureWindowsPath(text)
    folder = _DRIVES.get(windows.drive.upper()) if windows.drive else None
    if folder is None or not windows.root:
        return None
    return folder.joinpath(*windows.parts[1:])


def mounted_drives() -> list[str]:
    """The drive letters mounted (``["Y:", "Z:"]``), sorted; empty when none is."""
    return sorted(_DRIVES)
