"""Local copies of shared source files, for nodes whose servers need local paths.

Several nodes of a farm take their files from one hot folder on a shared drive, but
PreFormServer imports only from a path of its own PC. So a node copies each file of a batch
into its own cache folder first, checks the copy against the content hash the file was
claimed under (a file changed or cut short on the share fails its job, and its case, with
that reason; the file is kept), lets the servers import the copy, and removes the copies once
the batch's builds are settled. Copies left by a node that died are pruned when it starts.
A copy found gone when a server is to import it (something else cleaned the cache folder,
even while a server read it: the executor asks again once) is made again from the shared
file, checked against the same hash: the build's cases go on.

The job's identity stays its shared path: only the import reads the copy
(``RunOptions.import_from``).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from preform_pipeline.errors import SourceCopyError
from preform_pipeline.logging import get_logger
from preform_pipeline.store import Job
from preform_pipeline.store.content import content_hash

__all__ = ["LOCAL_COPIES_DIR_NAME", "LocalCopies"]

log = get_logger(__name__)

#: Name of the cache folder inside the user's data folder (one sub-folder per node).
LOCAL_COPIES_DIR_NAME: Final = "local-copies"


@dataclass(frozen=True)
class _Copy:
    """A copy of a running batch's file: where it is, and the hash it was claimed under."""

    path: Path
    job_key: str
    content_hash: str | None


class LocalCopies:
    """A node's cache of local copies, one sub-folder per job (by its key)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        #: Shared path -> its local copy, for the batches running now.
        self._copies: dict[Path, _Copy] = {}

    def prune(self) -> int:
        """Remove every copy left in the folder (a previous life's); how many folders."""
        if not self.folder.is_dir():
            return 0
        stale = [p for p in self.folder.iterdir()]
        for path in stale:
            _remove(path)
        if stale:
            log.info("local_copies_pruned", folder=str(self.folder), count=len(stale))
        return len(stale)

    def take(self, job: Job) -> Path:
        """Copy ``job``'s file here and check it (SourceCopyError: the copy is removed, the
        shared file is left as it is); the copy's path."""
        target = self._copy(job.source_path, job.job_key, job.content_hash)
        with self._lock:
            self._copies[job.source_path] = _Copy(target, job.job_key, job.content_hash)
        log.info("local_copy_made", job_key=job.job_key, source=str(job.source_path),
                 copy=str(target))
        return target

    def _copy(self, source: Path, job_key: str, claimed: str | None) -> Path:
        """Copy ``source`` to its job's place here, checked against ``claimed``."""
        target = self.folder / job_key / source.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            digest = content_hash(target)
        except OSError as exc:
            _remove(target.parent)
            raise SourceCopyError(
                f"{source}: cannot copy it to this node ({target.parent}): {exc}",
                hint="check the shared drive and the free space of the node's cache folder "
                "(hotfolders.local_copy_dir), then drop the file again",
            ) from exc
        if claimed is not None and digest != claimed:
            _remove(target.parent)
            raise SourceCopyError(
                f"{source}: its content changed after it was taken (claimed as "
                f"{claimed[:19]}…, the copy is {digest[:19]}…)",
                hint="the file was changed or cut short on the shared drive; drop the whole "
                "file again",
            )
        return target

    def import_from(self, path: Path) -> Path:
        """The local copy of the shared file at ``path`` (the path itself if none), made
        again if it is gone (SourceCopyError when it cannot be: the shared file changed or
        is unreadable)."""
        with self._lock:
            copy = self._copies.get(path)
        if copy is None:
            return path
        if not copy.path.is_file():
            # Removed under a running batch (a prune or a person cleaning the folder): the
            # server would answer FILE_NOT_FOUND and fail the whole build.
            self._copy(path, copy.job_key, copy.content_hash)
            log.warning("local_copy_remade", job_key=copy.job_key, source=str(path),
                        copy=str(copy.path))
        return copy.path

    def release(self, jobs: Iterable[Job]) -> None:
        """Remove the copies of ``jobs`` (their builds are settled)."""
        for job in jobs:
            with self._lock:
                copy = self._copies.pop(job.source_path, None)
            if copy is not None:
                _remove(copy.path.parent)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:  # pruned at the next start
        log.warning("local_copy_not_removed", path=str(path), error=str(exc))
