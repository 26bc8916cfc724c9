"""Test helpers for code that uses the Web API client (shipped in the package, like structlog's).

:class:`ManualClock` is a clock that only moves when told to; its :meth:`~ManualClock.sleep`
advances it, so code that waits for a rate limit runs instantly and deterministically.

The in-process fake Web API (``FakeWebApi``, ``sample_*`` records) is a fake of the Dashboard
and lives with the Dashboard simulator, in :mod:`preform_pipeline.simulator.cloud.testing`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["ManualClock"]

_EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


class ManualClock:
    """A monotonic and a wall clock that move together, only through advance() and sleep()."""

    def __init__(self, *, start: float = 1_000.0, wall: datetime = _EPOCH) -> None:
        self._monotonic = start
        self._start = start
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._monotonic

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=self._monotonic - self._start)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward by it (the ``sleep=`` seam)."""
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    @property
    def slept(self) -> float:
        return sum(self.sleeps)
