"""The rate limiter with a ledger: processes that open one job store keep one hourly budget.

Two limiters on one SQLite store stand for two processes (each opens the store as its own
connection); the clock is the one seam, a manual one shared by both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.cloud.ratelimit import LEDGER_RETRY_S, RateLimiter, account_key
from preform_pipeline.errors import CloudRateLimitError
from preform_pipeline.settings.cloud import CloudSettings, read_cloud_settings
from preform_pipeline.simulator.cloud.testing import FakeWebApi
from preform_pipeline.store import SqliteJobStore

#: 3 requests an hour: 0.002 of 1,500.
SHARE = 0.002
ACCOUNT = account_key("https://api.formlabs.com", "client-1")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqliteJobStore, SqliteJobStore]]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as one, \
            SqliteJobStore(tmp_path / "jobs.sqlite3") as two:
        yield one, two


def _limiter(clock: ManualClock, ledger: SqliteJobStore | None,
             account: str = ACCOUNT) -> RateLimiter:
    return RateLimiter(hourly_share=SHARE, clock=clock, sleep=clock.sleep, ledger=ledger,
                       account=account)


class TestOneBudgetForEveryProcess:
    """A second process counts what the first spent in the hour."""

    def test_the_second_process_waits_for_the_first_ones_requests(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        for _ in range(3):
            first.acquire()
        start = clock.monotonic()
        with capture_logs() as logs:
            second.acquire()
        assert clock.monotonic() - start == pytest.approx(3600.0)
        waits = [(e["log_level"], e["reason"], e["until"])
                 for e in logs if e["event"] == "web_api_budget_wait"]
        assert waits == [("warning", "hourly_budget", "2024-05-01 13:00:00 UTC")]

    def test_one_that_cannot_wait_is_told_when_and_that_the_budget_is_shared(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        for _ in range(3):
            first.acquire()
        clock.advance(600)
        with pytest.raises(CloudRateLimitError) as caught:
            second.acquire(max_wait_s=60)
        assert caught.value.message == "the Web API request budget is spent for the next 3000 s"
        assert caught.value.hint == (
            "try again after 2024-05-01 13:00:00 UTC, or raise the hourly budget share (now "
            "0.002 of 1500/hour; every program using this job store spends it)")
        assert caught.value.retry_after_s == pytest.approx(3000.0)
        assert second.spent_this_hour == 3  # the refusal spent nothing

    def test_both_see_the_budget_they_share(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        first.acquire()
        first.acquire()
        second.acquire()
        assert (first.snapshot().spent, first.snapshot().remaining) == (3, 0)
        assert (second.spent_this_hour, second.remaining_this_hour) == (3, 0)
        assert (first.snapshot().total, second.snapshot().total) == (2, 1)  # each its own

    def test_the_low_budget_warning_counts_the_other_process_requests(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        # The store's answer to the request carries the hour's count: the second process's
        # first request takes the last of the three, and says so.
        first, second = (_limiter(clock, s) for s in stores)
        first.acquire()
        first.acquire()
        with capture_logs() as logs:
            second.acquire()
        low = [(e["log_level"], e["remaining"], e["limit"])
               for e in logs if e["event"] == "web_api_budget_low"]
        assert low == [("warning", 0, 3)]

    def test_another_account_is_not_held_back(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first = _limiter(clock, stores[0])
        other = _limiter(clock, stores[1], account_key("https://api.formlabs.com", "client-2"))
        for _ in range(3):
            first.acquire()
        assert other.acquire() == 0.0

    def test_the_budget_frees_as_the_first_requests_leave_the_hour(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        first.acquire()
        clock.advance(1000)
        first.acquire()
        first.acquire()
        clock.advance(2600)
        assert second.acquire() == 0.0  # the one sent 3,600 s ago has left
        with pytest.raises(CloudRateLimitError):
            second.acquire(wait=False)


class TestOneRetryAfterForEveryProcess:
    """A 429's Retry-After met by one process holds every other one back."""

    def test_the_other_process_waits_out_the_retry_after(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        first.defer(1800)
        clock.advance(300)
        with pytest.raises(CloudRateLimitError) as caught:
            second.acquire(max_wait_s=60)
        assert caught.value.message == (
            "the Web API asked to wait 1500 s before the next request")
        assert caught.value.hint is not None
        assert caught.value.hint.startswith("try again after 2024-05-01 12:30:00 UTC;")
        start = clock.monotonic()
        second.acquire()
        assert clock.monotonic() - start == pytest.approx(1500.0)


class TestALedgerThatFails:
    """A store that cannot count leaves the process its own limits, says so, and asks again."""

    def test_requests_go_on_under_the_process_own_limits(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        limiter = _limiter(clock, store)
        limiter.acquire()
        store.close()  # every further call raises StoreError
        with capture_logs() as logs:
            assert limiter.acquire() == 0.0
            assert limiter.snapshot().spent == 2
            limiter.defer(5)
            clock.advance(5)
        unshared = [e for e in logs if e["event"] == "web_api_budget_unshared"]
        assert [(e["log_level"], e["retry_s"]) for e in unshared] == [
            ("warning", LEDGER_RETRY_S)]  # said once, not at every request
        assert unshared[0]["error"].endswith("the job store is closed")
        clock.advance(LEDGER_RETRY_S - 5)  # a minute after it failed, to the instant
        with capture_logs() as logs:
            limiter.acquire()
        assert [e["event"] for e in logs].count("web_api_budget_unshared") == 1  # asked again

    def test_a_ledger_that_fails_first_in_a_retry_after_is_said_once(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        limiter = _limiter(clock, store)
        store.close()
        with capture_logs() as logs:
            limiter.defer(5)
            limiter.defer(6)
            assert limiter.acquire() == pytest.approx(6.0)  # this process holds back still
        unshared = [e for e in logs if e["event"] == "web_api_budget_unshared"]
        assert len(unshared) == 1 and unshared[0]["error"].endswith("the job store is closed")

    def test_a_ledger_that_fails_first_in_a_reading_is_said_once(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        limiter = _limiter(clock, store)
        limiter.acquire()
        store.close()
        with capture_logs() as logs:
            assert limiter.snapshot().spent == 1  # this process's own count
            assert limiter.acquire() == 0.0
        unshared = [e for e in logs if e["event"] == "web_api_budget_unshared"]
        assert len(unshared) == 1 and unshared[0]["error"].endswith("the job store is closed")


class TestAZeroRetryAfter:
    """``Retry-After: 0`` holds nobody back, here or in the ledger."""

    def test_no_process_waits(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        first.defer(0)
        assert (first.acquire(), second.acquire()) == (0.0, 0.0)
        assert clock.slept == 0


class TestTheAccountKey:
    """One account per base URL and client id, written the same by every version."""

    def test_a_trailing_slash_names_the_same_account(self) -> None:
        assert account_key("https://api.formlabs.com/", "c") == account_key(
            "https://api.formlabs.com", "c")
        assert account_key("https://proxy.example/apiX", "c") != account_key(
            "https://proxy.example/api", "c")

    def test_the_key_holds_no_credential_and_is_stable(self) -> None:
        key = account_key("https://api.formlabs.com", "client-1")
        assert "client-1" not in key
        # Pinned: every process (and farm node) of any version must name it alike.
        assert key == "web-api:2c8e1cb1e7cec1d1f1dc35d5"
        assert account_key("https://api.formlabs.com", "client-2") != key


class TestOneBudgetPerDashboardUser:
    """Applications of one Dashboard user (a client id per node) share the user's budget."""

    def _client(self, fake: FakeWebApi, clock: ManualClock, store: SqliteJobStore,
                client_id: str, account: str | None) -> WebApiClient:
        cloud = CloudSettings(base_url=fake.base_url, account=account, hourly_budget_share=SHARE)
        return make_web_client(cloud, Credentials(client_id, fake.client_secret), clock=clock,
                               sleep=clock.sleep, ledger=store, transport=fake.transport(),
                               wait_for_budget=False)

    @pytest.mark.parametrize(("account", "shared"), [("lab@example.com", True), (None, False)])
    def test_two_client_ids_naming_one_account_spend_one_budget(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore],
        account: str | None, shared: bool,
    ) -> None:
        node_a, node_b = FakeWebApi(client_id="node-a"), FakeWebApi(client_id="node-b")
        with self._client(node_a, clock, stores[0], "node-a", account) as a, \
                self._client(node_b, clock, stores[1], "node-b", account) as b:
            a.list_printers()  # a token and a read: 2 of the 3 an hour
            assert b.budget().spent == (2 if shared else 0)
            if shared:
                with pytest.raises(CloudRateLimitError):
                    b.list_printers()  # its token request is the 3rd, its read a 4th
            else:
                b.list_printers()

    def test_the_settings_read_the_account(self, tmp_path: Path) -> None:
        cloud = read_cloud_settings({"account": "lab@example.com"}, tmp_path)
        assert cloud.account == "lab@example.com"


class TestWhatOthersSpentLately:
    """``spent_by_others``: the ledger's count of a recent spell, less this process's own."""

    def test_the_other_process_requests_in_the_spell_only(
        self, clock: ManualClock, stores: tuple[SqliteJobStore, SqliteJobStore]
    ) -> None:
        first, second = (_limiter(clock, s) for s in stores)
        first.acquire()
        clock.advance(100)
        first.acquire()
        second.acquire()
        assert (second.spent_by_others(60), second.spent_by_others(150)) == (1, 2)
        assert first.spent_by_others(150) == 1

    def test_without_a_ledger_none_is_known_and_a_failed_one_cannot_tell(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        assert _limiter(clock, None).spent_by_others(120) == 0
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        limiter = _limiter(clock, store)
        store.close()
        with capture_logs():
            assert limiter.spent_by_others(120) is None
