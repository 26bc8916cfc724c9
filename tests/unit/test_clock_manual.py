"""The one clock of the package: the manual clock tests drive, and the system clock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from preform_pipeline.clock import DEFAULT_MANUAL_START, SYSTEM_CLOCK, Clock, ManualClock


class TestManualClock:
    """Monotonic and wall time move together, only when told, and never backwards."""

    def test_advance_moves_both_clocks(self) -> None:
        clock = ManualClock(start=50.0)
        clock.advance(90.5)
        assert clock.monotonic() == 140.5
        assert clock.now() == DEFAULT_MANUAL_START + timedelta(seconds=90.5)

    def test_sleep_is_recorded_and_moves_time(self) -> None:
        clock = ManualClock()
        clock.sleep(2.0)
        clock.sleep(-1.0)  # a negative wait (a deadline already past) does not go back
        assert (clock.sleeps, clock.slept, clock.monotonic()) == ([2.0, -1.0], 1.0, 1002.0)

    def test_time_never_goes_backwards(self) -> None:
        with pytest.raises(ValueError, match="backwards"):
            ManualClock().advance(-0.1)

    def test_a_wall_time_without_a_zone_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            ManualClock(wall=datetime(2024, 5, 1, 12, 0))

    def test_a_worker_may_sleep_while_the_test_advances(self) -> None:
        clock = ManualClock()
        workers = [
            threading.Thread(target=lambda: [clock.sleep(0.5) for _ in range(200)])
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for _ in range(200):
            clock.advance(1.0)
        for worker in workers:
            worker.join(10)
        assert clock.monotonic() == pytest.approx(1000.0 + 200 + 4 * 200 * 0.5)
        assert clock.now() == DEFAULT_MANUAL_START + timedelta(seconds=600)


class TestSystemClock:
    """The real clock reads UTC dates and a monotonic counter; it is a Clock."""

    def test_readings(self) -> None:
        clock: Clock = SYSTEM_CLOCK
        first = clock.monotonic()
        assert clock.monotonic() >= first
        assert clock.now().tzinfo is timezone.utc
        clock.sleep(0)  # returns at once
