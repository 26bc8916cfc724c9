"""Empty output files that an earlier version's killed save may have left: listed once, kept.

Before session 32 a save first claimed its output's name as an empty file, then had the server
write the whole file elsewhere and renamed it over that name; a run killed in between left the
empty name beside the user's files for good (this version takes a name only with the whole
file: :mod:`.outputs`). Nothing proves such a file ours: it has the output's own name (no
temporary's pattern), the store recorded a build's ``.form`` only after its save, and a time
says nothing of who made a file (an empty placeholder a person or another program made looks
the same). So such files are never removed. A run lists those below its output folder in its
closing lines, each once (the store remembers what it said: ``note_notice``, with the file's
size and time, so a new empty file at that name is said again), and logs
``empty_outputs_listed``, for a person to delete.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Final

from preform_pipeline.logging import get_logger
from preform_pipeline.store import JobStore
from preform_pipeline.wording import counted

__all__ = ["EMPTY_OUTPUT_NOTICE", "describe_empty_outputs", "empty_outputs",
           "unsaid_empty_outputs"]

#: The notices' key prefix in the store (one notice per file).
EMPTY_OUTPUT_NOTICE: Final = "empty output"

_log = get_logger(__name__)


def empty_outputs(root: Path, suffixes: Collection[str], *, before: float) -> tuple[Path, ...]:
    """The empty regular files below ``root`` with one of ``suffixes`` (an output's, as the
    recipe names them) last changed before ``before`` (seconds since the epoch: this run's
    start, so nothing another run is saving now), sorted. Folders whose name starts with a dot
    (staging, checkpoints) are not looked in; links are not followed."""
    found: list[Path] = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix.lower() not in suffixes:
                continue
            try:
                info = path.lstat()
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISREG(info.st_mode) and info.st_size == 0 and info.st_mtime < before:
                found.append(path)
    return tuple(sorted(found))


def unsaid_empty_outputs(store: JobStore, paths: Sequence[Path]) -> tuple[Path, ...]:
    """Those of ``paths`` no run has said yet (each is recorded as said now)."""
    unsaid: list[Path] = []
    for path in paths:
        try:
            info = path.lstat()
        except OSError:
            continue
        if store.note_notice(f"{EMPTY_OUTPUT_NOTICE} {path}",
                             f"{info.st_size} {info.st_mtime_ns}"):
            unsaid.append(path)
    if unsaid:
        _log.info("empty_outputs_listed", paths=[str(p) for p in unsaid])
    return tuple(unsaid)


def describe_empty_outputs(paths: Sequence[Path], root: Path) -> str:
    """One line for a run's closing lines ("" when there are none)."""
    if not paths:
        return ""
    names = ", ".join(str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
                      for p in paths)
    return (f"{counted(len(paths), 'empty output file')} in {root}, as a save killed by an "
            "earlier version left them; not removed (nothing shows they are not yours), "
            f"said once: delete them if they are not yours: {names}")
