"""Verification against the Dashboard simulator over real HTTP, on a manual clock.

The simulator runs in-process on 127.0.0.1 (``dashboard_server``) and reads every clock from
a :class:`ManualClock`: prints progress, tokens expire and rate-limit windows slide as the
test (or the client's own waiting) moves the clock, so hours pass in milliseconds. Print runs
come from job files written as the PreFormServer simulator writes them (``write_job``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.printing import SendRecord
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server, write_job
from preform_pipeline.store import Build, JobState, SqliteJobStore, embed_key
from preform_pipeline.verify import VerificationPoller, verify_pending
from preform_pipeline.verify.targets import WebApiPrinters

SECRET = "verify-integration-secret"
CREDENTIALS = Credentials(TEST_CLIENT_ID, SECRET)
PRINT_S = 3600.0
PRINTS = "/developer/v1/prints/"
TOKEN = "/developer/v1/o/token/"


def _printed(
    store: SqliteJobStore, fleet: Path, clock: ManualClock, count: int, *, label: str = "case",
    printers: tuple[str, ...] = ("SimulatedForm4-1", "SimulatedForm4-2"),
) -> list[Build]:
    """``count`` builds whose prints were sent: in the store as print_sent, in the fleet as
    job files (one per build, named with its key), spread over the printers."""
    builds = []
    for n in range(count):
        job = store.create_job(recipe="r", source_path=f"{label}-{n}.stl",
                               state=JobState.PROCESSING)
        build = store.create_build(recipe="r", job_ids=[job.id])
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build.id, state, "test")
        name = embed_key(f"{label} {n}", build.job_key)
        store.transition_build(build.id, JobState.PRINT_SENDING, "sending", job_name=name)
        job_id = write_job(fleet, name=name, printer=printers[n % len(printers)],
                           created_at=clock.now(), estimated_print_time_s=PRINT_S)
        builds.append(store.transition_build(build.id, JobState.PRINT_SENT, "accepted",
                                             print_job_id=job_id))
    return builds


def _client(server: DashboardServer, clock: ManualClock, **options: object) -> WebApiClient:
    return WebApiClient(CREDENTIALS, base_url=server.url, clock=clock, sleep=clock.sleep,
                        **options)  # type: ignore[arg-type]


def _token_requests(server: DashboardServer) -> int:
    return sum(1 for e in server.exchanges if e.path.startswith(TOKEN))


class TestFiveHundredPendingPrints:
    """500 prints waiting at once are verified with a handful of requests per poll."""

    def test_all_500_are_verified_and_recorded(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        fleet = tmp_path / "fleet"
        printers = tuple(f"SimulatedForm4-{n}" for n in (1, 2))
        builds = _printed(store, fleet, clock, 500, printers=printers)
        with dashboard_server(fleet, clock=clock, credentials=CREDENTIALS,
                              time_scale=1.0) as server, _client(server, clock) as client:
            clock.advance(PRINT_S * 250 + 60)  # two printers, 250 prints each, one after another
            report = verify_pending(store, client, clock=clock, deadline_s=PRINT_S * 300)
            server.check()
            feed = [e for e in server.exchanges if e.path.startswith(PRINTS)]
        assert report.polls == 1
        assert len(feed) == 5  # 500 runs, 100 a page
        assert {store.get_build(b.id).state for b in builds} == {JobState.FINISHED}
        assert len(report.builds) == 500


class TestTokenExpiresMidRun:
    """Tokens that expire while prints run are replaced; verification carries on."""

    def test_a_one_minute_token_over_an_hour_of_polling(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        fleet = tmp_path / "fleet"
        builds = _printed(store, fleet, clock, 4)
        with dashboard_server(fleet, clock=clock, credentials=CREDENTIALS, time_scale=1.0,
                              token_lifetime_s=60) as server, _client(server, clock) as client:
            report = verify_pending(store, client, clock=clock, sleep=clock.sleep, wait=True)
            server.check()
            tokens = _token_requests(server)
            refused = [e for e in server.exchanges if e.status == 401]
        assert {store.get_build(b.id).state for b in builds} == {JobState.FINISHED}
        assert report.polls >= 3
        assert tokens >= 3  # every poll after the first minute needed a new token
        assert refused == []


class TestTooManyRequests:
    """A 429 storm is waited out (Retry-After) and verification completes."""

    def test_a_low_server_limit_is_backed_off_and_survived(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        fleet = tmp_path / "fleet"
        builds = _printed(store, fleet, clock, 150)
        with capture_logs() as logs, dashboard_server(
            fleet, clock=clock, credentials=CREDENTIALS, time_scale=1.0,
            per_second_limit=2, hourly_limit=4,
        ) as server, _client(server, clock) as client:
            clock.advance(PRINT_S * 75 + 60)
            # Small pages: one poll needs more requests than the server allows in an hour.
            poller = VerificationPoller(client, clock=clock, sleep=clock.sleep,
                                        deadline_s=PRINT_S * 100, per_page=25)
            verify_pending(store, client, clock=clock, wait=True, poller=poller)
            server.check()
            throttled = [e for e in server.exchanges if e.status == 429]
        assert {store.get_build(b.id).state for b in builds} == {JobState.FINISHED}
        assert throttled, "the server never throttled: the storm did not happen"
        waits = [e for e in logs if e["event"] == "web_api_rate_limited"]
        assert waits and all(e["retry_after_s"] >= 1 for e in waits)
        assert clock.slept >= 3600 - 60  # the hourly limit was waited out, not hammered


class TestPrinterError:
    """A print the printer failed ends with the printer's message, in the store too."""

    def test_the_error_message_reaches_the_store(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        fleet = tmp_path / "fleet"
        good, bad = _printed(store, fleet, clock, 1, label="good") + _printed(
            store, fleet, clock, 1, label="bad", printers=("SimulatedForm4-2",)
        )
        outcomes = parse_outcomes({"jobs": [
            {"name": "bad *", "outcome": "ERROR", "at": 0.3, "message": "Resin level too low"},
        ]})
        with dashboard_server(fleet, clock=clock, credentials=CREDENTIALS, time_scale=1.0,
                              outcomes=outcomes) as server, _client(server, clock) as client:
            report = verify_pending(store, client, clock=clock, sleep=clock.sleep, wait=True)
            server.check()
        rows = {r.job_key: r for r in report.builds}
        assert (rows[bad.job_key].state, rows[bad.job_key].message) == (
            JobState.PRINT_ERROR, "Resin level too low"
        )
        assert store.get_build(good.id).state is JobState.FINISHED
        # The error struck at 30 % of the print: it was known before the good one finished.
        assert store.get_build(bad.id).verified_at is not None
        assert store.get_build(bad.id).verified_at < (  # type: ignore[operator]
            store.get_build(good.id).verified_at
        )
        assert clock.now() - store.get_build(good.id).print_sent_at <= (  # type: ignore[operator]
            timedelta(seconds=PRINT_S + 15 * 60)
        )


class TestPastPrints:
    """A printer whose current print is a finished past print is free and confirms no send."""

    def test_the_past_print_neither_busies_the_printer_nor_confirms_a_send(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        serial = "SimulatedForm4-1"
        # A print sent to the printer that the Dashboard never received: nothing may confirm it.
        job = store.create_job(recipe="r", source_path="lost.stl", state=JobState.PROCESSING)
        build = store.create_build(recipe="r", job_ids=[job.id])
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build.id, state, "test")
        name = embed_key("lost", build.job_key)
        store.transition_build(build.id, JobState.PRINT_SENDING, "sending", job_name=name,
                               printer=serial)
        sent = store.transition_build(build.id, JobState.PRINT_SENT, "accepted")
        # Every printer's past print (the simulator's default) is its current print run.
        with dashboard_server(tmp_path / "fleet", clock=clock,
                              credentials=CREDENTIALS) as server, _client(server, clock) as client:
            clock.advance(60)
            current = client.get_printer(serial).current_print
            candidate = next(c for c in WebApiPrinters(client).printer_candidates()
                             if c.name == serial)
            sighting = WebApiLocator(client).locate(SendRecord.of(sent))
            report = verify_pending(store, client, clock=clock)
            server.check()

        assert current is not None and current.status == "FINISHED"
        assert current.created_at is not None and current.created_at < sent.updated_at
        assert (candidate.online, candidate.busy, candidate.ready) == (True, None, True)
        assert candidate.lacks("FORM-4-0", "FLGPGR05") == []
        assert sighting is None
        assert store.get_build(build.id).state is JobState.PRINT_SENT
        assert report.polls == 1
