"""A test's child process ended on every path: killed if it still runs (a failed assertion
or a timeout left it), reaped, its pipes closed, so a failing test leaks no process, zombie or
pipe (session 48: ``test_print_once``'s second child outlived a ``communicate`` that timed
out)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["end_child", "reaped"]

#: Long enough for a killed child to be reaped on a loaded machine.
REAP_S = 30.0

_Child = TypeVar("_Child", bound="subprocess.Popen[Any]")


def end_child(child: subprocess.Popen[Any], *, readers: Sequence[threading.Thread] = (),
              wait_s: float = REAP_S) -> None:
    """Kill ``child`` unless it has ended, reap it, join ``readers`` (the test's threads
    reading its pipes: they reach the end of what it wrote once it is gone) and close its
    pipes."""
    try:
        if child.poll() is None:
            child.kill()
        child.wait(wait_s)
        for reader in readers:
            reader.join(wait_s)
    finally:
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a write end the dead child left full
                    pipe.close()


@contextlib.contextmanager
def reaped(child: _Child, *, readers: Sequence[threading.Thread] = (),
           wait_s: float = REAP_S) -> Iterator[_Child]:
    """``child`` for the block, ended (:func:`end_child`) however the block ends.
    ``readers`` may be a list the block adds its reader threads to."""
    try:
        yield child
    finally:
        end_child(child, readers=readers, wait_s=wait_s)
