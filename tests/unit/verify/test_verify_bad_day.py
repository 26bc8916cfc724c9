"""Verification on a bad day: a feed that cannot be read is never told as a feed that was read."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from structlog.testing import capture_logs
from verify_support import minutes, prepared_build, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.cloud.skew import ClockSkew
from preform_pipeline.printing import SendRecord
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.simulator.cloud.testing import FakeWebApi, ScriptedAnswer
from preform_pipeline.store import JobState, SqliteJobStore, embed_key, new_key
from preform_pipeline.verify import PendingPrint, VerificationPoller, VerifiedStatus
from preform_pipeline.verify.service import NOT_CHECKED, NOT_IN_FEED_YET, verify_pending

PRINTS = "/developer/v1/prints/"
_DOWN = ScriptedAnswer(503, json={"detail": "down"}, path=PRINTS)


class TestDeadlineWhileTheFeedIsDown:
    """A print whose deadline passes while the Web API fails is described by what is known."""

    @pytest.mark.parametrize(("seen_before", "expected"), [
        (True, "last seen PRINTING on Form4-Lab"),
        (False, "the print was not seen in the prints feed yet"),
    ])
    def test_a_print_is_described_by_what_the_feed_last_said_not_as_missing(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock,
        seen_before: bool, expected: str,
    ) -> None:
        item = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(100))
        poller = VerificationPoller(client, clock=clock, deadline_s=7200)
        if seen_before:
            fake_api.prints = [run_record(embed_key("crowns", item.key), status="PRINTING",
                                          guid="g-1", created=item.sent_at, printer="Form4-Lab")]
            assert [p.run.guid for p in poller.poll([item]).in_progress] == ["g-1"]
        clock.advance(30 * 60)
        fake_api.script(_DOWN)
        [result] = poller.poll_once([item])
        assert (result.status, result.printer, result.print_guid) == (
            (VerifiedStatus.UNVERIFIED, "Form4-Lab", "g-1") if seen_before
            else (VerifiedStatus.UNVERIFIED, None, None))
        assert result.message == (
            f"no final status within 2 h: {expected} "
            "(the prints feed could not be read at the deadline)"
        )

    def test_sightings_of_prints_no_longer_pending_are_forgotten(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        a, b = (PendingPrint(key=new_key(), sent_at=clock.now() - minutes(10)) for _ in "ab")
        fake_api.prints = [run_record(embed_key("x", p.key), status="PRINTING", guid=p.key,
                                      created=p.sent_at) for p in (a, b)]
        poller = VerificationPoller(client, clock=clock)
        poller.poll([a, b])
        poller.poll([b])
        assert sorted(poller._last_seen) == [b.key]


class TestVerifyRowsWhenTheFeedFails:
    """``verify``'s summary says a print was not checked, not that the feed lacks it."""

    def test_a_failed_poll_marks_every_unseen_row_as_not_checked(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        prepared_build(store, JobState.PRINT_SENDING, JobState.PRINT_SENT)
        fake_api.script(_DOWN)
        report = verify_pending(store, client, clock=clock)
        assert report.errors and "HTTP 503" in report.errors[0]
        assert [(b.state, b.status) for b in report.builds] == [
            (JobState.PRINT_SENT, NOT_CHECKED)]

    def test_a_read_feed_without_the_print_says_it_is_not_there_yet(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        prepared_build(store, JobState.PRINT_SENDING, JobState.PRINT_SENT)
        report = verify_pending(store, client, clock=clock)
        assert report.errors == ()
        assert [b.status for b in report.builds] == [NOT_IN_FEED_YET]


def _stale(clock: ManualClock, *, hours: float) -> PendingPrint:
    """An unverified print of ``hours`` ago that ``verify`` looks at again (no deadline)."""
    return PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=hours),
                        expires=False)


class TestStaleUnverifiedPrints:
    """An old unverified print does not make every poll read days of the account's history."""

    def _busy_feed(self, fake_api: FakeWebApi, clock: ManualClock, *, runs: int) -> None:
        """``runs`` other prints, newest first, one every 3 minutes back from now."""
        fake_api.prints = [
            run_record(f"other job {n}", status="FINISHED", guid=f"other-{n}",
                       created=clock.now() - minutes(3 * n + 1))
            for n in range(runs)
        ]

    def test_a_stale_print_is_looked_up_by_its_key_not_by_paging_to_its_send(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        self._busy_feed(fake_api, clock, runs=2000)  # 100 hours of history, 20 pages
        stale = _stale(clock, hours=90)
        recent = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(30))
        fake_api.prints.insert(0, run_record(embed_key("new", recent.key), status="PRINTING",
                                             guid="g-recent", created=recent.sent_at))
        fake_api.prints.append(run_record(embed_key("old", stale.key), status="FINISHED",
                                          guid="g-stale", created=stale.sent_at))
        outcome = VerificationPoller(client, clock=clock).poll([stale, recent])
        assert [r.print_guid for r in outcome.results] == ["g-stale"]
        assert [p.run.guid for p in outcome.in_progress] == ["g-recent"]
        feed = [r for r in fake_api.api_requests() if r.url.path == PRINTS]
        # Page 1 of the window (its count tells the 20 pages), then one lookup by the key.
        assert len(feed) == 2
        assert feed[1].url.params["name"] == stale.key

    def test_a_stale_print_never_in_the_feed_costs_one_lookup_and_stays_pending(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        self._busy_feed(fake_api, clock, runs=2000)
        stale = _stale(clock, hours=90)
        outcome = VerificationPoller(client, clock=clock).poll([stale])
        assert (outcome.results, [p.key for p in outcome.unseen]) == ((), [stale.key])
        assert outcome.pages == 2

    def test_a_stale_print_sent_within_the_pages_read_is_not_looked_up(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        self._busy_feed(fake_api, clock, runs=2000)  # page 1 reaches about 5 h back
        deep = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=90),
                            expires=False)
        near = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(60), expires=False)
        outcome = VerificationPoller(client, clock=clock).poll([deep, near])
        assert sorted(p.key for p in outcome.unseen) == sorted([deep.key, near.key])
        feed = [r for r in fake_api.api_requests() if r.url.path == PRINTS]
        # Page 1 already shows ``near`` is not in the feed: only ``deep`` is looked up.
        assert [r.url.params.get("name") for r in feed] == [None, deep.key]

    def test_paging_on_is_kept_when_it_is_cheaper_than_the_lookups(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        self._busy_feed(fake_api, clock, runs=150)  # two pages in all
        stale = [_stale(clock, hours=10) for _ in range(3)]
        outcome = VerificationPoller(client, clock=clock).poll(stale)
        feed = [r for r in fake_api.api_requests() if r.url.path == PRINTS]
        assert [r.url.params.get("name") for r in feed] == [None, None]
        assert outcome.pages == 2

    def test_a_recent_print_not_in_the_feed_yet_still_reads_its_own_window(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        self._busy_feed(fake_api, clock, runs=2000)
        stale = _stale(clock, hours=90)
        recent = PendingPrint(key=new_key(), sent_at=clock.now() - timedelta(hours=8))
        fake_api.prints.append(run_record(embed_key("old", stale.key), status="ABORTED",
                                          guid="g-stale", created=stale.sent_at))
        outcome = VerificationPoller(client, clock=clock).poll([stale, recent])
        assert [r.print_guid for r in outcome.results] == ["g-stale"]
        assert [p.key for p in outcome.unseen] == [recent.key]
        # 8 h of history (160 runs): two pages, then the stale print's lookup.
        assert outcome.pages == 3


def _skewed_client(fake_api: FakeWebApi, clock: ManualClock, behind: timedelta) -> WebApiClient:
    """A client of a Web API whose clock (its answers' Date) is ``behind`` this machine's."""

    def answer(request: httpx.Request) -> httpx.Response:
        response = fake_api.handle(request)
        response.headers["Date"] = format_datetime(clock.now() - behind, usegmt=True)
        return response

    return WebApiClient(Credentials(fake_api.client_id, fake_api.client_secret),
                        base_url=fake_api.base_url, transport=httpx.MockTransport(answer),
                        clock=clock, sleep=clock.sleep)


class TestClockSkew:
    """A Dashboard clock behind ours widens the feed window instead of hiding our prints."""

    BEHIND = timedelta(minutes=25)

    def _printed(self, fake_api: FakeWebApi, clock: ManualClock) -> PendingPrint:
        """A print we sent 20 minutes ago, stamped by the Dashboard 25 minutes earlier."""
        item = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(20))
        fake_api.prints = [run_record(embed_key("crowns", item.key), status="FINISHED",
                                      guid="g-1", created=item.sent_at - self.BEHIND)]
        return item

    def test_the_poller_finds_a_print_the_dashboards_clock_stamped_before_our_window(
        self, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = self._printed(fake_api, clock)
        with _skewed_client(fake_api, clock, self.BEHIND) as client:
            client.list_printers()  # verify checks the credentials first: a first answer
            [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert (result.status, result.print_guid) == (VerifiedStatus.FINISHED, "g-1")

    def test_an_interrupted_send_is_found_despite_the_skew(
        self, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = self._printed(fake_api, clock)
        send = SendRecord(build_id=1, job_key=item.key, job_name=None, printer=None,
                          started_at=item.sent_at, holder=None)
        with _skewed_client(fake_api, clock, self.BEHIND) as client:
            client.list_printers()
            sighting = WebApiLocator(client).locate(send)
        assert sighting is not None and sighting.where == "the prints feed"

    def test_the_skew_is_measured_and_warned_of_once(self, clock: ManualClock) -> None:
        skew = ClockSkew()
        received = clock.now()
        with capture_logs() as logs:
            for _ in range(3):
                skew.observe(format_datetime(received - self.BEHIND, usegmt=True), received)
        assert skew.seconds == -1500 + 0.5
        assert [(e["event"], e["ahead"]) for e in logs] == [
            ("web_api_clock_skew", "this machine")]

    @pytest.mark.parametrize("header", [None, "", "yesterday-ish"])
    def test_an_answer_without_a_readable_date_changes_nothing(
        self, header: str | None, clock: ManualClock
    ) -> None:
        skew = ClockSkew()
        skew.observe("Sun, 06 Dec 2026 20:00:00 GMT", datetime.fromisoformat(
            "2026-12-06T20:00:00+00:00"))
        skew.observe(header, clock.now())
        assert skew.seconds == 0.5


class TestNoMatchToTheWrongJob:
    """A run carrying another build's key is never taken for a pending print by job id."""

    def test_a_shared_print_job_id_does_not_hand_another_builds_run_over(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        # The Local API does not promise its job ids are unique (a restarted server may
        # count again): another build's run may carry the id this print was given.
        item = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(20),
                            print_job_id="job-3")
        fake_api.prints = [run_record(embed_key("someone else's crowns", new_key()),
                                      status="FINISHED", guid="job-3", created=clock.now())]
        outcome = VerificationPoller(client, clock=clock).poll([item])
        assert (outcome.results, [p.key for p in outcome.unseen]) == ((), [item.key])
