"""A network share's stand-in for the tests of one that goes away: a folder bind-mounted at
the inbox's path, unmounted (its empty mount point left, as a NAS reboot leaves it) and
mounted again with all it held, under the same inodes.

Mounting needs root on Linux. CI runs as root on Linux (.ci/run), so there a share that
cannot be mounted fails the test; elsewhere the test is skipped with :data:`SKIP_REASON`,
registered in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

__all__ = ["SKIP_REASON", "Share", "mounted_share"]

#: The skip's reason when no folder can be bind-mounted here (registered in tests/conftest.py).
SKIP_REASON: Final = "bind-mounting a share's stand-in needs root on Linux"


class Share:
    """``content`` (the share's own folder) mounted at ``at`` while :attr:`mounted`."""

    def __init__(self, content: Path, at: Path) -> None:
        self.content, self.at = content, at
        self.mounted = False

    def mount(self) -> None:
        subprocess.run(["mount", "--bind", str(self.content), str(self.at)], check=True,
                       capture_output=True)
        self.mounted = True

    def read_only(self) -> None:
        """The share as an account that may read it and change nothing: every removal in it
        fails with ``EROFS``."""
        subprocess.run(["mount", "-o", "remount,bind,ro", str(self.at)], check=True,
                       capture_output=True)

    def unmount(self) -> None:
        """Away: ``at`` is its empty mount point again."""
        subprocess.run(["umount", str(self.at)], check=True, capture_output=True)
        self.mounted = False


@contextlib.contextmanager
def mounted_share(content: Path, at: Path) -> Iterator[Share]:
    """``content`` and ``at`` made, the one mounted at the other; unmounted when done."""
    if sys.platform != "linux" or os.geteuid() != 0:
        _unavailable("not root on Linux")
    content.mkdir(parents=True, exist_ok=True)
    at.mkdir(parents=True, exist_ok=True)
    share = Share(content, at)
    try:
        share.mount()
    except subprocess.CalledProcessError as exc:
        _unavailable(exc.stderr.decode(errors="replace").strip() or str(exc))
    try:
        yield share
    finally:
        if share.mounted and subprocess.run(["umount", str(at)], capture_output=True,
                                            check=False).returncode:
            # (A watch or a file a test left open a moment: detached lazily, never left.)
            subprocess.run(["umount", "-l", str(at)], capture_output=True, check=False)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run the share tests: {SKIP_REASON} ({reason})")
    pytest.skip(f"{SKIP_REASON} ({reason})")
