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

__all__ = [
    "EARLY_STOP",
    "EarlyStop",
    "Termination",
    "outside_the_handler",
    "sigterm_as_interrupt",
    "stop_on_signals",
]


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


#: The signals whose default action would end the program at once, as a stop request.
_EARLY_SIGNALS: Final = ("SIGTERM", "SIGHUP", "SIGBREAK")


class EarlyStop:
    """Stop requests caught from the program's first line until a command takes them over.

    Importing the commands, reading the settings and opening the store take a second or more
    (many under load); a SIGTERM then would end the program at once (exit -15), before any
    command had set its own handlers. ``preform-pipeline`` installs this first thing
    (:meth:`install`, from ``__main__``), which only records what came. A command that stops
    cleanly on a signal (``watch``) reads :attr:`received` once its own handlers are set; for
    every other command :meth:`release` restores the earlier handling and delivers what came
    meanwhile again, so those end as they always did. Never installed in a program that only
    imports the package (a test calling ``cli.run``).
    """

    def __init__(self) -> None:
        #: The signals received while installed, in order.
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Record the stop signals from now on (main thread only; once is enough)."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for name in _EARLY_SIGNALS:
            number = getattr(signal, name, None)
            if number is None:
                continue
            try:
                self._previous[number] = signal.signal(number, self._record)
            except (ValueError, OSError):  # not settable here
                continue

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def release(self) -> None:
        """Give the signals back to their earlier handling, and deliver again those that
        came meanwhile (in their order, each once)."""
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            signal.signal(number, handler)
        if previous:
            for number in dict.fromkeys(self.received):
                signal.raise_signal(number)


#: The one early stop of this program (see :class:`EarlyStop`).
EARLY_STOP: Final = EarlyStop()
