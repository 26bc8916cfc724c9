"""The one capped exponential backoff rule."""

from __future__ import annotations

from preform_pipeline.backoff import backoff


class TestBackoff:
    """A delay doubles per retry between a floor and a cap."""

    def test_the_first_retry_waits_the_first_delay(self) -> None:
        assert backoff(0, 0.5, 10.0) == 0.5

    def test_each_retry_doubles_the_delay(self) -> None:
        assert [backoff(n, 0.5, 100.0) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]

    def test_the_delay_never_exceeds_the_cap(self) -> None:
        assert backoff(20, 0.5, 10.0) == 10.0

    def test_the_delay_never_falls_below_the_floor(self) -> None:
        assert backoff(0, 1.0, 60.0, floor_s=5.0) == 5.0

    def test_doubling_stops_after_the_given_number_of_doublings(self) -> None:
        assert backoff(50, 1.0, 1e9, max_doublings=3) == 8.0

    def test_a_huge_retry_count_does_not_overflow(self) -> None:
        assert backoff(10**6, 1.0, 30.0) == 30.0
