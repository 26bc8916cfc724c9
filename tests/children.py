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
    pipes.

    A reader still reading then (a process the child started holds the pipe's write end) is
    an AssertionError, its pipes left open: closing a pipe a thread is reading waits for that
    read to end, which is when the other process ends (session 48's review: the test hung
    for the other process's life instead of failing)."""
    reading: list[threading.Thread] = list(readers)
    try:
        if child.poll() is None:
            child.kill()
        child.wait(wait_s)
        for reader in readers:
            reader.join(wait_s)
        reading = [reader for reader in readers if reader.is_alive()]
    finally:
        pipes = (child.stdin,) if reading else (child.stdin, child.stdout, child.stderr)
        for pipe in pipes:
            if pipe is not None:
                with contextlib.suppress(OSError):  # a write end the dead child left full
                    pipe.close()
    if reading:
        raise AssertionError(
            f"child {child.pid} ended, but {len(reading)} of its readers still read its "
            f"pipes {wait_s:g} s later: a process it started holds them")


@contextlib.contextmanager
def reaped(child: _Child, *, readers: Sequence[threading.Thread] = (),
           wait_s: float = REAP_S) -> Iterator[_Child]:
    """``child`` for the block, ended (:func:`end_child`) however the block ends.
    ``readers`` may be a list the block adds its reader threads to."""
    try:
        yield child
    finally:
        end_child(child, readers=readers, wait_s=wait_s)
