"""Helpers of the crash tests: finding the moment a print is being sent."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from pathlib import Path

__all__ = ["sending_now", "wait_until_sending"]


def sending_now(store: Path) -> bool:
    """True while a build's row says its print request is on its way (a read-only look)."""
    if not store.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True,
                                                timeout=1)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM builds WHERE state = 'print_sending'").fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


def wait_until_sending(store: Path, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until a send starts (True), or the process exits or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if sending_now(store):
            return True
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.005)
    return False
