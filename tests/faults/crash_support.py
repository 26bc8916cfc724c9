"""Helpers of the crash tests: finding the moment a print is being sent, or a file moved."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from pathlib import Path

__all__ = [
    "FILE_MOMENTS",
    "builds_recorded",
    "sending_now",
    "wait_until_claimed",
    "wait_until_moved",
    "wait_until_sending",
]

#: Moments a job's file is on the move, as counts of the store's job rows: one more job was
#: just taken (its row names processing/, the file follows), or just settled (its row names
#: done/ or failed/, the file and its sidecars follow, then its processing/ folder goes).
FILE_MOMENTS = {
    "taken": f"SELECT count(*) FROM jobs WHERE source_path LIKE '%{os.sep}processing{os.sep}%'",
    "settled": f"SELECT count(*) FROM jobs WHERE source_path LIKE '%{os.sep}done{os.sep}%' "
               f"OR source_path LIKE '%{os.sep}failed{os.sep}%'",
}


def _count(store: Path, query: str) -> int | None:
    """The count ``query`` reads (a read-only look); None when the store cannot say yet."""
    if not store.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True,
                                                timeout=1)) as conn:
            row = conn.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def sending_now(store: Path) -> bool:
    """True while a build's row says its print request is on its way (a read-only look)."""
    return bool(_count(store, "SELECT count(*) FROM builds WHERE state = 'print_sending'"))


def wait_until_moved(store: Path, process: subprocess.Popen[bytes], moment: str,
                     timeout: float) -> bool:
    """Poll until one more file reaches ``moment`` (a FILE_MOMENTS key) than at the first
    look (True), or the process exits or ``timeout`` passes (False)."""
    query = FILE_MOMENTS[moment]
    deadline = time.monotonic() + timeout
    first = _count(store, query)
    while time.monotonic() < deadline and process.poll() is None:
        now = _count(store, query)
        if first is None:
            first = now
        elif now is not None and now > first:
            return True
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.001)
    return False


def wait_until_sending(store: Path, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until a send starts (True), or the process exits or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if sending_now(store):
            return True
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.005)
    return False


def builds_recorded(store: Path) -> int | None:
    """How many builds the store holds (a read-only look); None when it cannot say yet."""
    return _count(store, "SELECT count(*) FROM builds")


def wait_until_claimed(store: Path, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until a run has claimed a model (a job row) and recorded no build yet (True), or
    the process exits, a build appears first, or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if _count(store, "SELECT count(*) FROM jobs"):
            return builds_recorded(store) == 0
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.001)
    return False
