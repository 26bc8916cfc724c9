"""Pruning old run outputs: ``run.retention_days`` keeps an output folder from growing for ever.

Only what the pipeline writes is removed: files with the suffixes of its outputs (``.form``,
screenshots, reports, logs) and everything in the checkpoint folder, older (by modification
time) than the retention period; folders it left empty go too. Other files below the output
folder (a user's notes, models someone saved there) are never touched. Symbolic links are not
followed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from preform_pipeline.logging import get_logger
from preform_pipeline.outputfolders import CHECKPOINT_FOLDER
from preform_pipeline.wording import counted

__all__ = ["OUTPUT_SUFFIXES", "SECONDS_PER_DAY", "Pruned", "prune_outputs"]

SECONDS_PER_DAY: Final = 86400.0
#: Suffixes of the files a run writes below its output folder.
OUTPUT_SUFFIXES: Final = frozenset(
    {".form", ".png", ".webp", ".jpg", ".json", ".csv", ".jsonl", ".log", ".tmp"}
)

log = get_logger(__name__)


@dataclass(frozen=True)
class Pruned:
    """What one pruning removed: files (paths) and the bytes they held."""

    files: tuple[Path, ...]
    bytes: int
    days: float

    def describe(self, root: Path) -> str:
        """``retention: removed 3 files older than 30 days (1.2 MB): reports/a.json, ...``."""
        if not self.files:
            return f"retention: nothing older than {counted(self.days, 'day')} in {root}"
        shown = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
                 for p in self.files[:5]]
        more = f" and {len(self.files) - 5} more" if len(self.files) > 5 else ""
        return (
            f"retention: removed {counted(len(self.files), 'file')} "
            f"older than {counted(self.days, 'day')} ({self.bytes / 1e6:.1f} MB) from {root}: "
            f"{', '.join(shown)}{more}"
        )


def prune_outputs(
    root: Path, days: float, *, now: float | None = None, keep: Collection[Path] = ()
) -> Pruned:
    """Remove the pipeline's outputs below ``root`` last modified more than ``days`` ago
    (``now`` is wall-clock seconds); ``keep`` are paths never removed (the run's own log)."""
    cutoff = (time.time() if now is None else now) - days * SECONDS_PER_DAY
    kept = {Path(p).resolve() for p in keep}
    removed: list[Path] = []
    total = 0
    if not root.is_dir():
        return Pruned((), 0, days)
    emptied: set[Path] = set()
    for folder, _dirs, files in os.walk(root, topdown=False, followlinks=False):
        here = Path(folder)
        in_checkpoints = CHECKPOINT_FOLDER in here.relative_to(root).parts
        for name in files:
            path = here / name
            if not (in_checkpoints or path.suffix.lower() in OUTPUT_SUFFIXES):
                continue
            try:
                info = path.lstat()
                if info.st_mtime >= cutoff or path.resolve() in kept or path.is_symlink():
                    continue
                path.unlink()
            except OSError as exc:
                log.warning("retention_not_removed", path=str(path), error=str(exc))
                continue
            removed.append(path)
            total += info.st_size
            emptied.add(here)
        if here != root and (here in emptied or in_checkpoints):
            with contextlib.suppress(OSError):
                here.rmdir()  # only succeeds when empty
                emptied.add(here.parent)
    removed.sort()
    log.info("retention_pruned", root=str(root), days=days, files=len(removed), bytes=total,
             paths=[str(p) for p in removed])
    return Pruned(tuple(removed), total, days)
