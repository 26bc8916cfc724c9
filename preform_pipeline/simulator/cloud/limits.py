"""The Web API's rate limits, enforced: requests per second per IP, requests per hour per user.

The Web API documents 100 requests a second from one IP address and 1,500 requests an hour for
one authenticated user, and answers 429 with ``Retry-After`` beyond either. Both are sliding
windows here: a request is allowed when fewer than ``limit`` requests of the same key were
allowed in the last ``window_s`` seconds. A refused request does not count, and its
``Retry-After`` is the whole seconds until the oldest request in the window leaves it (at
least 1), so a client that waits that long gets through.

Token requests count too: towards the IP address before anything else, and towards the user
once the credentials are known to be right.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_HOURLY_LIMIT",
    "DEFAULT_PER_SECOND_LIMIT",
    "HOUR_S",
    "RateLimits",
    "SlidingWindow",
    "Throttled",
]

#: The Web API's documented limits.
DEFAULT_PER_SECOND_LIMIT: Final = 100
DEFAULT_HOURLY_LIMIT: Final = 1500
HOUR_S: Final = 3600.0
_SECOND_S: Final = 1.0


@dataclass(frozen=True)
class Throttled:
    """A refused request: which limit it hit and how long to wait before the next try."""

    scope: str
    limit: int
    window_s: float
    retry_after_s: int

    def detail(self) -> str:
        return (
            f"Request was throttled ({self.limit} requests per {self.scope}). "
            f"Expected available in {self.retry_after_s} seconds."
        )


class SlidingWindow:
    """At most ``limit`` requests per key in any ``window_s`` seconds; 0 means no limit."""

    def __init__(
        self, limit: int, window_s: float, scope: str, clock: Callable[[], float]
    ) -> None:
        if limit < 0:
            raise ValueError(f"a rate limit must be >= 0 (0: none), not {limit}")
        self.limit = limit
        self.window_s = window_s
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def take(self, key: str) -> Throttled | None:
        """Count a request of ``key`` and return None, or refuse it without counting."""
        if self.limit == 0:
            return None
        now = self._clock()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                wait = times[0] + self.window_s - now
                return Throttled(self.scope, self.limit, self.window_s, max(1, math.ceil(wait)))
            times.append(now)
            return None

    def used(self, key: str) -> int:
        """Requests of ``key`` in the current window."""
        now = self._clock()
        with self._lock:
            return sum(1 for t in self._seen.get(key, ()) if t > now - self.window_s)


class RateLimits:
    """The two limits of the Web API, on one clock (monotonic seconds)."""

    def __init__(
        self,
        *,
        per_second: int = DEFAULT_PER_SECOND_LIMIT,
        hourly: int = DEFAULT_HOURLY_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_ip = SlidingWindow(per_second, _SECOND_S, "second per IP address", clock)
        self.per_user = SlidingWindow(hourly, HOUR_S, "hour per user", clock)

    def take_ip(self, address: str) -> Throttled | None:
        return self.per_ip.take(address)

    def take_user(self, user: str) -> Throttled | None:
        return self.per_user.take(user)
