"""A real small disk for the tests of a full one: a tmpfs of a few hundred KiB mounted under a
test's folder, filled to the last byte by a file and freed by removing it.

Mounting needs root on Linux. CI runs as root on Linux (.ci/run), so there a disk that cannot
be mounted fails the test; elsewhere (a newcomer's machine, macOS, Windows) the test is
skipped with :data:`SKIP_REASON`, registered in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = ["SKIP_REASON", "SmallDisk", "looks_at_disks", "mounted_small_disk"]

#: The skip's reason when no tmpfs can be mounted here (registered in tests/conftest.py).
SKIP_REASON: Final = "mounting a small tmpfs needs root on Linux"
#: What a test's disk holds unless it asks for another size: room for a store and a few
#: model files, filled in well under a second.
DEFAULT_SIZE_KIB: Final = 512
_CHUNK: Final = b"\0" * 4096


@dataclass(frozen=True)
class SmallDisk:
    """A mounted tmpfs: ``root`` is its top folder."""

    root: Path

    @property
    def filler(self) -> Path:
        return self.root / "filler"

    def fill(self) -> None:
        """Write the filler until the disk refuses one more byte (ENOSPC)."""
        with open(self.filler, "ab", buffering=0) as file:
            for size in (len(_CHUNK), 1):  # pages, then the last bytes of a partial page
                chunk = _CHUNK[:size]
                try:
                    while file.write(chunk):
                        pass
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        assert self.free_bytes() == 0, "the small disk still has room"

    def free(self) -> None:
        """Remove the filler: the disk has its room back."""
        self.filler.unlink(missing_ok=True)

    def use_up_files(self) -> list[Path]:
        """Make empty files until the disk refuses one more (ENOSPC: a disk mounted with
        ``inodes``); those made, oldest first. Its bytes stay free."""
        made: list[Path] = []
        while True:
            path = self.root / f"file-{len(made)}"
            try:
                path.touch()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return made
            made.append(path)

    def free_bytes(self) -> int:
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run the full-disk tests: {SKIP_REASON} ({reason})")
    pytest.skip(f"{SKIP_REASON} ({reason})")


@contextlib.contextmanager
def mounted_small_disk(where: Path, size_kib: int = DEFAULT_SIZE_KIB, *,
                       inodes: int | None = None) -> Iterator[SmallDisk]:
    """A tmpfs of ``size_kib`` KiB mounted at ``where`` (made), unmounted when done;
    ``inodes``: at most that many files and folders (its root among them), so a disk with
    bytes to spare can refuse a new folder (ENOSPC) as a real disk does when full; 0: no
    count of files at all (statvfs then says 0 files, 0 free, as btrfs, FAT and SMB do)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        _unavailable("not root on Linux")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o",
         f"size={size_kib}k,mode=0755" + (f",nr_inodes={inodes}" if inodes is not None else ""),
         "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        _unavailable(done.stderr.strip() or f"mount exit status {done.returncode}")
    try:
        yield SmallDisk(where)
    finally:
        # A process the test started may still hold a file open a moment: detach lazily
        # rather than leave the mount behind for good.
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def looks_at_disks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the looks at a disk's free space and files from now on: the folder of every
    ``os.statvfs`` call, in order (the real call answers each)."""
    looks: list[Path] = []
    real = os.statvfs

    def statvfs(path: Any) -> os.statvfs_result:
        looks.append(Path(path))
        return real(path)

    monkeypatch.setattr(os, "statvfs", statvfs)
    return looks
