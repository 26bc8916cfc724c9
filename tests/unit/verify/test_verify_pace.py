"""The verification poller's pace: a small credit spent at once, the rest of the hour's share
at an even pace, and never more than the hour's share in any hour."""

from __future__ import annotations

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.verify.pace import RequestPace


class TestTheCredit:
    """A pace that has spent nothing lately lets its credit go at once, then earns the rest."""

    def test_a_poll_covered_by_the_credit_need_not_wait(self) -> None:
        pace = RequestPace(60, credit=2, clock=ManualClock())
        assert pace.wait_after(1) == 0
        pace.spend(1)
        assert pace.wait_after(1) == 0

    def test_what_the_credit_does_not_cover_is_earned_at_the_rest_of_the_hours_share(
        self,
    ) -> None:
        pace = RequestPace(60, credit=2, clock=ManualClock())
        # 5 requests, 2 of them credit: 3 to earn at 58 an hour.
        assert pace.wait_after(5) == pytest.approx(3 * 3600 / 58)

    def test_the_credit_comes_back_with_time_and_no_further(self) -> None:
        clock = ManualClock()
        pace = RequestPace(60, credit=2, clock=clock)
        pace.spend(2)
        assert pace.wait_after(1) == pytest.approx(3600 / 58)
        clock.advance(3600)
        assert pace.wait_after(2) == 0
        assert pace.wait_after(3) == pytest.approx(3600 / 58)

    def test_without_credit_it_is_the_even_pace(self) -> None:
        pace = RequestPace(60, credit=0, clock=ManualClock())
        assert pace.wait_after(4) == pytest.approx(240)

    def test_the_credit_is_never_more_than_half_the_hours_share(self) -> None:
        assert RequestPace(3, credit=2, clock=ManualClock()).credit == 1.5


class TestWhatAPaceIs:
    """Any rate above nothing is a pace, a fraction of one request an hour too; no requests
    an hour (no wait would ever end) and a negative credit are refused, naming both."""

    def test_less_than_one_request_an_hour_is_a_pace(self) -> None:
        pace = RequestPace(0.5, credit=0, clock=ManualClock())
        assert pace.wait_after(1) == pytest.approx(7200)

    @pytest.mark.parametrize(("per_hour", "credit"), [(0, 2), (-60, 2), (60, -1)])
    def test_no_requests_an_hour_or_a_negative_credit_is_refused(
        self, per_hour: float, credit: float
    ) -> None:
        with pytest.raises(ValueError) as refused:
            RequestPace(per_hour, credit=credit, clock=ManualClock())
        assert str(refused.value) == (
            f"per_hour ({per_hour}) must be more than 0, credit ({credit}) not negative")


class TestTheHour:
    """However the polls come, no hour holds more than the even pace let it hold."""

    @pytest.mark.parametrize("requests", [1, 3, 7])
    def test_polls_as_soon_as_allowed_spend_no_more_in_any_hour_than_the_even_pace(
        self, requests: int
    ) -> None:
        with_credit, even = _busiest_hour(2, requests), _busiest_hour(0, requests)
        assert with_credit <= even
        # A window an hour long holds both its ends: the even pace's own overrun.
        assert even <= 60 + requests - 1


def _busiest_hour(credit: float, requests: int) -> int:
    """The most requests in any hour of polls of ``requests`` each, made as soon as the pace
    allows (as the poller does: the wait a poll owes is read, then what it spent recorded)."""
    clock = ManualClock()
    pace = RequestPace(60, credit=credit, clock=clock)
    sent: list[float] = []
    for _ in range(200):
        wait = pace.wait_after(requests)
        pace.spend(requests)
        sent.append(clock.monotonic())
        clock.advance(max(wait, 1.0))
    return max(sum(requests for t in sent if start <= t < start + 3600) for start in sent)
