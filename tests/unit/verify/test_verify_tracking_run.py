"""The tracking a ``run`` gets from its recipe and settings, and the lines its summary prints."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.ratelimit import account_key
from preform_pipeline.errors import (
    CloudAuthError,
    CloudRateLimitError,
    PipelineError,
    RequestInfo,
)
from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.printing.locators import FleetFolderLocator
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.recipes import Recipe
from preform_pipeline.settings import CloudSettings, VerifySettings
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.settings.verify import NotificationSettings
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import dashboard_server
from preform_pipeline.simulator.devices import printer_status
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.tracking import (
    BuildTracker,
    PrinterClaims,
    PrintTracking,
    _rate_limited_line,
    tracking_for_run,
    verification_failed,
    verification_lines,
    web_locators,
)
from tests.unit.recipes.recipe_cases import SLA_RECIPE, validate_text
from tests.unit.verify.test_verify_targets import local_devices_client

CREDENTIALS = Credentials("tracking-client", "tracking-secret")
ENV = {"PREFORM_PIPELINE_CLIENT_ID": CREDENTIALS.client_id,
       "PREFORM_PIPELINE_CLIENT_SECRET": CREDENTIALS.client_secret}
VERIFY = VerifySettings(interval_s=45.0, deadline_s=7200.0, requests_per_hour=90.0,
                        lookup_grace_s=33.0)
#: The ``jobs`` command a run's hints name for a store of the settings' own.
JOBS = "preform-pipeline jobs --store /srv/lab/jobs.sqlite3"
#: How long a test waits for what must happen at once (far longer than any loaded machine
#: needs, far shorter than the hour a waited-out Retry-After would take).
WAIT_S = 30.0


def _recipe(tmp_path: Path, steps: str) -> Recipe:
    report = validate_text(tmp_path, "name: shop\n" + SLA_RECIPE + steps)
    assert report.recipe is not None, [str(p) for p in report.problems]
    return report.recipe


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def dashboard(tmp_path: Path, clock: ManualClock) -> Iterator[DashboardServer]:
    with dashboard_server(tmp_path / "fleet", clock=clock, credentials=CREDENTIALS,
                          poll_interval=0.005) as server:
        yield server


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class TestWhenARunNeedsTracking:
    """A run without a print step, or a dry run, needs none."""

    def test_a_recipe_without_a_print_step(self, tmp_path: Path) -> None:
        assert tracking_for_run(_recipe(tmp_path, "  - save_form\n"), CloudSettings(),
                                VERIFY, env={}) is None

    def test_a_dry_run(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n")
        assert tracking_for_run(recipe, CloudSettings(), VERIFY, env={}, dry_run=True) is None


class TestKeysOnly:
    """A print to a named printer without verify gets job keys and no Web API work."""

    def test_nothing_is_asked_of_the_web_api(self, tmp_path: Path, clock: ManualClock) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n")
        locators = (FleetFolderLocator(tmp_path / "fleet"),)
        messages: list[str] = []
        with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:
            tracking = tracking_for_run(
                recipe, CloudSettings(base_url=_closed_port_url()), VERIFY, run_id="run-7",
                env=ENV, clock=clock, store=store, locators=locators,
                dispatch=DispatchSettings(run_wait_s=120.0, poll_interval_s=7.0),
                on_waiting=messages.append, jobs=JOBS,
            )
            assert tracking is not None
            assert tracking.owner is not None and tracking.owner.jobs == JOBS
            assert (tracking.client, tracking.poller, tracking.notifier) == (None, None, None)
            assert (tracking.store, tracking.locators, tracking.clock) == (store, locators, clock)
            assert (tracking.recipe, tracking.run_id) == ("shop", "run-7")
            assert (tracking.wait_s, tracking.wait_interval_s) == (120.0, 7.0)
            assert tracking.on_waiting == messages.append
            assert not tracking.verifies

    def test_without_dispatch_settings_a_build_does_not_wait(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n")
        tracking = tracking_for_run(recipe, CloudSettings(), VERIFY, env={})
        assert tracking is not None
        assert tracking.wait_s == 0.0 and tracking.on_waiting is None

    def test_notifications_are_sent_where_configured(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n")
        verify = VerifySettings(notifications=NotificationSettings(
            webhook_url="https://hooks.example.com/x"))
        tracking = tracking_for_run(recipe, CloudSettings(), verify, env={})
        assert tracking is not None and tracking.notifier is not None
        tracking.close()


class TestWithTheWebApi:
    """verify or printer: auto use the Web API when credentials are configured."""

    def test_verify_gets_a_checked_client_a_poller_and_a_locator(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n"
                         "  - verify: {poll_interval_s: 90, timeout_s: 3600}\n")
        given = (FleetFolderLocator(tmp_path / "fleet"),)
        verify = VerifySettings(interval_s=45.0, deadline_s=7200.0, requests_per_hour=90.0,
                                lookup_grace_s=33.0, notifications=NotificationSettings(
                                    webhook_url="https://hooks.example.com/x"))
        store = SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock)
        tracking = tracking_for_run(recipe, CloudSettings(base_url=dashboard.url), verify,
                                    env=ENV, clock=clock, locators=given, store=store,
                                    run_id="run-9", on_waiting=print,
                                    dispatch=DispatchSettings(run_wait_s=60.0,
                                                              poll_interval_s=5.0), jobs=JOBS)
        assert tracking is not None and tracking.client is not None
        try:
            assert tracking.owner is not None and tracking.owner.jobs == JOBS
            assert (tracking.store, tracking.clock, tracking.recipe, tracking.run_id) == (
                store, clock, "shop", "run-9")
            assert tracking.notifier is not None and tracking.on_waiting is print
            assert (tracking.wait_s, tracking.wait_interval_s) == (60.0, 5.0)
            assert tracking.verifies and tracking.poller is not None
            assert tracking.poller.client is tracking.client and tracking.poller.clock is clock
            assert (tracking.poller.interval_s, tracking.poller.deadline_s) == (90.0, 3600.0)
            assert tracking.poller.requests_per_hour == 90.0
            assert tracking.locators[0] is given[0] and len(tracking.locators) == 2
            web = tracking.locators[1]
            assert isinstance(web, WebApiLocator) and web.report_delay_s == 33.0
            assert web.client is tracking.client
            assert tracking.client.budget().as_dict()["spent"] >= 1  # credentials checked
        finally:
            tracking.close()
            store.close()

    def test_the_verify_settings_are_the_default_poll_and_deadline(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n  - verify\n")
        tracking = tracking_for_run(recipe, CloudSettings(base_url=dashboard.url), VERIFY,
                                    env=ENV, clock=clock)
        assert tracking is not None and tracking.poller is not None
        assert (tracking.poller.interval_s, tracking.poller.deadline_s) == (45.0, 7200.0)
        tracking.close()

    def test_printer_auto_gets_a_client_but_no_poller(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        tracking = tracking_for_run(recipe, CloudSettings(base_url=dashboard.url), VERIFY,
                                    env=ENV, clock=clock)
        assert tracking is not None
        assert tracking.client is not None and tracking.poller is None
        assert len(tracking.locators) == 1
        tracking.close()

    def test_the_runs_requests_are_counted_in_its_store_with_every_other_process(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        cloud = CloudSettings(base_url=dashboard.url)
        with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:
            tracking = tracking_for_run(recipe, cloud, VERIFY, env=ENV, clock=clock,
                                        store=store)
            assert tracking is not None
            tracking.close()
            # The token and the credentials check, in the budget every process shares,
            # stamped by the run's clock: an hour and a second later they have left it.
            account = account_key(cloud.base_url, CREDENTIALS.client_id)
            spent = store.web_requests_spent(account, now=clock.now(), window_s=3600.0)
            later = clock.now() + timedelta(seconds=3601)
            left = store.web_requests_spent(account, now=later, window_s=3600.0)
        assert (spent, left) == (2, 0)

    def test_without_an_environment_given_the_process_environment_is_read(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer,
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        tracking = tracking_for_run(recipe, CloudSettings(base_url=dashboard.url), VERIFY,
                                    clock=clock)
        assert tracking is not None and tracking.client is not None
        tracking.close()

    def test_refused_credentials_fail_the_run_before_anything_is_sent(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n  - verify\n")
        wrong = {**ENV, "PREFORM_PIPELINE_CLIENT_SECRET": "not-the-secret"}
        with pytest.raises(CloudAuthError) as caught:
            tracking_for_run(recipe, CloudSettings(base_url=dashboard.url), VERIFY, env=wrong,
                             clock=clock)
        assert "nothing was sent to a printer" in (caught.value.hint or "")

    def test_an_unreachable_web_api_is_logged_and_the_run_goes_on(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n  - verify\n")
        cloud = CloudSettings(base_url=_closed_port_url())
        with capture_logs() as logs:
            tracking = tracking_for_run(recipe, cloud, VERIFY, env=ENV, clock=clock)
        assert tracking is not None and tracking.poller is not None
        [warning] = [e for e in logs if e["log_level"] == "warning"]
        assert warning["event"] == "web_api_unreachable_at_start"
        assert cloud.base_url.removeprefix("http://") in warning["error"]
        tracking.close()

    def test_without_credentials_verify_is_skipped(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-Lab}\n  - verify\n")
        tracking = tracking_for_run(recipe, CloudSettings(), VERIFY, env={})
        assert tracking is not None
        assert (tracking.client, tracking.poller, tracking.locators) == (None, None, ())


class TestStartedWhileTheBudgetIsSpent:
    """A run started while the store's shared hourly budget is spent is told it is rate-limited
    (not unreachable), until when, what it does meanwhile, and what helps."""

    def test_the_event_and_the_line_say_rate_limited_until_when(
        self, tmp_path: Path, clock: ManualClock, dashboard: DashboardServer
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n  - verify\n")
        # Three requests an hour, spent by other processes on this store 10 minutes ago.
        cloud = CloudSettings(base_url=dashboard.url, hourly_budget_share=0.002)
        account = account_key(cloud.base_url, CREDENTIALS.client_id)
        lines: list[str] = []
        with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:
            for _ in range(3):
                assert store.spend_web_request(account, limit=3, now=clock.now(),
                                               window_s=3600.0)[:2] == (0.0, "")
            clock.advance(600)
            with capture_logs() as logs:
                tracking = tracking_for_run(recipe, cloud, VERIFY, env=ENV, clock=clock,
                                            store=store, on_warning=lines.append)
            assert tracking is not None and tracking.poller is not None
            tracking.close()
        until = (clock.now() + timedelta(seconds=3000)).strftime("%Y-%m-%d %H:%M:%S UTC")
        [warning] = [e for e in logs if e["log_level"] == "warning"]
        assert warning["event"] == "web_api_rate_limited_at_start"
        assert (warning["until"], warning["retry_after_s"]) == (until, pytest.approx(3000))
        assert "the Web API request budget is spent for the next 3000 s" in warning["error"]
        assert lines == [
            f"the Web API is rate-limited until {until} (the Web API request budget is spent "
            "for the next 3000 s): this run goes on without it (`printer: auto` chooses from "
            "the PreFormServer's device list; verification polls again after that time); "
            "raise the hourly budget share (now 0.002 of 1500/hour; every program using "
            "this job store spends it)"
        ]
        assert dashboard.exchanges == []  # nothing was sent: the budget is spent


class TestTheRateLimitedLine:
    """The console line says until when only when it is known, what the run does meanwhile
    only for what its recipe has, and what helps only when the error says."""

    @pytest.mark.parametrize(("exc", "auto", "verifies", "line"), [
        (CloudRateLimitError("the Web API answered 429"), False, True,
         "the Web API is rate-limited (the Web API answered 429): this run goes on without it "
         "(verification polls again after a while)"),
        (CloudRateLimitError("the Web API answered 429", retry_after_s=90.0,
                             request=RequestInfo("GET", "https://api.example/printers/"),
                             hint="try again after 2024-05-01 12:01:30 UTC, or raise the share"),
         False, False,
         "the Web API is rate-limited until 2024-05-01 12:01:30 UTC (the Web API answered "
         "429): this run goes on without it; raise the share"),
        (CloudRateLimitError("spent", retry_after_s=30.0, hint="ask the lab"), True, False,
         "the Web API is rate-limited until 2024-05-01 12:00:30 UTC (spent): this run goes on "
         "without it (`printer: auto` chooses from the PreFormServer's device list); "
         "ask the lab"),
    ])
    def test_the_line_says_what_is_known(self, exc: CloudRateLimitError, auto: bool,
                                         verifies: bool, line: str) -> None:
        clock = ManualClock(wall=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
        assert _rate_limited_line(exc, clock, auto=auto, verifies=verifies) == line


class TestBatchesChoosingAtOnce:
    """Runs that choose printers at the same time (the hot folder's batches) and share their
    claims never choose one printer for two builds; a run's own claims end with it."""

    @staticmethod
    def _two_free_printers() -> list[dict[str, object]]:
        return [printer_status(replace(DEFAULT_PRINTERS[0], serial=name))
                for name in ("Form4-A", "Form4-B")]

    def test_two_runs_sharing_claims_choose_two_printers(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        claims = PrinterClaims()
        first, second = (PrintTracking(claims=claims) for _ in range(2))
        with local_devices_client(self._two_free_printers()) as local, \
                capture_logs() as logs:
            # Both printers still say they are free: neither print has been sent.
            chosen = [first.choose_printer("batch-1-001", recipe, local),
                      second.choose_printer("batch-2-001", recipe, local)]
        assert chosen == ["Form4-A", "Form4-B"]
        # The log says who chose each printer (a run's build here; dispatch elsewhere).
        assert [(e["printer"], e["build"], e["by"]) for e in logs
                if e["event"] == "printer_claimed"] == [("Form4-A", "batch-1-001", "run"),
                                                         ("Form4-B", "batch-2-001", "run")]

    def test_a_printer_chosen_by_a_run_that_ended_is_free_again(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        claims = PrinterClaims()
        first, second = (PrintTracking(claims=claims) for _ in range(2))
        with local_devices_client(self._two_free_printers()) as local:
            assert first.choose_printer("batch-1-001", recipe, local) == "Form4-A"
            # Its build failed before the print was sent, and its run ended.
            first.after_run(_result(_outcome("batch-1-001", None)), threading.Event())
            assert second.choose_printer("batch-2-001", recipe, local) == "Form4-A"


class TestABuildThatEndsWithoutItsPrint:
    """A build whose print was refused, got no answer, or was stopped before it went out
    frees the printer it chose at once, while its run (a batch) goes on."""

    @staticmethod
    def _chose_a(tmp_path: Path, claims: PrinterClaims, store: SqliteJobStore | None = None,
                 build_id: int | None = None) -> BuildTracker:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        tracker = BuildTracker(PrintTracking(claims=claims, store=store), "batch-1-001",
                               "PP-FIRSTBUILD", build_id)
        with local_devices_client(TestBatchesChoosingAtOnce._two_free_printers()) as local:
            assert tracker.resolve_printer("auto", recipe, local) == "Form4-A"
        return tracker

    @staticmethod
    def _next_choice(tmp_path: Path, claims: PrinterClaims) -> str:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        with local_devices_client(TestBatchesChoosingAtOnce._two_free_printers()) as local:
            return PrintTracking(claims=claims).choose_printer("batch-2-001", recipe, local)

    def test_a_refused_print_frees_its_printer(self, tmp_path: Path) -> None:
        claims = PrinterClaims()
        self._chose_a(tmp_path, claims).refused("PRINTER_OFFLINE")
        assert self._next_choice(tmp_path, claims) == "Form4-A"

    def test_a_print_without_an_answer_frees_its_printer(self, tmp_path: Path) -> None:
        # If the print did reach the printer, the printer's own status says it is busy.
        claims = PrinterClaims()
        self._chose_a(tmp_path, claims).unconfirmed("no answer within 30 s")
        assert self._next_choice(tmp_path, claims) == "Form4-A"

    def test_a_build_stopped_before_its_send_frees_its_printer(self, tmp_path: Path) -> None:
        claims = PrinterClaims()
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            build = store.create_build(recipe="shop")
            store.transition_build(build.id, JobState.CANCELLED, "cancelled by a user")
            tracker = self._chose_a(tmp_path, claims, store, build.id)
            with pytest.raises(PipelineError, match="cancelled in the job store"):
                tracker.before_send("shop-PP-FIRSTBUILD", "Form4-A")
        assert self._next_choice(tmp_path, claims) == "Form4-A"

    def test_a_print_sent_keeps_its_printer_until_the_printers_status_says_so(
        self, tmp_path: Path
    ) -> None:
        claims = PrinterClaims()
        tracker = self._chose_a(tmp_path, claims)
        tracker.before_send("shop-PP-FIRSTBUILD", "Form4-A")
        assert self._next_choice(tmp_path, claims) == "Form4-B"  # not sent yet
        with capture_logs() as logs:
            tracker.sent("job-1", "Form4-A")
        assert [(e["printer"], e["build"]) for e in logs if e["event"] == "printer_released"] \
            == [("Form4-A", "batch-1-001")]


class TestARateLimitedWebApi:
    """A run's Web API answers with an hour's Retry-After: the run goes on without it."""

    def test_printer_auto_reads_the_servers_devices_at_once(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        # Two requests an hour: the token and the credentials check. The printers feed is
        # then answered 429 with a Retry-After of most of an hour.
        with dashboard_server(tmp_path / "fleet", clock=clock, credentials=CREDENTIALS,
                              hourly_limit=2) as dashboard, capture_logs() as logs:
            tracking = tracking_for_run(recipe, CloudSettings(base_url=dashboard.url), VERIFY,
                                        env=ENV, clock=clock)
            assert tracking is not None and tracking.client is not None
            chosen: list[str] = []
            local = local_devices_client([printer_status(p) for p in DEFAULT_PRINTERS])

            def choose() -> None:
                chosen.append(tracking.choose_printer("shop-001", recipe, local))

            chooser = threading.Thread(target=choose, daemon=True)
            chooser.start()
            chooser.join(WAIT_S)
            try:
                assert not chooser.is_alive(), "choosing a printer waited out the Retry-After"
            finally:
                local.close()
                tracking.close()
        assert chosen == ["SimulatedForm4-1"]  # the first Form 4 with Grey V5 the server lists
        [unavailable] = [e for e in logs if e["event"] == "web_printers_unavailable"]
        assert "the Web API asked to wait" in unavailable["error"]
        assert 429 in [e.status for e in dashboard.exchanges]


class TestWebLocators:
    """The Web API is a place to look for interrupted sends only with a client."""

    def test_none_without_a_client(self) -> None:
        assert web_locators(None, VERIFY) == ()


def _outcome(name: str, verify: str | None, message: str | None = None) -> BuildOutcome:
    return BuildOutcome(name=name, index=1, status=BuildStatus.SUCCEEDED, models=("a.stl",),
                        source_files=("a.stl",), verify=verify, verify_message=message)


def _result(*outcomes: BuildOutcome) -> RunResult:
    return RunResult(run_id="r", recipe="shop", simulated=True, dry_run=False,
                     outcomes=outcomes)


class TestSummaryLines:
    """One line per verified build; the run fails when a verified print did not finish."""

    def test_a_line_per_verified_build_with_its_message(self) -> None:
        result = _result(_outcome("b-1", "finished"), _outcome("b-2", None),
                         _outcome("b-3", "print_error", "Resin level too low"))
        assert verification_lines(result) == [
            "verify b-1: finished", "verify b-3: print_error: Resin level too low"]

    @pytest.mark.parametrize(("verify", "failed"), [
        ("finished", False), ("pending", False), (None, False), ("skipped", False),
        ("aborted", True), ("print_error", True), ("unverified", True),
    ])
    def test_which_ends_fail_the_run(self, verify: str | None, failed: bool) -> None:
        assert verification_failed(_result(_outcome("ok", "finished"),
                                           _outcome("b", verify))) is failed
