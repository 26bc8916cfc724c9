"""The client-side rate limiter: per-second bucket, hourly budget, Retry-After, snapshots."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud.ratelimit import (
    DEFAULT_LOUD_WAIT_S,
    HOURLY_WINDOW_S,
    WEB_API_MAX_PER_HOUR,
    WEB_API_MAX_PER_SECOND,
    BudgetSnapshot,
    RateLimiter,
    parse_retry_after,
    resume_time,
)
from preform_pipeline.errors import CloudRateLimitError, ConfigError
from preform_pipeline.settings.cloud import DEFAULT_HOURLY_BUDGET_SHARE, DEFAULT_MAX_PER_SECOND


def _limiter(clock: ManualClock, **options: float) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]


class TestDefaults:
    """The defaults stay well inside the documented limits."""

    def test_default_rate_and_share_are_below_the_server_limits(self) -> None:
        assert DEFAULT_MAX_PER_SECOND < WEB_API_MAX_PER_SECOND
        assert 0 < DEFAULT_HOURLY_BUDGET_SHARE < 1

    def test_default_hourly_limit_is_the_share_of_1500(self, limiter: RateLimiter) -> None:
        assert limiter.hourly_limit == int(WEB_API_MAX_PER_HOUR * DEFAULT_HOURLY_BUDGET_SHARE)


class TestPerSecond:
    """The token bucket spaces requests at the configured rate after a short burst."""

    def test_a_burst_leaves_without_waiting_then_requests_are_spaced(
        self, clock: ManualClock
    ) -> None:
        limiter = _limiter(clock, max_per_second=10, burst=3)
        for _ in range(3):
            assert limiter.acquire() == 0
        assert clock.sleeps == []
        waited = limiter.acquire()
        assert waited == pytest.approx(0.1)
        assert limiter.acquire() == pytest.approx(0.1)

    def test_no_one_second_window_reaches_the_server_limit(self, clock: ManualClock) -> None:
        limiter = _limiter(clock, max_per_second=90, burst=9)
        sent = []
        for _ in range(500):
            limiter.acquire()
            sent.append(clock.monotonic())
        busiest = max(
            sum(1 for t in sent if start <= t < start + 1.0) for start in sent
        )
        assert busiest <= 90 + 9 < WEB_API_MAX_PER_SECOND

    def test_the_steady_rate_matches_the_configuration(self, clock: ManualClock) -> None:
        limiter = _limiter(clock, max_per_second=20, burst=1)
        start = clock.monotonic()
        for _ in range(101):
            limiter.acquire()
        assert clock.monotonic() - start == pytest.approx(100 / 20)

    def test_quiet_time_refills_the_bucket_up_to_the_burst(self, clock: ManualClock) -> None:
        limiter = _limiter(clock, max_per_second=10, burst=4)
        for _ in range(4):
            limiter.acquire()
        clock.advance(60)
        sleeps_before = len(clock.sleeps)
        for _ in range(4):
            limiter.acquire()
        assert len(clock.sleeps) == sleeps_before
        assert limiter.acquire() > 0

    @pytest.mark.parametrize(
        ("options", "fragment"),
        [
            ({"max_per_second": 95, "burst": 5}, "100 requests/s"),
            ({"max_per_second": 0}, "positive"),
            ({"hourly_share": 0}, "hourly_share"),
            ({"hourly_share": 1.5}, "hourly_share"),
        ],
    )
    def test_unsafe_settings_are_refused(
        self, clock: ManualClock, options: dict[str, float], fragment: str
    ) -> None:
        with pytest.raises(ConfigError, match=fragment):
            _limiter(clock, **options)


class TestHourlyBudget:
    """The sliding hour holds at most share x 1,500 requests."""

    def test_budget_is_the_configured_share(self, clock: ManualClock) -> None:
        assert _limiter(clock, hourly_share=0.5).hourly_limit == 750
        assert _limiter(clock, hourly_share=0.01).hourly_limit == 15

    def test_a_spent_budget_waits_until_the_oldest_request_is_an_hour_old(
        self, clock: ManualClock
    ) -> None:
        limiter = _limiter(clock, hourly_share=0.01)
        first = clock.monotonic()
        for _ in range(15):
            limiter.acquire()
        assert clock.monotonic() - first < 1.0
        with capture_logs() as logs:
            limiter.acquire()
        assert clock.monotonic() == pytest.approx(first + HOURLY_WINDOW_S)
        waits = [e for e in logs if e["event"] == "web_api_budget_wait"]
        assert waits and waits[0]["reason"] == "hourly_budget"

    def test_a_caller_that_will_not_wait_gets_cloud_rate_limit_error(
        self, clock: ManualClock
    ) -> None:
        limiter = _limiter(clock, hourly_share=0.01)
        for _ in range(15):
            limiter.acquire(wait=False)
        slept = clock.slept
        with pytest.raises(CloudRateLimitError) as caught:
            limiter.acquire(wait=False)
        assert caught.value.retry_after_s is not None
        assert caught.value.retry_after_s == pytest.approx(HOURLY_WINDOW_S - slept, abs=0.01)
        assert clock.slept == slept
        assert limiter.spent_this_hour == 15

    def test_the_window_slides(self, clock: ManualClock) -> None:
        limiter = _limiter(clock, hourly_share=0.01)
        for _ in range(5):
            limiter.acquire()
        clock.advance(1800)
        for _ in range(5):
            limiter.acquire()
        assert limiter.spent_this_hour == 10
        clock.advance(1800)
        assert limiter.spent_this_hour == 5
        clock.advance(1800)
        assert limiter.spent_this_hour == 0

    def test_running_low_is_warned_once(self, clock: ManualClock) -> None:
        limiter = _limiter(clock, hourly_share=0.02)  # 30 requests, warn at 3 left
        with capture_logs() as logs:
            for _ in range(29):
                limiter.acquire()
        warnings = [e for e in logs if e["event"] == "web_api_budget_low"]
        assert len(warnings) == 1
        assert warnings[0]["remaining"] == 3
        assert warnings[0]["limit"] == 30
        assert warnings[0]["window_s"] == HOURLY_WINDOW_S

    def test_the_warning_is_not_repeated_while_the_budget_stays_low(
        self, clock: ManualClock
    ) -> None:
        limiter = _limiter(clock, hourly_share=0.02)  # 30 requests, warn at 3 left
        with capture_logs() as logs:
            limiter.acquire()
            clock.advance(1800)
            for _ in range(26):
                limiter.acquire()  # 3 left: warned
            clock.advance(1800)  # the first request leaves the hour: 4 left
            limiter.acquire()  # 3 left again
            limiter.acquire()  # 2 left
        assert [e["remaining"] for e in logs if e["event"] == "web_api_budget_low"] == [3]


class TestSnapshot:
    """The snapshot reports spent, remaining, limit and window for the run report."""

    def test_snapshot_numbers(self, clock: ManualClock) -> None:
        limiter = _limiter(clock, hourly_share=0.1)
        for _ in range(7):
            limiter.acquire()
        snap = limiter.snapshot()
        assert (snap.spent, snap.remaining, snap.limit, snap.window_s) == (
            7,
            143,
            150,
            HOURLY_WINDOW_S,
        )
        assert snap.total == 7
        assert limiter.remaining_this_hour == 143

    def test_snapshot_is_frozen_and_serialisable(self, limiter: RateLimiter) -> None:
        snap = limiter.snapshot()
        assert isinstance(snap, BudgetSnapshot)
        with pytest.raises(AttributeError):
            snap.spent = 3  # type: ignore[misc]
        assert set(snap.as_dict()) == {"spent", "remaining", "limit", "window_s", "total",
                                       "waited_s"}

    def test_total_keeps_counting_after_the_window_slides(self, clock: ManualClock) -> None:
        limiter = _limiter(clock)
        for _ in range(3):
            limiter.acquire()
        clock.advance(2 * HOURLY_WINDOW_S)
        limiter.acquire()
        snap = limiter.snapshot()
        assert (snap.spent, snap.total) == (1, 4)


class TestDefer:
    """A server's Retry-After holds every caller of the limiter back."""

    def test_acquire_waits_out_a_deferral(self, clock: ManualClock, limiter: RateLimiter) -> None:
        start = clock.monotonic()
        limiter.defer(12.5)
        limiter.acquire()
        assert clock.monotonic() - start == pytest.approx(12.5)

    def test_a_caller_that_will_not_wait_is_told_how_long(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        limiter.defer(30)
        with pytest.raises(CloudRateLimitError) as caught:
            limiter.acquire(wait=False)
        assert caught.value.retry_after_s == pytest.approx(30)

    def test_a_shorter_deferral_does_not_cut_a_longer_one(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        start = clock.monotonic()
        limiter.defer(20)
        limiter.defer(5)
        limiter.acquire()
        assert clock.monotonic() - start == pytest.approx(20)


class TestLongWaits:
    """A long wait is logged with its end, and one longer than the caller affords stops it."""

    def test_a_long_wait_is_a_warning_that_says_why_and_until_when(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        with capture_logs() as logs:
            limiter.defer(DEFAULT_LOUD_WAIT_S)
            limiter.acquire()
            limiter.defer(12.3456)
            limiter.acquire()
        waits = [e for e in logs if e["event"] == "web_api_budget_wait"]
        assert [(e["log_level"], e["reason"], e["wait_s"], e["until"]) for e in waits] == [
            ("warning", "retry_after", DEFAULT_LOUD_WAIT_S, "2024-05-01 12:00:10 UTC"),
            ("warning", "retry_after", 12.346, "2024-05-01 12:00:23 UTC"),
        ]

    def test_a_short_wait_is_only_information(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        limiter.defer(DEFAULT_LOUD_WAIT_S - 1)
        with capture_logs() as logs:
            limiter.acquire()
        assert [e["log_level"] for e in logs if e["event"] == "web_api_budget_wait"] == ["info"]

    def test_a_wait_up_to_the_callers_limit_is_taken(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        limiter.defer(60)
        assert limiter.acquire(max_wait_s=60) == pytest.approx(60)

    def test_a_retry_after_past_the_callers_limit_says_when_to_try_again(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        limiter.defer(3599.5)
        with pytest.raises(CloudRateLimitError) as caught:
            limiter.acquire(max_wait_s=60)
        error = caught.value
        assert error.retry_after_s == pytest.approx(3599.5)
        assert error.message == "the Web API asked to wait 3600 s before the next request"
        assert error.hint is not None
        assert error.hint.startswith("try again after 2024-05-01 13:00:00 UTC; another program")
        assert clock.sleeps == []

    def test_a_spent_budget_past_the_callers_limit_says_when_to_try_again(
        self, clock: ManualClock
    ) -> None:
        limiter = _limiter(clock, hourly_share=0.01)
        for _ in range(15):
            limiter.acquire(max_wait_s=60)
        clock.advance(600)
        with pytest.raises(CloudRateLimitError) as caught:
            limiter.acquire(max_wait_s=60)
        error = caught.value
        assert error.message == "the Web API request budget is spent for the next 3000 s"
        assert str(error).endswith(
            "(try again after 2024-05-01 13:00:00 UTC, or raise the hourly budget share "
            "(now 0.01 of 1500/hour))"
        )
        assert limiter.spent_this_hour == 15

    def test_the_resume_time_rounds_up_to_the_whole_second(self, clock: ManualClock) -> None:
        assert resume_time(clock.now(), 0.2) == "2024-05-01 12:00:01 UTC"
        assert resume_time(clock.now(), 86400) == "2024-05-02 12:00:00 UTC"

    def test_the_resume_time_is_in_utc_on_a_machine_that_is_not(
        self, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # POSIX only (time.tzset): the machine's zone is changed for this test alone.
        monkeypatch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        try:
            assert resume_time(clock.now(), 60) == "2024-05-01 12:01:00 UTC"
        finally:
            monkeypatch.undo()
            time.tzset()


class TestTimeWaited:
    """The budget's ``waited_s`` adds up every wait, whichever way a call ends."""

    def test_waits_of_several_calls_add_up(
        self, clock: ManualClock, limiter: RateLimiter
    ) -> None:
        limiter.defer(10)
        limiter.acquire()
        limiter.defer(20)
        limiter.acquire()
        assert limiter.snapshot().waited_s == pytest.approx(30)

    def test_every_wait_of_one_call_counts_even_when_it_then_stops(
        self, clock: ManualClock
    ) -> None:
        deferrals: list[float] = []

        def sleep(seconds: float) -> None:
            # Another client of this limiter meets a 429 while this one waits its turn.
            clock.sleep(seconds)
            if deferrals:
                limiter.defer(deferrals.pop())

        limiter = RateLimiter(max_per_second=2, burst=1, clock=clock, sleep=sleep)
        limiter.acquire()
        deferrals.append(20)
        assert limiter.acquire() == pytest.approx(0.5 + 20)  # the per-second wait, then 20 s
        deferrals.append(100)
        with pytest.raises(CloudRateLimitError):
            limiter.acquire(max_wait_s=60)  # 0.5 s, then a wait it cannot afford
        assert limiter.snapshot().waited_s == pytest.approx(20.5 + 0.5)


class TestParseRetryAfter:
    """Retry-After is read as delay-seconds or as an HTTP date."""

    def test_seconds(self, clock: ManualClock) -> None:
        assert parse_retry_after("120", clock.now()) == 120
        assert parse_retry_after(" 7 ", clock.now()) == 7

    def test_http_date(self, clock: ManualClock) -> None:
        when = clock.now() + timedelta(seconds=90)
        assert parse_retry_after(format_datetime(when, usegmt=True), clock.now()) == 90

    def test_no_seconds_means_now(self, clock: ManualClock) -> None:
        assert parse_retry_after("0", clock.now()) == 0

    def test_a_date_in_the_unknown_zone_minus_0000_is_read_as_gmt(
        self, clock: ManualClock
    ) -> None:
        # RFC 5322's "-0000" (a zone not known): email.utils gives a naive time for it.
        when = format_datetime(clock.now() + timedelta(seconds=90)).replace("+0000", "-0000")
        assert when.endswith(" -0000")
        assert parse_retry_after(when, clock.now()) == 90

    def test_a_date_in_the_past_means_now(self, clock: ManualClock) -> None:
        when = clock.now() - timedelta(seconds=90)
        assert parse_retry_after(format_datetime(when, usegmt=True), clock.now()) == 0

    @pytest.mark.parametrize("value", [None, "", "soon", "-5e999", "nan"])
    def test_unreadable_values_give_none(self, clock: ManualClock, value: str | None) -> None:
        assert parse_retry_after(value, clock.now()) is None
