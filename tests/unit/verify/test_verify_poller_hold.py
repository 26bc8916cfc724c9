"""A `run`'s verification meets a long Retry-After: it polls again when the hold ends.

The verify step of `run` (``PrintTracking.after_run``) polls with ``run_until`` through a
Web API client made as ``tracking_for_run`` makes it: the job store as its ledger and
``WEB_API_MAX_WAIT_S`` as its longest wait, so a long Retry-After fails the poll rather than
being waited out inside it. The Dashboard simulator runs in this process on real HTTP with a
limit of three requests an hour, so its 429 and Retry-After are real; every clock is one
manual clock, and the poller waits on it, so the hour passes at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WEB_API_MAX_WAIT_S, Credentials
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.executor.progress import verify_line
from preform_pipeline.settings import CloudSettings
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server, write_job
from preform_pipeline.store import SqliteJobStore, embed_key, new_key
from preform_pipeline.verify.poller import (
    DEFAULT_VERIFY_DEADLINE_S,
    PendingPrint,
    PollOutcome,
    VerificationPoller,
    VerifiedStatus,
)

SECRET = "poller-hold-secret"
INTERVAL_S = 120.0
KEY = new_key(bits=29)


@dataclass
class Polled:
    at: datetime
    error: str | None
    retry_after_s: float | None
    line: str  # what a run's console shows for the poll (``verify_line``)


@dataclass
class Setting:
    clock: ManualClock
    store: SqliteJobStore
    dashboard: DashboardServer
    pending: PendingPrint

    def verify(
        self, deadline_s: float = DEFAULT_VERIFY_DEADLINE_S
    ) -> tuple[list[Polled], VerifiedStatus, datetime]:
        """Verify the one print as `run` does; every poll (when, and what failed), and the
        print's result."""
        polls: list[Polled] = []

        def on_poll(outcome: PollOutcome, left: int) -> None:
            polls.append(Polled(self.clock.now(), outcome.error, outcome.retry_after_s,
                                verify_line(outcome, left)))

        with make_web_client(CloudSettings(base_url=self.dashboard.url),
                             Credentials(TEST_CLIENT_ID, SECRET), clock=self.clock,
                             sleep=self.clock.sleep, ledger=self.store,
                             max_wait_s=WEB_API_MAX_WAIT_S) as client:
            poller = VerificationPoller(client, clock=self.clock, sleep=self.clock.sleep,
                                        interval_s=INTERVAL_S, requests_per_hour=1500,
                                        deadline_s=deadline_s)
            found = poller.run_until([self.pending], on_poll=on_poll)
        assert len(found) == 1
        return polls, found[0].status, found[0].at


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    clock = ManualClock()
    fleet = tmp_path / "fleet"
    name = embed_key("case-1", KEY)
    # A print of 3,000 s: it is still printing when the Web API says to wait, and has
    # finished long before the hold ends.
    job_id = write_job(fleet, name=name, created_at=clock.now(), estimated_print_time_s=3000.0)
    pending = PendingPrint(key=KEY, sent_at=clock.now(), name="case-1", print_job_id=job_id)
    with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store, \
            dashboard_server(fleet, clock=clock, time_scale=1.0, hourly_limit=3,
                             credentials=Credentials(TEST_CLIENT_ID, SECRET)) as dashboard:
        yield Setting(clock, store, dashboard, pending)
        dashboard.check()


class TestTheFirstPollAfterTheHold:
    """A poll refused by the hold waits for its end in one (or for a deadline inside it):
    the next poll comes when the hold ends, and finds the print finished; the hold is said
    once, not again at every doubling of a backoff."""

    def test_the_poll_after_the_hold_comes_when_it_ends(self, setting: Setting) -> None:
        polls, status, found_at = setting.verify()
        limited = [p for p in polls if p.retry_after_s is not None]
        assert limited, [p.error for p in polls]
        first = limited[0]
        assert first.retry_after_s is not None
        hold_ends = first.at + timedelta(seconds=first.retry_after_s)
        # The three requests of the hour (the token, two polls), then the 429, then,
        # after the hold, the poll that finds the print.
        assert [e.status for e in setting.dashboard.exchanges] == [200, 200, 200, 429, 200]
        assert status is VerifiedStatus.FINISHED
        assert hold_ends <= found_at <= hold_ends + timedelta(seconds=INTERVAL_S)
        # Nothing polled in vain past the hold's end.
        assert all(p.at < hold_ends for p in limited)

    def test_the_hold_is_said_once_with_when_it_ends(self, setting: Setting) -> None:
        polls, status, _found_at = setting.verify()
        limited = [p for p in polls if p.retry_after_s is not None]
        # One refused poll, one line; then nothing until the poll that ends the wait (a
        # finished print gets no progress line): no refusal said again every 10, 20, 40 s.
        assert len(limited) == 1, [p.line for p in polls]
        held = limited[0]
        assert held.retry_after_s is not None
        hold_ends = held.at + timedelta(seconds=held.retry_after_s)
        assert f"next poll in {held.retry_after_s:.0f} s" in held.line
        assert f"try again after {hold_ends:%Y-%m-%d %H:%M:%S} UTC" in held.line
        assert polls[-1] is held
        assert status is VerifiedStatus.FINISHED

    def test_a_deadline_inside_the_hold_still_ends_the_wait(self, setting: Setting) -> None:
        # The print is sent at the start; the hold begins half an hour in and lasts half an
        # hour; the deadline falls ten minutes into it.
        polls, status, found_at = setting.verify(deadline_s=2400.0)
        limited = [p for p in polls if p.retry_after_s is not None]
        assert len(limited) == 1, [p.line for p in polls]
        assert status is VerifiedStatus.UNVERIFIED
        assert found_at == setting.pending.sent_at + timedelta(seconds=2400)
        # The poll at the deadline is refused here, by the ledger: no request sent for it.
        assert [e.status for e in setting.dashboard.exchanges] == [200, 200, 200, 429]

