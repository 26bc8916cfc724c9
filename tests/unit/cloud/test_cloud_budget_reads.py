"""What each Web API request asks of the job store that keeps the shared budget: a request
records itself, and the same call counts the hour (for the low-budget warning); the count for the
``web_api_request`` debug event only when that event is kept (a query per request on a
farm's PostgreSQL otherwise). The store is a real SQLite file behind the ``ledger=`` seam,
which records the calls a database would see; the Dashboard simulator answers on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.logging import configure_logging
from preform_pipeline.settings import CloudSettings
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import SqliteJobStore

SECRET = "budget-reads-secret"
REQUESTS = 5


class RecordingLedger:
    """The job store as the client's ledger, with the calls it received in order."""

    def __init__(self, store: SqliteJobStore) -> None:
        self.store = store
        self.calls: list[str] = []

    def spend_web_request(self, account: str, *, limit: int, now: datetime,
                          window_s: float) -> tuple[float, str, int]:
        self.calls.append("spend")
        return self.store.spend_web_request(account, limit=limit, now=now, window_s=window_s)

    def hold_web_requests(self, account: str, until: datetime) -> None:
        self.calls.append("hold")
        self.store.hold_web_requests(account, until)

    def web_requests_spent(self, account: str, *, now: datetime, window_s: float) -> int:
        self.calls.append("count")
        return self.store.web_requests_spent(account, now=now, window_s=window_s)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "run.jsonl"
    yield path
    configure_logging(level="WARNING", console=io.StringIO())
    logging.getLogger("preform_pipeline").handlers.clear()


def _requests(tmp_path: Path, ledger: RecordingLedger) -> list[str]:
    """The ledger's calls during ``REQUESTS`` requests (after the token's; before the close,
    whose budget line counts once more)."""
    clock = ManualClock()
    credentials = Credentials(TEST_CLIENT_ID, SECRET)
    with dashboard_server(tmp_path / "fleet", clock=clock, credentials=credentials) as dash:
        with make_web_client(CloudSettings(base_url=dash.url), credentials, clock=clock,
                             sleep=clock.sleep, ledger=ledger) as client:
            client.list_printers()  # the token first
            ledger.calls.clear()
            for _ in range(REQUESTS):
                client.list_printers()
                clock.advance(1)
            calls = list(ledger.calls)
        dash.check()
    return calls


class TestWhatARequestAsksOfTheStore:
    """One call per request, which records and counts; a count only for a kept debug event."""

    def test_at_info_a_request_is_one_call_that_records_and_counts(
        self, tmp_path: Path, log_file: Path
    ) -> None:
        configure_logging(level="INFO", json_file=log_file, console=io.StringIO())
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            calls = _requests(tmp_path, RecordingLedger(store))
        assert calls == ["spend"] * REQUESTS

    def test_at_debug_the_event_counts_once_more_and_carries_what_is_left(
        self, tmp_path: Path, log_file: Path
    ) -> None:
        configure_logging(level="DEBUG", json_file=log_file, console=io.StringIO())
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            calls = _requests(tmp_path, RecordingLedger(store))
        assert calls == ["spend", "count"] * REQUESTS
        events = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
        left = [e["budget_remaining"] for e in events if e["event"] == "web_api_request"]
        # The token and the first page came before: 1,200 less 3, 4, ...
        assert left[-REQUESTS:] == [1200 - n for n in range(3, 3 + REQUESTS)]
