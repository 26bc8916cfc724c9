"""The shared poller under mutation (session 19): its edges, what it logs, and its loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs
from verify_support import minutes, newest_first, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import BudgetSnapshot, WebApiClient
from preform_pipeline.simulator.cloud.testing import FakeWebApi, ScriptedAnswer
from preform_pipeline.store import embed_key, new_key
from preform_pipeline.verify import (
    PendingPrint,
    VerificationPoller,
    VerificationResult,
    VerifiedStatus,
)
from preform_pipeline.verify.poller import describe_duration

PRINTS = "/developer/v1/prints/"
JOIN_S = 10.0
#: A budget so large that pacing never stretches an interval (the tests of other rules).
FREE = 1_000_000.0
AN_HOUR_AGO = timedelta(minutes=60)


def _item(clock: ManualClock, *, ago: timedelta = AN_HOUR_AGO, **fields: Any) -> PendingPrint:
    return PendingPrint(key=new_key(), sent_at=clock.now() - ago, **fields)


def _run(item: PendingPrint, status: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("created", item.sent_at)
    return run_record(embed_key("crowns", item.key), status=status, **fields)


def _budget(remaining: int) -> BudgetSnapshot:
    return BudgetSnapshot(spent=1200 - remaining, remaining=remaining, limit=1200,
                          window_s=3600.0)


class TestDurations:
    """Durations in messages read as hours, minutes or seconds, at the right boundary."""

    @pytest.mark.parametrize(("seconds", "text"), [
        (3600, "1 h"), (5400, "1.5 h"), (7200, "2 h"), (3599, "60 min"), (1790, "30 min"),
        (60, "1 min"), (59, "59 s"),
    ])
    def test_a_duration_is_described_in_its_largest_unit(self, seconds: float,
                                                         text: str) -> None:
        assert describe_duration(seconds) == text


class TestSettings:
    """A poller refuses settings that cannot work, naming the setting; zeros are allowed."""

    @pytest.mark.parametrize("name", ["interval_s", "deadline_s", "requests_per_hour",
                                      "max_interval_s"])
    def test_a_setting_that_must_be_positive_is_refused_at_zero_by_name(
        self, client: WebApiClient, name: str
    ) -> None:
        setting: dict[str, Any] = {name: 0}
        with pytest.raises(ValueError, match=f"^{name} must be more than 0, not 0$"):
            VerificationPoller(client, **setting)

    @pytest.mark.parametrize("name", ["overlap_s", "min_interval_s", "finish_margin_s"])
    def test_a_negative_margin_is_refused(self, client: WebApiClient, name: str) -> None:
        setting: dict[str, Any] = {name: -1}
        with pytest.raises(ValueError, match=r"^overlap_s, min_interval_s and finish_margin_s "
                                             r"must not be negative$"):
            VerificationPoller(client, **setting)

    def test_zero_margins_are_allowed(self, client: WebApiClient) -> None:
        poller = VerificationPoller(client, overlap_s=0, min_interval_s=0, finish_margin_s=0)
        assert (poller.overlap_s, poller.min_interval_s, poller.finish_margin_s) == (0, 0, 0)

    def test_a_send_time_without_a_time_zone_is_refused_naming_the_print(self) -> None:
        with pytest.raises(ValueError, match=r"^sent_at of PP-X has no time zone$"):
            PendingPrint(key="PP-X", sent_at=ManualClock().now().replace(tzinfo=None))


class TestOutcomes:
    """Each result carries when it was found, the run it was found by, and every print."""

    def test_a_result_as_a_record_names_every_field(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock, name="crowns", build_id=7)
        fake_api.prints = [_run(item, "ERROR", guid="g-1", message=" Resin low ",
                                printer="Form4-Lab")]
        [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert result.as_dict() == {
            "job_key": item.key, "name": "crowns", "build_id": 7, "status": "ERROR",
            "state": "print_error", "message": "Resin low", "printer": "Form4-Lab",
            "print_guid": "g-1", "at": clock.now().isoformat(),
        }

    def test_an_overdue_print_keeps_the_run_it_was_last_seen_as(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock, ago=timedelta(hours=3), printer="Form4-Asked")
        fake_api.prints = [_run(item, "PRINTING", guid="g-2", printer="Form4-Lab")]
        [result] = VerificationPoller(client, clock=clock, deadline_s=7200).poll_once([item])
        assert (result.status, result.printer, result.print_guid, result.at) == (
            VerifiedStatus.UNVERIFIED, "Form4-Lab", "g-2", clock.now())

    def test_a_print_is_overdue_at_its_deadline_exactly(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        item = _item(clock, ago=timedelta(hours=2))
        [result] = VerificationPoller(client, clock=clock, deadline_s=7200).poll_once([item])
        assert result.status is VerifiedStatus.UNVERIFIED

    def test_an_overdue_print_does_not_hide_the_prints_after_it(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        late = _item(clock, ago=timedelta(hours=3))
        done = _item(clock, ago=minutes(30))
        fake_api.prints = [_run(done, "FINISHED")]
        results = VerificationPoller(client, clock=clock, deadline_s=7200).poll_once(
            [late, done])
        assert {r.key: r.status for r in results} == {
            late.key: VerifiedStatus.UNVERIFIED, done.key: VerifiedStatus.FINISHED}

    def test_a_run_without_a_printer_name_says_only_its_status(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock, ago=timedelta(hours=3))
        fake_api.prints = [_run(item, "PRINTING", printer="")]
        [result] = VerificationPoller(client, clock=clock, deadline_s=7200).poll_once([item])
        assert result.message == "no final status within 2 h: last seen PRINTING"

    def test_nothing_pending_gives_an_empty_outcome_with_the_budget(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        outcome = VerificationPoller(client, clock=clock, interval_s=90).poll([])
        assert (outcome.results, outcome.in_progress, outcome.unseen, outcome.requests,
                outcome.pages, outcome.next_interval_s) == ((), (), (), 0, 0, 90)
        assert outcome.budget == client.budget()


class TestTheFeed:
    """The feed is read in pages of the poller's size, whole, however its runs look."""

    def test_pages_are_asked_for_in_the_pollers_size(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = [_item(clock, ago=minutes(60 - n)) for n in range(5)]
        fake_api.prints = newest_first([_run(i, "FINISHED", guid=f"g{n}")
                                        for n, i in enumerate(items)])
        outcome = VerificationPoller(client, clock=clock, per_page=2).poll(items)
        assert (len(outcome.results), outcome.pages) == (5, 3)

    def test_a_duplicate_does_not_hide_the_runs_after_it_on_its_page(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        twice = _item(clock, ago=minutes(50))
        other = _item(clock, ago=minutes(55))
        fake_api.prints = newest_first([
            _run(twice, "FINISHED", guid="new", created=twice.sent_at + minutes(20)),
            _run(twice, "ERROR", guid="old", created=twice.sent_at + minutes(1)),
            _run(other, "FINISHED", guid="other"),
        ])
        results = VerificationPoller(client, clock=clock).poll_once([twice, other])
        assert {r.key: r.print_guid for r in results} == {twice.key: "new",
                                                          other.key: "other"}

    def test_a_run_without_a_creation_time_is_read_past(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item, other = _item(clock), _item(clock)
        undated = _run(other, "PRINTING", guid="undated")
        undated["created_at"] = None
        page = {"count": 2, "next": None, "previous": None,
                "results": [_run(item, "PRINTING", guid="dated"), undated]}
        fake_api.script(ScriptedAnswer(200, json=page, path=PRINTS))
        outcome = VerificationPoller(client, clock=clock).poll([item, other])
        assert sorted(p.run.guid for p in outcome.in_progress) == ["dated", "undated"]

    def test_paging_stops_at_a_run_made_at_the_windows_start(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock, ago=minutes(10))
        edge = item.sent_at - timedelta(seconds=600)
        page = {"count": 500, "next": f"{fake_api.base_url}{PRINTS}?page=2&per_page=100",
                "previous": None,
                "results": [run_record("history", status="FINISHED", created=edge)]}
        fake_api.script(ScriptedAnswer(200, json=page, path=PRINTS))
        outcome = VerificationPoller(client, clock=clock, overlap_s=600).poll([item])
        assert outcome.pages == 1


class TestEvents:
    """A poll logs every count it found; a failed one logs the failure and how many ran."""

    def test_a_poll_logs_each_count_and_the_next_interval_to_a_tenth(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        done, running, unseen = _item(clock), _item(clock), _item(clock)
        fake_api.prints = newest_first([_run(done, "FINISHED", guid="a"),
                                        _run(running, "PRINTING", guid="b",
                                             created=running.sent_at - minutes(1))])
        # Two requests (the token and one page) at 7 an hour, no credit: 1028.571... s.
        poller = VerificationPoller(client, clock=clock, requests_per_hour=7, credit_requests=0)
        with capture_logs() as logs:
            outcome = poller.poll([done, running, unseen])
        [event] = [e for e in logs if e["event"] == "verify_poll"]
        assert {k: event[k] for k in ("pending", "finished", "in_progress", "unseen",
                                      "requests", "pages", "budget_limit", "next_interval_s",
                                      "error")} == {
            "pending": 3, "finished": 1, "in_progress": 1, "unseen": 1, "requests": 2,
            "pages": 1, "budget_limit": outcome.budget.limit, "next_interval_s": 1028.6,
            "error": None,
        }

    def test_a_failed_poll_logs_the_error_and_the_failures_so_far(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS))
        with capture_logs() as logs:
            outcome = VerificationPoller(client, clock=clock).poll([_item(clock)])
        [failed] = [e for e in logs if e["event"] == "verify_poll_failed"]
        assert failed["error_type"] == "CloudUnavailableError" and failed["failures"] == 1
        assert failed["error"] == outcome.error and "503" in failed["error"]
        [event] = [e for e in logs if e["event"] == "verify_poll"]
        assert (outcome.pages, event["pages"], event["error"]) == (0, 0, outcome.error)


class TestPacing:
    """The interval's rules at their edges: failures, unseen prints, deadlines, the budget."""

    def test_a_success_starts_the_failure_count_again(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = [_item(clock)]
        poller = VerificationPoller(client, clock=clock, interval_s=100, max_interval_s=900)
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS))
        first = poller.poll(items)
        assert poller.poll(items).error is None
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS))
        assert (first.next_interval_s, poller.poll(items).next_interval_s) == (200, 200)

    def test_failures_stop_doubling_after_ten(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        items = [_item(clock)]
        poller = VerificationPoller(client, clock=clock, interval_s=0.5, max_interval_s=900,
                                    requests_per_hour=FREE)
        fake_api.script(*[ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS)] * 12)
        intervals = [poller.poll(items).next_interval_s for _ in range(12)]
        assert intervals[-3:] == [512.0, 512.0, 512.0]

    def test_an_unseen_print_keeps_the_base_interval_beside_a_far_estimate(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        running, unseen = _item(clock), _item(clock)
        fake_api.prints = [_run(running, "PRINTING", remaining_s=800)]
        poller = VerificationPoller(client, clock=clock, interval_s=60, requests_per_hour=FREE)
        assert poller.poll([running, unseen]).next_interval_s == 60

    def test_a_deadline_sooner_than_the_estimate_comes_first(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock, ago=timedelta(hours=2) - timedelta(seconds=40))
        fake_api.prints = [_run(item, "PRINTING", remaining_s=800)]
        poller = VerificationPoller(client, clock=clock, deadline_s=7200,
                                    requests_per_hour=FREE)
        assert poller.poll([item]).next_interval_s == 40

    def test_without_failure_the_interval_is_not_a_backoff(
        self, client: WebApiClient, clock: ManualClock
    ) -> None:
        poller = VerificationPoller(client, clock=clock, interval_s=60, max_interval_s=900)
        assert poller.next_interval((), (), requests=0, budget=_budget(500),
                                    now=clock.now()) == 900

    @pytest.mark.parametrize(("remaining", "expected"), [(2, 60), (1, 900)])
    def test_the_budget_stretches_the_interval_only_below_two_polls_left(
        self, client: WebApiClient, clock: ManualClock, remaining: int, expected: float
    ) -> None:
        poller = VerificationPoller(client, clock=clock, interval_s=60, max_interval_s=900,
                                    requests_per_hour=3600)
        unseen = [_item(clock, ago=timedelta(0))]
        assert poller.next_interval((), unseen, requests=1, budget=_budget(remaining),
                                    now=clock.now()) == expected


def _in_thread(target: Callable[[], list[VerificationResult]],
               stop: threading.Event) -> list[list[VerificationResult]]:
    """Runs ``target`` on a thread; its answer, or nothing if it did not end in time (then
    ``stop`` is set so the loop ends)."""
    answers: list[list[VerificationResult]] = []
    thread = threading.Thread(target=lambda: answers.append(target()), daemon=True)
    thread.start()
    thread.join(JOIN_S)
    if thread.is_alive():
        stop.set()
        thread.join(JOIN_S)
        return []
    return answers


class TestTheLoop:
    """run_until ends by itself when its source empties, and waits the interval it is given."""

    def test_a_source_that_empties_ends_the_loop_with_every_result(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock)
        fake_api.prints = [_run(item, "FINISHED")]
        poller = VerificationPoller(client, clock=clock, sleep=clock.sleep)
        stop = threading.Event()
        answers = _in_thread(lambda: poller.run_until(lambda: [item], stop), stop)
        assert [[r.key for r in found] for found in answers] == [[item.key]]

    def test_without_a_sleep_it_waits_the_short_interval_on_the_stop_event(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock)
        fake_api.prints = [_run(item, "PRINTING")]
        poller = VerificationPoller(client, clock=clock, interval_s=0.05,
                                    requests_per_hour=FREE)

        def finish(*_: object) -> None:
            fake_api.prints = [_run(item, "FINISHED")]

        stop = threading.Event()
        answers = _in_thread(lambda: poller.run_until([item], stop, on_poll=finish), stop)
        assert [[r.status for r in found] for found in answers] == [
            [VerifiedStatus.FINISHED]]

    def test_a_short_interval_is_slept_not_skipped(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _item(clock)
        fake_api.prints = [_run(item, "PRINTING")]
        slept: list[float] = []
        poller = VerificationPoller(client, clock=clock, sleep=slept.append, interval_s=0.5,
                                    requests_per_hour=FREE)

        def finish(*_: object) -> None:
            fake_api.prints = [_run(item, "FINISHED")]

        poller.run_until([item], on_poll=finish)
        assert slept == [0.5]
