"""Both stores (SQLite, PostgreSQL): the Web API's hourly budget, kept for every process."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobStore, SqliteJobStore
from tests.unit.store.conftest import CLOCK_START

HOUR_S = 3600.0
ACCOUNT = "web-api:0123456789abcdef01234567"


def _at(seconds: float) -> datetime:
    return CLOCK_START + timedelta(seconds=seconds)


def _answer(store: JobStore, seconds: float, *, limit: int = 3,
            account: str = ACCOUNT) -> tuple[float, str, int]:
    return store.spend_web_request(account, limit=limit, now=_at(seconds), window_s=HOUR_S)


def _spend(store: JobStore, seconds: float, *, limit: int = 3,
           account: str = ACCOUNT) -> tuple[float, str]:
    """The wait and its reason (the count is :class:`TestTheCountThatComesBack`'s)."""
    wait, why, _spent = _answer(store, seconds, limit=limit, account=account)
    return wait, why


class TestTheHourlyBudget:
    """Requests are recorded up to the limit; past it the answer is how long until one frees."""

    def test_the_request_past_the_limit_waits_for_the_oldest_to_leave_the_hour(
        self, store: JobStore
    ) -> None:
        assert [_spend(store, t) for t in (0, 10, 20)] == [(0.0, "")] * 3
        assert _spend(store, 30) == (pytest.approx(3570.0), "hourly_budget")
        assert store.web_requests_spent(ACCOUNT, now=_at(30), window_s=HOUR_S) == 3

    def test_a_request_leaves_the_hour_exactly_an_hour_after_it_was_sent(
        self, store: JobStore
    ) -> None:
        for t in (0, 10, 20):
            _spend(store, t)
        assert _spend(store, 3600) == (0.0, "")
        assert _spend(store, 3605) == (pytest.approx(5.0), "hourly_budget")
        assert store.web_requests_spent(ACCOUNT, now=_at(3605), window_s=HOUR_S) == 3

    def test_a_smaller_limit_waits_until_enough_requests_left(self, store: JobStore) -> None:
        # Another process with a larger share spent three; this one may spend two an hour,
        # so it waits until two remain in the hour: the second oldest leaves at 3,610 s.
        for t in (0, 10, 20):
            _spend(store, t)
        assert _spend(store, 30, limit=2) == (pytest.approx(3580.0), "hourly_budget")

    def test_a_refused_request_is_not_counted(self, store: JobStore) -> None:
        for t in (0, 10, 20, 30, 40):
            _spend(store, t)
        assert store.web_requests_spent(ACCOUNT, now=_at(40), window_s=HOUR_S) == 3
        assert _spend(store, 3601) == (0.0, "")  # only the one at 0 had to leave

    def test_each_account_has_its_own_budget(self, store: JobStore) -> None:
        for t in (0, 10, 20):
            _spend(store, t)
        assert _spend(store, 30, account="web-api:other") == (0.0, "")
        assert store.web_requests_spent("web-api:other", now=_at(30), window_s=HOUR_S) == 1


class TestTheCountThatComesBack:
    """Each answer carries the account's requests in the hour, counted in the same
    transaction: what ``web_requests_spent`` would say next, without asking again."""

    def test_a_recorded_request_counts_itself_and_the_hours_others(
        self, store: JobStore
    ) -> None:
        assert [_answer(store, t, limit=5)[2] for t in (0, 10, 20)] == [1, 2, 3]
        _answer(store, 30, limit=5, account="web-api:other")
        assert _answer(store, 3605, limit=5) == (0.0, "", 3)  # the one at 0 left the hour
        assert store.web_requests_spent(ACCOUNT, now=_at(3605), window_s=HOUR_S) == 3

    def test_a_refused_request_answers_the_count_that_refused_it(
        self, store: JobStore
    ) -> None:
        for t in (0, 10, 20):
            _answer(store, t)
        assert _answer(store, 30) == (pytest.approx(3570.0), "hourly_budget", 3)
        store.hold_web_requests(ACCOUNT, _at(3700))
        assert _answer(store, 3610, limit=5) == (pytest.approx(90.0), "retry_after", 1)


class TestRetryAfter:
    """A server's Retry-After holds every process back until it has passed."""

    def test_requests_wait_until_the_hold_ends(self, store: JobStore) -> None:
        store.hold_web_requests(ACCOUNT, _at(100))
        assert _spend(store, 10) == (pytest.approx(90.0), "retry_after")
        assert store.web_requests_spent(ACCOUNT, now=_at(10), window_s=HOUR_S) == 0
        assert _spend(store, 100) == (0.0, "")

    def test_a_shorter_hold_does_not_cut_a_longer_one(self, store: JobStore) -> None:
        store.hold_web_requests(ACCOUNT, _at(100))
        store.hold_web_requests(ACCOUNT, _at(20))
        assert _spend(store, 30) == (pytest.approx(70.0), "retry_after")
        store.hold_web_requests(ACCOUNT, _at(500))
        assert _spend(store, 30) == (pytest.approx(470.0), "retry_after")

    def test_a_hold_holds_to_its_last_fraction_of_a_second(self, store: JobStore) -> None:
        store.hold_web_requests(ACCOUNT, _at(10.5))
        assert _spend(store, 10) == (pytest.approx(0.5), "retry_after")
        assert _spend(store, 10.5) == (0.0, "")

    def test_a_hold_is_for_its_account_only(self, store: JobStore) -> None:
        store.hold_web_requests(ACCOUNT, _at(100))
        assert _spend(store, 10, account="web-api:other") == (0.0, "")


class TestTheBudgetOutlivesTheProcess:
    """What one opening spent, the next opening (cron's next run) counts."""

    def test_a_second_opening_counts_the_first_ones_requests(self, store_path: Path) -> None:
        with SqliteJobStore(store_path) as first:
            for t in (0, 10, 20):
                _spend(first, t)
            first.hold_web_requests("web-api:held", _at(50))
        with SqliteJobStore(store_path) as second:
            assert _spend(second, 30) == (pytest.approx(3570.0), "hourly_budget")
            assert _spend(second, 30, account="web-api:held") == (pytest.approx(20.0),
                                                                   "retry_after")


class TestSeveralProcessesAtOnce:
    """Connections that spend at the same instant never take more than the limit together,
    and none of them fails: each count and record is one write transaction."""

    def test_four_connections_spend_exactly_the_limit(self, store_path: Path) -> None:
        SqliteJobStore(store_path).close()
        stores = [SqliteJobStore(store_path) for _ in range(4)]
        start = threading.Barrier(len(stores))
        answers: list[tuple[float, str]] = []
        failures: list[BaseException] = []

        def spend(store: SqliteJobStore) -> None:
            start.wait()
            for _ in range(5):
                try:
                    answers.append(_spend(store, 0, limit=10))
                except StoreError as exc:
                    failures.append(exc)

        _in_threads(spend, stores)
        assert failures == []
        assert sorted(reason for _, reason in answers) == [""] * 10 + ["hourly_budget"] * 10
        with SqliteJobStore(store_path) as store:
            assert store.web_requests_spent(ACCOUNT, now=_at(0), window_s=HOUR_S) == 10

    def test_four_connections_hold_at_once_and_the_longest_hold_stays(
        self, store_path: Path
    ) -> None:
        SqliteJobStore(store_path).close()
        stores = [SqliteJobStore(store_path) for _ in range(4)]
        start = threading.Barrier(len(stores))
        failures: list[BaseException] = []

        def hold(store: SqliteJobStore) -> None:
            start.wait()
            for n in range(5):
                try:
                    store.hold_web_requests(ACCOUNT, _at(100 + n * 10 + stores.index(store)))
                except StoreError as exc:
                    failures.append(exc)

        _in_threads(hold, stores)
        assert failures == []
        with SqliteJobStore(store_path) as store:
            assert _spend(store, 0) == (pytest.approx(143.0), "retry_after")


def _in_threads(work: Callable[[SqliteJobStore], None], stores: list[SqliteJobStore]) -> None:
    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for store in stores:
            store.close()


class TestALockedStore:
    """A store another writer holds says what it was doing, and records nothing."""

    def test_the_error_names_the_request_being_spent(self, store_path: Path) -> None:
        with SqliteJobStore(store_path, busy_timeout_s=0.1) as store:
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StoreError) as raised:
                    _spend(store, 0)
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert raised.value.message == (
                f"{store_path}: the job store stayed locked for more than 0.1 s while "
                "spending a Web API request")
            assert store.web_requests_spent(ACCOUNT, now=_at(0), window_s=HOUR_S) == 0


    def test_the_budget_is_read_while_another_writer_holds_the_store(
        self, store_path: Path
    ) -> None:
        # A budget snapshot (every request's log line, the run report) never waits for a
        # writer: it is a read.
        with SqliteJobStore(store_path, busy_timeout_s=0.1) as store:
            _spend(store, 0)
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                assert store.web_requests_spent(ACCOUNT, now=_at(1), window_s=HOUR_S) == 1
            finally:
                other.execute("ROLLBACK")
                other.close()


class TestADamagedStore:
    """A store whose budget tables are gone says which of its calls failed."""

    @pytest.mark.parametrize(("action", "call"), [
        ("spending a Web API request", lambda store: _spend(store, 0)),
        ("recording a Web API Retry-After",
         lambda store: store.hold_web_requests(ACCOUNT, _at(100))),
        ("reading the Web API budget",
         lambda store: store.web_requests_spent(ACCOUNT, now=_at(0), window_s=HOUR_S)),
    ])
    def test_the_error_names_what_was_being_done(
        self, store_path: Path, action: str, call: Callable[[JobStore], object]
    ) -> None:
        with SqliteJobStore(store_path) as store:
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("DROP TABLE web_api_requests")
            other.execute("DROP TABLE web_api_holds")
            other.close()
            with pytest.raises(StoreError) as raised:
                call(store)
            assert raised.value.message.startswith(
                f"{store_path}: the job store failed while {action}: no such table: web_api_")
