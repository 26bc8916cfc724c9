"""The shared verification poller: matching, paging, deadlines, pacing, logging, looping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from structlog.testing import capture_logs
from verify_support import minutes, newest_first, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import RateLimiter, WebApiClient, format_datetime
from preform_pipeline.errors import CloudAuthError
from preform_pipeline.executor.progress import verify_line
from preform_pipeline.simulator.cloud.testing import FakeWebApi, ScriptedAnswer
from preform_pipeline.store import embed_key, new_key
from preform_pipeline.verify import (
    DEFAULT_FEED_OVERLAP_S,
    PendingPrint,
    VerificationPoller,
    VerifiedStatus,
)

PRINTS = "/developer/v1/prints/"
ClientFactory = Callable[..., WebApiClient]


def _pending(clock: ManualClock, count: int = 1, *, ago_min: float = 60) -> list[PendingPrint]:
    sent = clock.now() - minutes(ago_min)
    return [PendingPrint(key=new_key(), sent_at=sent, name=f"build-{n}") for n in range(count)]


def _printing(api: FakeWebApi, clock: ManualClock, count: int) -> list[PendingPrint]:
    """``count`` pending prints, each printing in the feed with a minute to go."""
    items = _pending(clock, count)
    api.prints = [
        run_record(embed_key("p", i.key), status="PRINTING", remaining_s=60, guid=f"g{n}",
                   created=i.sent_at)
        for n, i in enumerate(items)
    ]
    return items


def _feed_requests(api: FakeWebApi) -> list[httpx.Request]:
    return [r for r in api.api_requests() if r.url.path == PRINTS]


class TestMatching:
    """Runs are matched to pending prints by the job key in their name, or the job id."""

    def test_a_finished_run_ends_its_print_as_finished(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        [item] = _pending(clock)
        fake_api.prints = [run_record(embed_key("case 7", item.key), status="FINISHED",
                                      created=item.sent_at + minutes(1))]
        [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert (result.key, result.status, result.message) == (item.key, VerifiedStatus.FINISHED,
                                                                None)
        assert result.status.job_state.value == "finished"

    @pytest.mark.parametrize(
        ("status", "message", "state"),
        [("ERROR", "Resin level too low", "print_error"), ("ABORTED", "Aborted by user",
                                                           "aborted")],
    )
    def test_a_failed_run_carries_the_printers_message(
        self,
        client: WebApiClient,
        fake_api: FakeWebApi,
        clock: ManualClock,
        status: str,
        message: str,
        state: str,
    ) -> None:
        [item] = _pending(clock)
        fake_api.prints = [run_record(embed_key("crowns", item.key), status=status,
                                      message=message, created=item.sent_at)]
        [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert (result.status.value, result.message) == (status, message)
        assert result.status.job_state.value == state

    def test_a_run_without_the_key_is_matched_by_the_print_job_id(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(5),
                            print_job_id="job-42")
        fake_api.prints = [run_record("renamed on the printer", status="FINISHED",
                                      guid="job-42", created=clock.now())]
        [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert result.print_guid == "job-42"

    def test_runs_of_other_jobs_are_ignored_and_a_running_print_is_progress(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        printing, unseen = _pending(clock, 2)
        fake_api.prints = newest_first([
            run_record(embed_key("other", new_key()), status="FINISHED", created=clock.now()),
            run_record("no key at all", status="ERROR", created=clock.now() - minutes(1)),
            run_record(embed_key("mine", printing.key), status="PRINTING", remaining_s=600,
                       created=printing.sent_at + minutes(1)),
        ])
        outcome = VerificationPoller(client, clock=clock).poll([printing, unseen])
        assert outcome.results == ()
        assert [p.pending.key for p in outcome.in_progress] == [printing.key]
        assert outcome.in_progress[0].remaining_s == 600
        assert [p.key for p in outcome.unseen] == [unseen.key]


class TestOnePollForAll:
    """One poll reads a few pages of the window, however many prints wait."""

    def test_250_pending_prints_cost_three_requests(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = _pending(clock, 250)
        fake_api.prints = [
            run_record(embed_key("p", i.key), status="FINISHED", created=i.sent_at + minutes(1),
                       guid=f"g{n}")
            for n, i in enumerate(items)
        ]
        results = VerificationPoller(client, clock=clock).poll_once(items)
        assert len(results) == 250
        assert len(_feed_requests(fake_api)) == 3

    def test_the_window_starts_before_the_oldest_pending_send(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        old = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=5))
        VerificationPoller(client, clock=clock).poll([old, *_pending(clock, 3)])
        [request] = _feed_requests(fake_api)
        expected = old.sent_at - timedelta(seconds=DEFAULT_FEED_OVERLAP_S)
        assert request.url.params["date__gt"] == format_datetime(expected)
        assert request.url.params["per_page"] == "100"

    def test_paging_stops_once_every_pending_print_is_matched(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        [item] = _pending(clock, ago_min=30)
        others = [run_record(f"other-{n}", status="FINISHED", guid=f"o{n}",
                             created=clock.now() - minutes(1 + n / 100)) for n in range(300)]
        mine = run_record(embed_key("mine", item.key), status="PRINTING",
                          created=clock.now() - minutes(0.5))
        fake_api.prints = newest_first([mine, *others])
        VerificationPoller(client, clock=clock).poll([item])
        assert len(_feed_requests(fake_api)) == 1

    def test_paging_stops_at_the_window_edge_if_the_server_ignores_date_gt(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        [item] = _pending(clock, ago_min=10)
        too_old = clock.now() - timedelta(days=30)
        page = {
            "count": 5000,
            "next": f"{fake_api.base_url}{PRINTS}?page=2&per_page=100",
            "previous": None,
            "results": [run_record("history", status="FINISHED", created=too_old)],
        }
        fake_api.script(ScriptedAnswer(200, json=page, path=PRINTS))
        outcome = VerificationPoller(client, clock=clock).poll([item])
        assert outcome.pages == 1
        assert len(_feed_requests(fake_api)) == 1

    def test_nothing_pending_sends_nothing(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        outcome = VerificationPoller(client, clock=clock).poll([])
        assert (outcome.requests, fake_api.requests) == (0, [])


class TestDeadline:
    """A print without a final status by its deadline is unverified, with the reason."""

    def test_a_print_never_seen_is_unverified_after_the_deadline(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=13))
        [result] = VerificationPoller(client, clock=clock, deadline_s=12 * 3600).poll_once([item])
        assert result.status is VerifiedStatus.UNVERIFIED
        assert result.message == (
            "no final status within 12 h: the print never showed in the prints feed"
        )

    def test_a_print_still_running_says_where_it_was_last_seen(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=3))
        fake_api.prints = [run_record(embed_key("x", item.key), status="PAUSED",
                                      created=item.sent_at, printer="Form4-Lab")]
        [result] = VerificationPoller(client, clock=clock, deadline_s=7200).poll_once([item])
        assert result.message == "no final status within 2 h: last seen PAUSED on Form4-Lab"

    def test_a_final_status_wins_over_a_passed_deadline(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=30))
        fake_api.prints = [run_record(embed_key("x", item.key), status="FINISHED",
                                      created=item.sent_at)]
        [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert result.status is VerifiedStatus.FINISHED

    def test_a_print_that_does_not_expire_is_never_marked_again(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(days=3),
                            expires=False)
        assert VerificationPoller(client, clock=clock).poll_once([item]) == []


class TestPacing:
    """The next poll follows the soonest finish, within bounds, and never outspends the budget."""

    def test_the_next_poll_follows_the_soonest_estimated_finish(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        a, b = _pending(clock, 2)
        fake_api.prints = newest_first([
            run_record(embed_key("a", a.key), status="PRINTING", remaining_s=300, guid="a",
                       created=a.sent_at),
            run_record(embed_key("b", b.key), status="PRINTING", remaining_s=4000, guid="b",
                       created=b.sent_at - minutes(1)),
        ])
        poller = VerificationPoller(client, clock=clock, finish_margin_s=15,
                                    requests_per_hour=3600)
        assert poller.poll([a, b]).next_interval_s == pytest.approx(315)

    @pytest.mark.parametrize(("remaining_s", "expected"), [(1, 30.0), (20_000, 900.0)])
    def test_the_interval_stays_within_its_bounds(
        self,
        client: WebApiClient,
        fake_api: FakeWebApi,
        clock: ManualClock,
        remaining_s: float,
        expected: float,
    ) -> None:
        [item] = _pending(clock)
        fake_api.prints = [run_record(embed_key("a", item.key), status="PRINTING",
                                      remaining_s=remaining_s, created=item.sent_at)]
        poller = VerificationPoller(client, clock=clock, requests_per_hour=3600)
        assert poller.poll([item]).next_interval_s == expected

    def test_a_poll_of_many_pages_waits_its_share_of_the_hourly_budget(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = _printing(fake_api, clock, 250)
        # The even pace alone (no credit, verify/pace.py): 3 pages + the token request, 4
        # requests at 60 an hour, is 4 minutes.
        outcome = VerificationPoller(client, clock=clock, requests_per_hour=60,
                                     credit_requests=0).poll(items)
        assert (outcome.pages, outcome.requests) == (3, 4)
        assert outcome.next_interval_s == pytest.approx(240)

    def test_a_poller_that_spent_little_lately_counts_its_credit_then_keeps_the_pace(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = _printing(fake_api, clock, 250)
        poller = VerificationPoller(client, clock=clock, requests_per_hour=60)
        first = poller.poll(items)
        # 4 requests (the token, 3 pages), 2 of them the credit: 2 earned at 58 an hour.
        assert first.requests == 4
        assert first.next_interval_s == pytest.approx(2 * 3600 / 58)
        clock.advance(first.next_interval_s)
        second = poller.poll(items)
        # The credit spent: 3 pages earned at 58 an hour.
        assert second.next_interval_s == pytest.approx(3 * 3600 / 58)

    def test_a_failing_web_api_is_reported_and_backed_off_not_raised(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = _pending(clock)
        poller = VerificationPoller(client, clock=clock, interval_s=100, max_interval_s=900)
        fake_api.script(*[ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS)] * 2)
        first, second = poller.poll(items), poller.poll(items)
        assert first.error is not None and "the Web API failed (HTTP 503)" in first.error
        assert (first.next_interval_s, second.next_interval_s) == (200, 400)
        assert poller.poll(items).error is None

    def test_a_failing_web_api_polls_again_at_a_deadline_sooner_than_its_backoff(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # Sent an hour ago with a deadline of 62.5 minutes: due in 150 s, before the 200 s
        # the first failure's backoff would wait (a run said "no final status within 5 s"
        # at 61 s, its Web API unreachable).
        items = _pending(clock)
        poller = VerificationPoller(client, clock=clock, interval_s=100, max_interval_s=900,
                                    deadline_s=3750)
        fake_api.script(*[ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS)] * 2)
        first = poller.poll(items)
        assert first.error is not None
        assert first.next_interval_s == pytest.approx(150)
        clock.advance(first.next_interval_s)
        [overdue] = poller.poll(items).results
        assert overdue.status is VerifiedStatus.UNVERIFIED

    def test_a_deadline_sooner_than_a_failing_web_apis_backoff_keeps_the_budget_share(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # A failed poll spends its requests like any other: the deadline 150 s away does not
        # bring the next one sooner than the 300 s a request's share of 12 an hour allows
        # (staggered deadlines polled an outage every 30 s, whatever the share).
        items = _pending(clock)
        poller = VerificationPoller(client, clock=clock, interval_s=100, max_interval_s=900,
                                    deadline_s=3750, requests_per_hour=12, credit_requests=0)
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS))
        failed = poller.poll(items)
        assert failed.error is not None and failed.requests >= 1
        assert failed.next_interval_s == pytest.approx(failed.requests * 300)

    def test_a_long_retry_after_is_reported_with_its_wait_not_waited(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client = make_client(max_wait_s=10)
        items = _pending(clock)
        fake_api.script(ScriptedAnswer(429, json={"detail": "slow down"},
                                       headers={"Retry-After": "1800"}, path=PRINTS))
        outcome = VerificationPoller(client, clock=clock).poll(items)
        assert outcome.error is not None and "the Web API asked to wait" in outcome.error
        assert outcome.retry_after_s == pytest.approx(1800)
        assert clock.slept < 10  # the hour's wait is the caller's to schedule
        held = VerificationPoller(client, clock=clock).poll(items)
        assert (held.requests, held.retry_after_s) == (0, pytest.approx(1800))  # none sent
        clock.advance(1800)
        assert VerificationPoller(client, clock=clock).poll(items).retry_after_s is None

    # A hold is waited out in one, however long (the backoff after a first failure would be
    # 200 s: polls the ledger refuses unsent), never sooner than the 30 s floor.
    @pytest.mark.parametrize(("retry_after", "expected"), [("1800", 1800.0), ("150", 150.0),
                                                           ("20", 30.0)])
    def test_a_rate_limited_poll_waits_until_the_hold_ends(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock,
        retry_after: str, expected: float
    ) -> None:
        client = make_client(max_wait_s=10)
        fake_api.script(ScriptedAnswer(429, json={"detail": "slow down"},
                                       headers={"Retry-After": retry_after}, path=PRINTS))
        poller = VerificationPoller(client, clock=clock, interval_s=100, max_interval_s=900)
        outcome = poller.poll(_pending(clock))
        assert outcome.retry_after_s == pytest.approx(float(retry_after))
        assert outcome.next_interval_s == pytest.approx(expected)

    def test_a_web_api_down_for_maintenance_is_polled_again_when_it_said(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # A 503 whose Retry-After is longer than the run's client waits: the poll fails,
        # and the next comes when the Web API said it is back, not at a doubling backoff.
        client = make_client(max_wait_s=10)
        fake_api.script(ScriptedAnswer(503, json={"detail": "maintenance"},
                                       headers={"Retry-After": "1200"}, path=PRINTS))
        poller = VerificationPoller(client, clock=clock, interval_s=100, max_interval_s=900)
        outcome = poller.poll(_pending(clock))
        assert outcome.error is not None and "asked to wait 1200 s" in outcome.error
        assert outcome.retry_after_s == pytest.approx(1200)
        assert outcome.next_interval_s == pytest.approx(1200)

    def test_a_web_api_in_maintenance_that_says_soon_is_polled_within_the_hours_share(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # verify --wait's client waits a 503's "back in 5 s" three times, then the poll fails
        # having spent 4 requests: the next poll waits what they take of the share of 60 an
        # hour, not the 30 s floor (4 requests every 45 s were 320 an hour).
        client = make_client()
        fake_api.script(*[ScriptedAnswer(503, json={"detail": "maintenance"},
                                         headers={"Retry-After": "5"}, path=PRINTS)] * 400)
        poller = VerificationPoller(client, clock=clock, requests_per_hour=60)
        items = _pending(clock)
        start, spent = clock.monotonic(), 0
        while clock.monotonic() - start < 3600:
            outcome = poller.poll(items)
            assert outcome.retry_after_s == pytest.approx(5)
            spent += outcome.requests
            clock.advance(outcome.next_interval_s)
        # The share of the hour, and the last poll's 4 (their wait falls in the next hour).
        assert 40 <= spent <= 60 + 4

    # By default (verify --wait, a run) the poll's warning is the only one; a caller that
    # defers (the hot folder) or tells every failed poll (one verify) says so itself.
    @pytest.mark.parametrize(("options", "level"), [({}, "warning"),
                                                    ({"defers_rate_limits": True}, "info"),
                                                    ({"reports_failures": True}, "info")])
    def test_a_rate_limited_poll_is_a_warning_unless_its_caller_defers_and_says_so(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock,
        options: dict[str, bool], level: str
    ) -> None:
        client = make_client(max_wait_s=10)
        fake_api.script(ScriptedAnswer(429, json={"detail": "slow down"},
                                       headers={"Retry-After": "1800"}, path=PRINTS))
        poller = VerificationPoller(client, clock=clock, **options)
        with capture_logs() as logs:
            poller.poll(_pending(clock))
        [failed] = [e for e in logs if e["event"] == "verify_poll_failed"]
        assert failed["log_level"] == level

    def test_a_poller_that_defers_rate_limits_still_warns_of_other_failures(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS))
        poller = VerificationPoller(client, clock=clock, defers_rate_limits=True)
        with capture_logs() as logs:
            poller.poll(_pending(clock))
        [failed] = [e for e in logs if e["event"] == "verify_poll_failed"]
        assert failed["log_level"] == "warning"

    def test_another_failure_has_no_retry_time(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS))
        outcome = VerificationPoller(client, clock=clock).poll(_pending(clock))
        assert outcome.error is not None and outcome.retry_after_s is None

    def test_refused_credentials_raise(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client = make_client()
        fake_api.client_secret = "rotated on the Dashboard"
        with pytest.raises(CloudAuthError):
            VerificationPoller(client, clock=clock).poll(_pending(clock))

    def test_a_nearly_spent_budget_stretches_to_the_longest_interval(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        limiter = RateLimiter(clock=clock, sleep=clock.sleep, hourly_share=2 / 1500)
        client = make_client(limiter=limiter)
        [item] = _pending(clock)
        fake_api.prints = [run_record(embed_key("a", item.key), status="PRINTING",
                                      remaining_s=10, created=item.sent_at)]
        poller = VerificationPoller(client, clock=clock, requests_per_hour=3600)
        assert poller.poll([item]).next_interval_s == poller.max_interval_s


class TestLogging:
    """Every poll logs what it spent and the budget left."""

    def test_a_poll_logs_verify_poll_with_the_budget(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        [item] = _pending(clock)
        fake_api.prints = [run_record(embed_key("a", item.key), status="FINISHED",
                                      created=item.sent_at)]
        with capture_logs() as logs:
            VerificationPoller(client, clock=clock).poll([item])
        [event] = [e for e in logs if e["event"] == "verify_poll"]
        assert event["requests"] == 2  # the token and one page
        assert (event["budget_spent"], event["budget_left"]) == (2, 1198)
        assert (event["pending"], event["finished"]) == (1, 1)


class TestRunUntil:
    """The loop polls until every print ended, waiting between polls on the injected clock."""

    def test_it_polls_until_the_prints_end_without_real_waiting(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now())
        record = run_record(embed_key("a", item.key), status="PRINTING", remaining_s=600,
                            created=item.sent_at)
        fake_api.prints = [record]
        ends_at = clock.monotonic() + 600

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            if clock.monotonic() >= ends_at:
                record.update(status="FINISHED", estimated_time_remaining_ms=0)

        poller = VerificationPoller(client, clock=clock, sleep=sleep, requests_per_hour=3600)
        seen: list[str] = []
        results = poller.run_until([item], on_result=lambda r: seen.append(r.key))
        assert [r.status for r in results] == [VerifiedStatus.FINISHED]
        assert seen == [item.key]
        assert poller.polls == 2  # once at the start, once just after the estimated finish
        assert clock.slept == pytest.approx(615)

    def test_a_waiting_loop_reports_what_is_pending_the_next_poll_and_the_budget(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now())
        record = run_record(embed_key("a", item.key), status="PRINTING", remaining_s=600,
                            created=item.sent_at)
        fake_api.prints = [record]

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            record.update(status="FINISHED", estimated_time_remaining_ms=0)

        poller = VerificationPoller(client, clock=clock, sleep=sleep, requests_per_hour=3600)
        lines: list[str] = []
        poller.run_until([item], on_poll=lambda outcome, pending: lines.append(
            verify_line(outcome, pending)
        ))
        # One wait (between the two polls), announced before it began; none after the end.
        assert lines == ["verify: 1 print pending (1 printing), next poll in 615 s, "
                         "2/1200 requests this hour"]

    def test_a_stop_event_ends_the_loop(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        stop = threading.Event()

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            stop.set()

        poller = VerificationPoller(client, clock=clock, sleep=sleep)
        assert poller.run_until(_pending(clock), stop) == []
        assert poller.polls == 1

    def test_a_pending_source_is_read_before_every_poll(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        stop = threading.Event()
        later = PendingPrint(key=new_key(), sent_at=clock.now())
        fake_api.prints = [run_record(embed_key("late", later.key), status="FINISHED",
                                      created=clock.now())]
        calls: list[int] = []

        def source() -> list[PendingPrint]:
            calls.append(1)
            if len(calls) == 3:
                stop.set()
            return [] if len(calls) == 1 else [later]

        poller = VerificationPoller(client, clock=clock, sleep=clock.sleep)
        results = poller.run_until(source, stop, keep_running=True)
        assert [r.key for r in results] == [later.key]

