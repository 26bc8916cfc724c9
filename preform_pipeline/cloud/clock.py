"""Time seen by the Web API client: a monotonic clock for intervals, a wall clock for dates.

Token expiry and the request budget are measured on the monotonic clock, so a system clock
that jumps does not expire a token early or refill the budget. The wall clock is only needed to
turn an HTTP-date ``Retry-After`` into a delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "Sleep", "SystemClock"]

#: Blocks the calling thread for the given number of seconds (``time.sleep`` in production).
Sleep = Callable[[float], None]


class Clock(Protocol):
    """Where the client reads time from; tests pass a manual clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (arbitrary origin)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


SYSTEM_CLOCK = SystemClock()
