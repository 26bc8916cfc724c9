"""The one clock of the package: a monotonic clock for intervals, a wall clock for dates.

Every component that waits, times out, backs off or stamps a date reads time through a
:class:`Clock` handed to it, so tests of leases, grace periods and deadlines run on a
:class:`ManualClock` and never wait for real. Intervals are measured on the monotonic clock, so
a system clock that jumps neither expires a lease early nor refills a budget; the wall clock is
only for what a person or another machine reads (dates in the store, HTTP dates).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Final, Protocol

__all__ = [
    "DEFAULT_MANUAL_START",
    "SYSTEM_CLOCK",
    "Clock",
    "ManualClock",
    "Sleep",
    "SystemClock",
    "local_time",
]

#: Blocks the calling thread for the given number of seconds (``time.sleep`` in production).
Sleep = Callable[[float], None]

#: Where a :class:`ManualClock` starts unless told: a fixed, timezone-aware date, so tests that
#: print dates are repeatable.
DEFAULT_MANUAL_START: Final = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class Clock(Protocol):
    """Where a component reads time from; tests pass a :class:`ManualClock`."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (arbitrary origin)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a manual clock moves forward instead)."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()


def local_time(clock: Clock) -> datetime:
    """``clock``'s wall time in this machine's time zone, without the zone: what run ids and
    output folders (``{date}``, ``{time}``) are named by, as ``datetime.now()`` names them."""
    return clock.now().astimezone().replace(tzinfo=None)


class ManualClock:
    """Monotonic and wall time that move together, only through :meth:`advance` and :meth:`sleep`.

    Thread-safe: a component's worker thread may sleep while the test advances time.
    """

    def __init__(self, *, start: float = 1_000.0, wall: datetime = DEFAULT_MANUAL_START) -> None:
        if wall.tzinfo is None:
            raise ValueError("a manual clock's wall time must be timezone-aware")
        self._lock = threading.Lock()
        self._monotonic = start
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._monotonic += seconds
            self._wall += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward by it (the ``sleep`` seam)."""
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    @property
    def slept(self) -> float:
        """The total of every sleep so far."""
        with self._lock:
            return sum(self.sleeps)
