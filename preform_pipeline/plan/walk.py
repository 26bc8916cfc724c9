"""Which files a folder named on the command line holds, and the case each is of.

Apart from the planner (:mod:`preform_pipeline.plan.builds`, which imports numpy and the
geometry) because finding the files is all a cron ``run`` whose models were all printed
does: its start stays light (tests/unit/test_cli_start_imports.py).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["case_folder", "walk_folder"]


def case_folder(named: Path, file: Path, *, named_is_case: bool = False) -> Path | None:
    """The case folder of ``file``, found below the folder ``named`` on the command line: the
    folder directly below ``named`` that holds it, subfolders and all, as the hot folder takes
    a folder dropped into its inbox whole (``inbox/C-1042/scans/upper.stl`` is case
    ``C-1042``). ``named`` itself when it is a case (``named_is_case``: ``run C-1042/`` on a
    folder its case's sidecar marks), subfolders and all. None for ``named``'s own files
    otherwise: named on the command line, a folder is an inbox, and a file loose in it is no
    case's, as a file dropped straight into the hot folder's inbox is none's. The one rule for
    ``plan``, ``run`` and the hot folder alike."""
    if named_is_case:
        return named
    parts = file.relative_to(named).parts
    return named / parts[0] if len(parts) > 1 else None


def walk_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """The entries that are not folders at any depth below ``folder``, sorted, and the
    folders there (``folder`` too) that could not be listed: a folder the user may not read
    must be named, never taken for an empty one. Links to folders are not followed; every
    other entry is listed, whatever it is (a file, a link to one, a named pipe, a device, a
    link to nothing or to itself), so that one named like a model is judged and refused
    with its reason, not passed over in silence."""
    unlisted: list[Path] = []
    files: list[Path] = []
    for top, _, names in os.walk(folder, onerror=lambda e: unlisted.append(Path(e.filename))):
        files.extend(Path(top) / n for n in names)
    return sorted(files), unlisted
