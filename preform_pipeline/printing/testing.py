"""Test helpers that ship with the package: a send holder whose server really ran and ended."""

from __future__ import annotations

import subprocess
import sys

from preform_pipeline.printing.holder import SendHolder

__all__ = ["reaped_holder"]


def reaped_holder(request_timeout_s: float = 0.0) -> SendHolder:
    """The holder of a send whose server process really ran, was killed and reaped."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = SendHolder.local("reaped-server", child.pid, request_timeout_s)
    finally:
        child.kill()
        child.wait(timeout=10)
    return holder
