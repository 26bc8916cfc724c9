"""A batch abandoned because the job store was away (its disk full, its database restarting).

Its jobs go back to batching and the batch is tried again. A full disk may last hours, and
each try read the batch's models again (a large mesh read, a guessed unit said again) only to
fail at the same write, once every batching window. So the tries rest, longer each time: the
first after the batching window (at least :data:`MIN_REST_S`), each next twice as long as the
one before, at most :data:`MAX_REST_S` (docs/hotfolder.md), until a batch's builds are
recorded again. The outage is said once (``batch_abandoned``, with the rest and its limit),
each later try at debug level; the models read for a try are kept for the next one and read
again only if their file changed (or they are read for another recipe).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from preform_pipeline.backoff import backoff
from preform_pipeline.store import Job

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import ModelInfo


__all__ = ["MAX_REST_S", "MIN_REST_S", "BatchRest", "Try"]

#: The longest rest between two tries of a batch while the store stays away: an outage that
#: ends is noticed within five minutes.
MAX_REST_S: Final = 300.0
#: The shortest: a batching window of 0 would otherwise try again at every pass of the loop.
MIN_REST_S: Final = 0.1


@dataclass(frozen=True)
class Try:
    """One abandoned try: the rest before the next (seconds), and whether it is the first
    of its outage (said as a warning; the later ones at debug level)."""

    rest_s: float
    first: bool


@dataclass(frozen=True)
class _Read:
    """What a kept model was read as: the recipe, the job and its file as it was then."""

    recipe: str
    job_id: int
    file: tuple[int, int, int, int]  # inode, size, modification and change times (ns)


def _file_of(path: Path) -> tuple[int, int, int, int] | None:
    # The change time too: a file written over in place with as many bytes (a binary STL of
    # as many triangles) and its modification time put back (``cp -p``) keeps the other
    # three, but nobody can set the change time.
    try:
        stat = os.stat(path)
    except OSError:
        return None  # read again: the read says what became of it
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class BatchRest:
    """The tries of abandoned batches and their kept models (shared by the worker threads)."""

    def __init__(self, window_s: float) -> None:
        self._first_s = max(window_s, MIN_REST_S)
        self._lock = threading.Lock()
        self._tries = 0
        self._kept: dict[Path, tuple[_Read, ModelInfo]] = {}

    def abandoned(self, recipe: str, jobs: Sequence[Job], models: Iterable[ModelInfo]
                  ) -> Try:
        """A batch of ``recipe`` was abandoned while the store was away: its ``models``
        (read for ``jobs``) are kept for its next try; when that comes and whether to say it."""
        job_of = {job.source_path: job.id for job in jobs}
        with self._lock:
            for model in models:
                job_id, file = job_of.get(model.path), _file_of(model.path)
                if job_id is not None and file is not None:
                    self._kept[model.path] = (_Read(recipe, job_id, file), model)
            done = Try(backoff(self._tries, self._first_s, MAX_REST_S), self._tries == 0)
            self._tries += 1
        return done

    def recorded(self) -> None:
        """A batch's builds were recorded: the store takes writes again, and a next outage
        is said again. Models kept for a batch not tried yet are read again then."""
        with self._lock:
            self._tries = 0
            self._kept.clear()

    def take(self, recipe: str, jobs: Iterable[Job]) -> dict[Path, ModelInfo]:
        """The kept models of ``jobs`` (by file) whose file has not changed since; each is
        taken once (the try that takes it keeps it again if it is abandoned too)."""
        taken: dict[Path, ModelInfo] = {}
        with self._lock:
            for job in jobs:
                kept = self._kept.pop(job.source_path, None)
                if kept is None:
                    continue
                read, model = kept
                file = _file_of(job.source_path)
                if file is not None and read == _Read(recipe, job.id, file):
                    taken[job.source_path] = model
        return taken
