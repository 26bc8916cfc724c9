"""The poller's credit is drawn from the job store's record, not given whole to every process.

A new process (a ``verify --wait`` from cron, a ``run``) cannot know what pollers before it
spent. Each one taking the whole credit, one after another on one account, spent past the
share an hour (verify/pace.py). Here every "process" is a client with its own limiter on one
job store (the ledger every process of a machine shares), on one manual clock, against the
in-process fake Web API; each polls a print due in seconds, so only the pace and the 30 s
floor time its polls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs
from verify_support import run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, RateLimiter, WebApiClient
from preform_pipeline.simulator.cloud.testing import FakeWebApi
from preform_pipeline.store import SqliteJobStore, embed_key, new_key
from preform_pipeline.verify import PendingPrint, VerificationPoller

HOUR_S = 3600.0
Process = Callable[[], VerificationPoller]


@pytest.fixture
def pending(fake_api: FakeWebApi, clock: ManualClock) -> list[PendingPrint]:
    item = PendingPrint(key=new_key(), sent_at=clock.now(), name="build-1")
    fake_api.prints = [run_record(embed_key("p", item.key), status="PRINTING", remaining_s=5,
                                  created=item.sent_at)]
    return [item]


@pytest.fixture
def new_process(fake_api: FakeWebApi, clock: ManualClock,
                store: SqliteJobStore) -> Iterator[Process]:
    """A poller as a new process makes it: its own client and limiter, the shared store."""
    made: list[WebApiClient] = []

    def make() -> VerificationPoller:
        limiter = RateLimiter(clock=clock, sleep=clock.sleep, ledger=store, account="acct")
        client = WebApiClient(Credentials(fake_api.client_id, fake_api.client_secret),
                              base_url=fake_api.base_url, transport=fake_api.transport(),
                              limiter=limiter, clock=clock, sleep=clock.sleep)
        made.append(client)
        return VerificationPoller(client, clock=clock, sleep=clock.sleep, requests_per_hour=60)

    yield make
    for client in made:
        client.close()


class TestOneProcessAfterAnother:
    """Pollers one after another on one account keep the share of the hour between them."""

    def test_cron_runs_polling_five_minutes_each_spend_no_more_than_the_share(
        self, new_process: Process, pending: list[PendingPrint], clock: ManualClock
    ) -> None:
        # A verify --wait every 5 minutes, each polling for 5: with a whole credit each,
        # 85 requests an hour; at the even pace one after another, 60.
        polls: list[tuple[float, int]] = []
        start = clock.monotonic()
        for run in range(24):
            poller, ends = new_process(), start + (run + 1) * 300
            while clock.monotonic() < ends:
                outcome = poller.poll(pending)
                polls.append((clock.monotonic(), outcome.requests))
                clock.advance(min(outcome.next_interval_s, ends - clock.monotonic()))
        busiest = max(sum(n for t, n in polls if at <= t < at + HOUR_S) for at, _ in polls)
        # The share, and one poll's overrun (a new process's token and page).
        assert busiest <= 60 + 2

    def test_after_a_quiet_spell_a_new_process_has_its_credit(
        self, new_process: Process, pending: list[PendingPrint], clock: ManualClock
    ) -> None:
        first = new_process()
        assert first.poll(pending).next_interval_s == pytest.approx(30)  # its credit
        clock.advance(first.pace.earn_s + 1)
        assert new_process().poll(pending).next_interval_s == pytest.approx(30)

    def test_one_right_after_another_starts_at_the_even_pace_and_says_so(
        self, new_process: Process, pending: list[PendingPrint], clock: ManualClock
    ) -> None:
        new_process().poll(pending)
        clock.advance(30)
        with capture_logs() as logs:
            # Its token and page, earned at 58 an hour: the other process spent the credit.
            assert new_process().poll(pending).next_interval_s == pytest.approx(2 * HOUR_S / 58)
        [forgone] = [e for e in logs if e["event"] == "verify_credit_forgone"]
        assert forgone["others_requests"] == 2

    def test_its_own_requests_before_its_first_poll_leave_it_the_credit(
        self, new_process: Process, pending: list[PendingPrint], clock: ManualClock
    ) -> None:
        # A run reads the feed (a printer's state, a send's lookup) just before it verifies.
        poller = new_process()
        poller.client.list_prints_page(1)
        assert poller.poll(pending).next_interval_s == pytest.approx(30)
