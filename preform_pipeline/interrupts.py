"""SIGTERM handled the way Ctrl-C is: a service manager's stop is an interrupt, not a kill.

Python turns SIGINT into :class:`KeyboardInterrupt`, which the runner already answers by
cancelling its builds, stopping its servers and reporting. SIGTERM (what systemd, launchd,
``kill`` and container runtimes send) would otherwise end the process at once: no report, no
summary, and servers left to the orphan reaper. :func:`sigterm_as_interrupt` raises the same
:class:`KeyboardInterrupt` for SIGTERM and remembers that it came, so the command can exit
with 143 (128 + 15) instead of 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final

__all__ = ["Termination", "outside_the_handler", "sigterm_as_interrupt", "stop_on_signals"]


class Termination:
    """Whether SIGTERM arrived; after :meth:`settle`, a later one is only recorded (the
    command is already writing its report and summary, which must not be cut short)."""

    def __init__(self) -> None:
        self.received = False
        self._settled = False

    def settle(self) -> None:
        self._settled = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.received
        self.received = True
        if first and not self._settled:
            raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[Termination]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread (once; a second
    SIGTERM while winding down is ignored, as the first is being honoured). Outside the main
    thread, or where the platform has no SIGTERM handler to set, nothing changes."""
    termination = Termination()
    if threading.current_thread() is not threading.main_thread():
        yield termination
        return
    try:
        previous = signal.signal(signal.SIGTERM, termination._handle)
    except (ValueError, OSError):  # no such signal handling here
        yield termination
        return
    try:
        yield termination
    finally:
        signal.signal(signal.SIGTERM, previous)


def outside_the_handler(action: Callable[[], None]) -> None:
    """Run ``action`` (setting a stop event, telling a daemon to stop) on a thread of its own.

    A signal handler runs on the main thread between two bytecodes, possibly while that
    thread is inside ``event.wait()`` holding the event's own lock, which is not reentrant:
    an ``event.set()`` made right there would wait forever on its own thread (a simulator
    told to stop during its slow start once hung so). On another thread, the same call waits
    at most until the main thread lets go of the lock.
    """
    threading.Thread(target=action, name="signal-action", daemon=True).start()


#: The signals that ask a server program (simulator, dashboard) to stop.
_STOP_SIGNALS: Final = ("SIGINT", "SIGTERM", "SIGBREAK")


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Set ``stop`` on SIGINT/SIGTERM (and SIGBREAK on Windows) while inside.

    Yields the list of signals received, filled as they arrive.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signals can only be handled on the main thread (run() from a test)
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        outside_the_handler(stop.set)

    numbers = [getattr(signal, n) for n in _STOP_SIGNALS if hasattr(signal, n)]
    previous: dict[int, Any] = {n: signal.signal(n, handler) for n in numbers}
    try:
        yield received
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
