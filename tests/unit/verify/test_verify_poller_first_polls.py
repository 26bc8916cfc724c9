"""A run's verification of a short print: the poll after the send comes at the print's end.

A `run` polls the prints feed as soon as its print is sent (the print has only started),
through a client made as ``tracking_for_run`` makes it, its credentials checked first. The
Dashboard simulator runs in this process on real HTTP, its prints on the test's manual clock
(a print of 10 s takes 10 s of it), and the poller waits on the same clock, so nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WEB_API_MAX_WAIT_S, Credentials, check_credentials
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.settings import CloudSettings
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server, write_job
from preform_pipeline.store import embed_key, new_key
from preform_pipeline.verify.poller import (
    DEFAULT_MIN_POLL_INTERVAL_S,
    PendingPrint,
    PollOutcome,
    VerificationPoller,
    VerifiedStatus,
)

SECRET = "first-polls-secret"


def _verify(dashboard: DashboardServer, clock: ManualClock, pending: PendingPrint,
            **poller: float) -> tuple[list[datetime], VerifiedStatus, datetime]:
    """Verify one print as `run` does, with the default poller but for ``poller``; when each
    poll came, the print's result and when it was known."""
    polled: list[datetime] = []

    def on_poll(_outcome: PollOutcome, _left: int) -> None:
        polled.append(clock.now())

    with make_web_client(CloudSettings(base_url=dashboard.url),
                         Credentials(TEST_CLIENT_ID, SECRET), clock=clock, sleep=clock.sleep,
                         max_wait_s=WEB_API_MAX_WAIT_S) as client:
        check_credentials(client)
        found = VerificationPoller(client, clock=clock, sleep=clock.sleep,
                                   **poller).run_until([pending], on_poll=on_poll)
    assert len(found) == 1
    return polled, found[0].status, found[0].at


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def dashboard(tmp_path: Path, clock: ManualClock) -> Iterator[DashboardServer]:
    with dashboard_server(tmp_path / "fleet", clock=clock, time_scale=1.0,
                          credentials=Credentials(TEST_CLIENT_ID, SECRET)) as server:
        yield server
        server.check()


def _sent(fleet: Path, clock: ManualClock, print_s: float) -> PendingPrint:
    """A print of ``print_s`` seconds sent now, as the pending print `run` follows."""
    key = new_key()
    job_id = write_job(fleet, name=embed_key("case-1", key), created_at=clock.now(),
                       estimated_print_time_s=print_s)
    return PendingPrint(key=key, sent_at=clock.now(), name="case-1", print_job_id=job_id)


class TestAShortPrint:
    """A print that ends soon is known at its end, never sooner than the shortest interval,
    not a minute later because the poll at the send spent the minute's share of the hour."""

    def test_a_10_s_print_is_known_at_the_shortest_interval_after_the_send(
        self, dashboard: DashboardServer, clock: ManualClock, tmp_path: Path
    ) -> None:
        pending = _sent(tmp_path / "fleet", clock, print_s=10)
        polled, status, found_at = _verify(dashboard, clock, pending)
        assert status is VerifiedStatus.FINISHED
        # The poll at the send saw it printing, 10 s to go: the next is at the floor.
        assert polled == [pending.sent_at]
        assert found_at == pending.sent_at + timedelta(seconds=DEFAULT_MIN_POLL_INTERVAL_S)

    def test_with_a_shorter_interval_it_is_known_just_after_its_estimated_end(
        self, dashboard: DashboardServer, clock: ManualClock, tmp_path: Path
    ) -> None:
        # A rehearsal's `poll_interval_s: 5`: the floor and the margin after an estimate.
        pending = _sent(tmp_path / "fleet", clock, print_s=10)
        _polled, status, found_at = _verify(dashboard, clock, pending, interval_s=5)
        assert status is VerifiedStatus.FINISHED
        assert found_at <= pending.sent_at + timedelta(seconds=10 + 5)
