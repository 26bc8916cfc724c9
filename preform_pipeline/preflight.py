"""Start-up checks of the folders and files a command will write, and a watch on them after.

A daemon told to watch an inbox that is a file used to log one line and watch nothing for
ever. :func:`check_paths` runs before anything starts and raises
:class:`~preform_pipeline.errors.UnusablePathError` naming every unusable path and what is
wrong with it: a file where a folder is expected, a folder where the store's database file is
expected, a missing parent that cannot be created, no write permission.

:class:`FolderMonitor` watches the same folders while a daemon runs: a folder that disappears
(an unmounted share, a deleted inbox) is logged as an error once, checked again on every call,
and logged again when it is back. It never recreates a folder itself: creating an empty
local folder where a network share should be mounted would hide the real problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from preform_pipeline.errors import UnusablePathError
from preform_pipeline.logging import get_logger
from preform_pipeline.userpath import expand_user

__all__ = [
    "FolderMonitor",
    "PathCheck",
    "check_paths",
    "file_problem",
    "folder_problem",
    "make_folders",
    "watch_paths",
]

log = get_logger(__name__)

Kind = Literal["folder", "file"]


@dataclass(frozen=True)
class PathCheck:
    """A path to check, what it must be, and its role in words (``"inbox"``, ``"job store"``)."""

    path: Path
    kind: Kind
    role: str


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0))


def _creatable(path: Path) -> str | None:
    """None when ``path`` (absent) can be created, else why not."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():
            return f"its parent {ancestor} is a broken symbolic link"
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is a file, not a folder"
    if not _writable(ancestor):
        return f"cannot be created: no permission to write in {ancestor}"
    return None


def folder_problem(path: Path, *, must_exist: bool = False) -> str | None:
    """What is wrong with ``path`` as a folder to write in, or None."""
    if path.is_dir():
        return None if _writable(path) else "is not writable (check its permissions)"
    if path.exists():
        return "is a file, not a folder"
    if path.is_symlink():
        return "is a broken symbolic link"
    if must_exist:
        return "does not exist (deleted, or a share that is not mounted)"
    return _creatable(path)


def file_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a file to read and write (a database), or None."""
    if path.is_dir():
        return (f"is a folder, not a file; name the database file itself, e.g. "
                f"{path / 'jobs.sqlite3'}")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return "is not readable and writable (check its permissions)"
        if not _writable(path.parent):
            return f"its folder {path.parent} is not writable (the database needs a journal)"
        return None
    if path.is_symlink():
        return "is a broken symbolic link"
    return _creatable(path)


def _absolute(check: PathCheck) -> Path:
    return expand_user(check.path, source=check.role).absolute()


def check_paths(checks: Iterable[PathCheck]) -> None:
    """Raise :class:`UnusablePathError` listing every unusable path; return when all are fine."""
    problems: list[tuple[str, Path, str]] = []
    for check in checks:
        path = _absolute(check)
        if any(path.is_relative_to(bad) for _, bad, _ in problems):
            continue  # inside a path already reported: saying it again adds nothing
        try:
            found = folder_problem(path) if check.kind == "folder" else file_problem(path)
        except OSError as exc:  # a name too long, say: the path cannot even be looked at
            found = f"cannot be used ({exc.strerror or exc})"
        if found is not None:
            problems.append((check.role, path, found))
    if problems:
        raise UnusablePathError(problems)


def make_folders(checks: Iterable[PathCheck]) -> None:
    """Make the folders of ``checks`` that are missing (after :func:`check_paths`).

    The check reads permissions, which is all it can read: a pseudo file system (``/proc``)
    grants root write access and still refuses a new folder. That refusal is an
    :class:`UnusablePathError` naming the path, as the check's own findings are.
    """
    for check in checks:
        if check.kind != "folder":
            continue
        path = _absolute(check)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnusablePathError(
                [(check.role, path, f"cannot be created ({exc.strerror or exc})")]
            ) from None


def watch_paths(
    inboxes: Sequence[tuple[Path, Sequence[Path]]],
    *,
    store: Path | None = None,
    output_root: Path | None = None,
) -> list[PathCheck]:
    """What ``watch`` writes: each inbox and its outcome folders, the store, the output root.

    ``inboxes`` pairs each inbox with its outcome folders (processing, done, failed).
    """
    checks: list[PathCheck] = []
    for inbox, folders in inboxes:
        checks.append(PathCheck(inbox, "folder", "inbox"))
        checks.extend(PathCheck(f, "folder", "outcome folder") for f in folders)
    if store is not None:
        checks.append(PathCheck(store, "file", "job store (store.path)"))
    if output_root is not None:
        checks.append(PathCheck(output_root, "folder", "output folder"))
    return checks


class FolderMonitor:
    """Reports folders that become unusable while a daemon runs, and when they are back.

    Call :meth:`check` now and then (each rescan); it returns the folders unusable now.
    """

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = tuple(dict.fromkeys(folders))
        self._bad: dict[Path, str] = {}

    def check(self) -> dict[Path, str]:
        for folder in self.folders:
            problem = folder_problem(folder, must_exist=True)
            before = self._bad.get(folder)
            if problem is not None and before is None:
                log.error("folder_unusable", folder=str(folder), problem=problem,
                          action="files there are not taken; checked again on every rescan")
                self._bad[folder] = problem
            elif problem is None and before is not None:
                log.warning("folder_usable_again", folder=str(folder), was=before)
                del self._bad[folder]
        return dict(self._bad)
