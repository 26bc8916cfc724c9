"""When is a dropped file complete? Format rules first, then a quiet period.

A file copied into an inbox appears long before its last byte: the daemon must take it only
when it is whole. The rules, by kind (:func:`kind_of`):

=========  ============================================================================
STL        binary: size is exactly ``84 + 50 x`` the triangle count in its header;
           ASCII: the last line ends the solid (``endsolid``)
3MF        the zip's central directory (written last) is intact and names a model part
other      OBJ files, sidecars and unknown files: size and mtime unchanged for the
           inbox's quiet period
=========  ============================================================================

An STL or 3MF that never satisfies its rule (a truncated upload) is *stalled* once it has
not changed for ``incomplete_timeout_s``: it is taken anyway, so it ends in ``failed/`` with
the reader's reason instead of sitting in the inbox for ever. An STL of 84 bytes or less
has no triangles yet (some writers patch the count in last), so it gets the quiet period.
An STL or 3MF whose first bytes show it is something else (a PNG, a PDF, plain notes) would
never pass its rule either; it gets the quiet period like any other file, and then fails with
what it really is.
In polling mode (network shares, where a copy may preallocate the final size) a file that
passes its rule must also look the same on two observations in a row.

Before any of that, :func:`drop_refusal` refuses what must not be read at all: a symbolic
link out of the inbox (unless ``hotfolders.follow_symlinks`` allows it), a link to a folder,
and pipes, sockets and devices (opening a pipe would block the daemon for ever). Such a drop
goes to ``failed/`` with a note and is never opened.

Temporary and hidden files (``.tmp``, ``.part``, ``~`` and dotfiles) are ignored: editors and
copy tools write those and rename them when done.

Time comes from an injected :class:`Clock` (monotonic seconds), so tests drive it by hand.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from preform_pipeline.clock import Clock
from preform_pipeline.geometry.completeness import BINARY_STL_HEADER_BYTES, format_completeness

__all__ = [
    "BINARY_STL_HEADER_BYTES",
    "BINARY_STL_TRIANGLE_BYTES",
    "IGNORED_PREFIXES",
    "IGNORED_SUFFIXES",
    "MODEL_SUFFIXES",
    "SIDECAR_SUFFIXES",
    "Check",
    "FileKind",
    "Refusal",
    "StabilityTracker",
    "Verdict",
    "drop_refusal",
    "entry_refusal",
    "is_ignored_name",
    "kind_of",
]

BINARY_STL_TRIANGLE_BYTES: Final = 50
MODEL_SUFFIXES: Final = frozenset({".stl", ".obj", ".3mf"})
SIDECAR_SUFFIXES: Final = frozenset({".json", ".yaml", ".yml"})
#: Names of files still being written by some tool, or not meant for anyone.
IGNORED_SUFFIXES: Final = (".tmp", ".part", ".partial", ".crdownload", ".download", "~")
IGNORED_PREFIXES: Final = (".", "~")


class FileKind(str, Enum):
    STL = "stl"
    THREEMF = "3mf"
    OBJ = "obj"
    SIDECAR = "sidecar"
    OTHER = "other"


class Verdict(str, Enum):
    """What to do with a file now."""

    COMPLETE = "complete"  # take it
    WAIT = "wait"  # look again later
    STALLED = "stalled"  # never became complete: take it, it will fail with the reason
    IGNORE = "ignore"  # temporary or hidden: never take it
    GONE = "gone"  # it disappeared (renamed, deleted, taken by someone else)


@dataclass(frozen=True)
class Check:
    """One look at one file: the verdict and a reason a person can read."""

    verdict: Verdict
    reason: str
    size: int = 0
    #: WAIT only on time (a quiet period, a confirming look), not on content still missing:
    #: the file will be taken soon without anything else happening.
    settling: bool = False

    @property
    def takeable(self) -> bool:
        return self.verdict in (Verdict.COMPLETE, Verdict.STALLED)


def is_ignored_name(name: str) -> bool:
    """True for temporary and hidden names (``.x``, ``~x``, ``x.tmp``, ``x.part``, ``x~``)."""
    lower = name.lower()
    return name.startswith(IGNORED_PREFIXES) or lower.endswith(IGNORED_SUFFIXES)


def kind_of(path: Path) -> FileKind:
    suffix = path.suffix.lower()
    if suffix == ".stl":
        return FileKind.STL
    if suffix == ".3mf":
        return FileKind.THREEMF
    if suffix == ".obj":
        return FileKind.OBJ
    if suffix in SIDECAR_SUFFIXES:
        return FileKind.SIDECAR
    return FileKind.OTHER


def _binary_count(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            handle.seek(80)
            raw = handle.read(4)
    except OSError:
        return None
    return struct.unpack("<I", raw)[0] if len(raw) == 4 else None


def _stl_reason(path: Path, size: int) -> str:
    count = _binary_count(path)
    if count is not None and size == BINARY_STL_HEADER_BYTES + BINARY_STL_TRIANGLE_BYTES * count:
        return f"binary STL: size {size} = 84 + 50 x {count} triangles"
    return "ASCII STL: ends with endsolid"


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    first_seen: float
    changed_at: float
    looks: int = 1


class StabilityTracker:
    """Remembers what each file looked like, and judges it on every :meth:`check`.

    Not thread-safe: one thread (the daemon's loop) checks files.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        quiet_period_s: float,
        incomplete_timeout_s: float,
        confirm_unchanged: bool = False,
    ) -> None:
        self.clock = clock
        self.quiet_period_s = quiet_period_s
        self.incomplete_timeout_s = incomplete_timeout_s
        self.confirm_unchanged = confirm_unchanged
        self._seen: dict[Path, _Seen] = {}

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def __len__(self) -> int:
        return len(self._seen)

    def _observe(self, path: Path) -> tuple[_Seen, bool] | None:
        """Record what the file looks like now; (record, unchanged since the last look)."""
        try:
            st = os.stat(path)
        except OSError:
            self._seen.pop(path, None)
            return None
        now = self.clock.monotonic()
        seen = self._seen.get(path)
        if seen is None:
            seen = _Seen(st.st_size, st.st_mtime_ns, now, now)
            self._seen[path] = seen
            return seen, False
        unchanged = (seen.size, seen.mtime_ns) == (st.st_size, st.st_mtime_ns)
        if not unchanged:
            seen.size, seen.mtime_ns, seen.changed_at = st.st_size, st.st_mtime_ns, now
        seen.looks += 1
        return seen, unchanged

    def quiet_for(self, path: Path) -> float:
        """Seconds since the file last changed (0 when never seen)."""
        seen = self._seen.get(path)
        return 0.0 if seen is None else self.clock.monotonic() - seen.changed_at

    def check(self, path: Path) -> Check:
        """Look at ``path`` now and judge it (see the module docstring)."""
        if is_ignored_name(path.name):
            return Check(Verdict.IGNORE, "temporary or hidden file")
        observed = self._observe(path)
        if observed is None:
            return Check(Verdict.GONE, "the file is no longer there")
        seen, unchanged = observed
        quiet = self.clock.monotonic() - seen.changed_at
        kind = kind_of(path)
        whole = format_completeness(path, seen.size)
        if whole is not None:
            if whole:
                if self.confirm_unchanged and not unchanged:
                    return Check(Verdict.WAIT, "complete; confirming it stays unchanged",
                                 seen.size, settling=True)
                reason = (
                    _stl_reason(path, seen.size)
                    if kind is FileKind.STL
                    else "3MF: zip directory intact"
                )
                return Check(Verdict.COMPLETE, reason, seen.size)
            if quiet >= self.incomplete_timeout_s:
                what = "STL" if kind is FileKind.STL else "3MF"
                return Check(
                    Verdict.STALLED,
                    f"{what} still incomplete after {quiet:.0f} s without change "
                    f"(size {seen.size} bytes)",
                    seen.size,
                )
            return Check(Verdict.WAIT, "still being written", seen.size)
        if quiet >= self.quiet_period_s and seen.looks > 1:
            return Check(
                Verdict.COMPLETE,
                f"size and mtime unchanged for {quiet:.1f} s",
                seen.size,
            )
        return Check(
            Verdict.WAIT, f"waiting for {self.quiet_period_s:g} s of quiet", seen.size,
            settling=True,
        )


@dataclass(frozen=True)
class Refusal:
    """Why a drop is not read: a sentence, what to do, and every path it holds."""

    reason: str
    todo: str
    paths: tuple[Path, ...]
    is_case: bool = False


_FOLLOW_HINT = "drop the file itself, or set hotfolders.follow_symlinks: true in the settings"


def entry_refusal(path: Path, inbox: Path, *, follow_symlinks: bool) -> tuple[str, str] | None:
    """``(reason, what to do)`` when ``path`` must not be opened, else None.

    A link whose target is missing is not refused here: it looks like a file that is gone.
    """
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
            info = os.stat(path)
        except (OSError, RuntimeError):
            return None
        if stat.S_ISDIR(info.st_mode):
            if not follow_symlinks or path.absolute().is_relative_to(target):
                return (f"is a symbolic link to the folder {target}; linked folders are not "
                        "followed", "drop the folder itself")
        elif not follow_symlinks and not target.is_relative_to(inbox.resolve()):
            return (f"is a symbolic link to {target}, outside the inbox; links out of the "
                    "inbox are not followed", _FOLLOW_HINT)
    if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return None
    return ("is not a regular file (a pipe, socket or device)", "drop ordinary files only")


def drop_refusal(root: Path, inbox: Path, *, follow_symlinks: bool) -> Refusal | None:
    """A :class:`Refusal` when the drop at ``root`` (a file or a case folder) holds an entry
    that must not be opened (:func:`entry_refusal`); the whole drop is refused then."""
    found = entry_refusal(root, inbox, follow_symlinks=follow_symlinks)
    if found is not None:
        return Refusal(found[0], found[1], (root,))
    if root.is_symlink() or not root.is_dir():
        return None
    entries: list[Path] = []
    first: tuple[str, str] | None = None
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if is_ignored_name(name):
                continue
            problem = entry_refusal(path, inbox, follow_symlinks=follow_symlinks)
            if problem is not None and first is None:
                rel = path.relative_to(root).as_posix()
                first = (f"{rel} {problem[0]}", problem[1])
            if name in files or path.is_symlink():
                entries.append(path)
    if first is None:
        return None
    return Refusal(f"the case folder holds an entry that is not read: {first[0]}", first[1],
                   tuple(entries), is_case=True)
