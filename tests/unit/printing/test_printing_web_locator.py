"""Where the Web API locator finds a send's print: the feed, Fleet Control queues, the printer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.errors import CloudAuthError, PrintLookupError
from preform_pipeline.printing import SendRecord, Sighting
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.simulator.cloud.fake import ScriptedAnswer
from preform_pipeline.simulator.cloud.testing import (
    FakeWebApi,
    sample_group,
    sample_print_run,
    sample_printer,
    sample_queue_item,
)
from preform_pipeline.store import embed_key

KEY = "PP-7MKAM6Q0A3"
NAME = embed_key("crowns", KEY)
PRINTER = "Form4-Lab"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def api() -> FakeWebApi:
    return FakeWebApi(default_per_page=100)


@pytest.fixture
def make_client(api: FakeWebApi, clock: ManualClock) -> Iterator[Callable[..., WebApiClient]]:
    made: list[WebApiClient] = []

    def make(secret: str | None = None) -> WebApiClient:
        client = WebApiClient(
            Credentials(api.client_id, secret or api.client_secret),
            base_url=api.base_url, transport=api.transport(), clock=clock, sleep=clock.sleep,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def locator(make_client: Callable[..., WebApiClient]) -> WebApiLocator:
    return WebApiLocator(make_client())


def _send(clock: ManualClock, printer: str | None = PRINTER, name: str | None = NAME) -> SendRecord:
    return SendRecord(build_id=1, job_key=KEY, job_name=name, printer=printer,
                      started_at=clock.now(), holder=None)


def _run(name: str, created: datetime, **fields: Any) -> dict[str, Any]:
    return sample_print_run(name=name, created=created, printer=PRINTER, **fields)


def _api_paths(api: FakeWebApi) -> list[str]:
    return [r.url.path.rstrip("/").rsplit("/", 1)[-1] for r in api.api_requests()]


class TestSettings:
    """The locator refuses timings that make no sense and keeps the ones it is given."""

    @pytest.mark.parametrize("options", [
        {"report_delay_s": -0.5}, {"recheck_s": 0.0}, {"recheck_s": -1.0}, {"overlap_s": -1.0},
    ])
    def test_negative_or_zero_timings_are_refused(
        self, make_client: Callable[..., WebApiClient], options: dict[str, float]
    ) -> None:
        with pytest.raises(ValueError, match=r"^report_delay_s and overlap_s must be >= 0, "
                           r"recheck_s > 0$"):
            WebApiLocator(make_client(), **options)

    def test_zero_delay_and_overlap_are_allowed(
        self, make_client: Callable[..., WebApiClient]
    ) -> None:
        located = WebApiLocator(make_client(), report_delay_s=0, recheck_s=0.5, overlap_s=0)
        assert (located.report_delay_s, located.recheck_s, located.overlap_s) == (0.0, 0.5, 0.0)

    def test_the_defaults_are_five_minutes_fifteen_seconds_and_ten_minutes(
        self, locator: WebApiLocator
    ) -> None:
        assert (locator.report_delay_s, locator.recheck_s, locator.overlap_s) == (
            300.0, 15.0, 600.0)
        assert locator.name == "the Formlabs Web API"


class TestPrintsFeed:
    """A print in the feed is found by its key, from shortly before the send on."""

    def test_a_print_in_the_feed_is_found_with_its_job_printer_and_status(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.prints = [_run(NAME, clock.now(), status="PRINTING", guid="g-1",
                           print_job="job-1")]
        assert locator.locate(_send(clock)) == Sighting(
            "the prints feed", "job-1", PRINTER, "PRINTING", NAME)

    def test_a_print_without_a_job_id_is_named_by_its_guid(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.prints = [_run(NAME, clock.now(), status="QUEUED", guid="g-2", print_job="")]
        sighting = locator.locate(_send(clock))
        assert sighting is not None and sighting.job_id == "g-2"

    def test_a_renamed_print_that_still_carries_the_key_is_found(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        renamed = embed_key("crowns renamed", KEY)
        api.prints = [_run(renamed, clock.now(), status="PRINTING", guid="g-3")]
        sighting = locator.locate(_send(clock))
        assert sighting is not None and sighting.name == renamed

    def test_the_feed_is_searched_from_ten_minutes_before_the_send(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.prints = [_run(NAME, clock.now() - timedelta(seconds=590), status="PRINTING",
                           guid="g-4")]
        assert locator.locate(_send(clock)) is not None
        api.prints = [_run(NAME, clock.now() - timedelta(seconds=610), status="PRINTING",
                           guid="g-5")]
        assert locator.locate(_send(clock, printer=None)) is None

    def test_the_feed_is_asked_for_this_key_only(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        locator.locate(_send(clock, printer=None))
        (feed,) = [r for r in api.api_requests() if r.url.path.rstrip("/").endswith("/prints")]
        assert feed.url.params["name"] == KEY

    def test_a_print_of_another_key_is_not_this_send(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.prints = [_run(embed_key("crowns", "PP-A3VW2RZQNC"), clock.now(), status="PRINTING")]
        assert locator.locate(_send(clock, printer=None)) is None


class TestFleetControlQueues:
    """A job waiting in a Fleet Control queue is found; groups without Fleet Control are not
    asked."""

    def test_a_queued_job_is_found_in_its_groups_queue(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.groups = [sample_group(id="grp-1", name="Dental lab")]
        api.queues = {"grp-1": [sample_queue_item(id="q-7", name=NAME)]}
        assert locator.locate(_send(clock)) == Sighting(
            "the Fleet Control queue of Dental lab", "q-7", None, "QUEUED", NAME)

    def test_a_group_without_a_name_is_named_by_its_id(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.groups = [sample_group(id="grp-2", name="")]
        api.queues = {"grp-2": [sample_queue_item(id="", name=NAME)]}
        sighting = locator.locate(_send(clock))
        assert sighting is not None
        assert (sighting.where, sighting.job_id) == ("the Fleet Control queue of grp-2", None)

    def test_a_group_without_fleet_control_is_not_asked_for_a_queue(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.groups = [sample_group(id="grp-3", has_fleet_control=False)]
        api.queues = {"grp-3": [sample_queue_item(name=NAME)]}
        assert locator.locate(_send(clock, printer=None)) is None
        assert "queue" not in _api_paths(api)

    def test_a_group_without_fleet_control_does_not_stop_the_search(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.groups = [sample_group(id="plain", has_fleet_control=False),
                      sample_group(id="grp-6", name="Queue")]
        api.queues = {"grp-6": [sample_queue_item(id="q-6", name=NAME)]}
        sighting = locator.locate(_send(clock))
        assert sighting is not None and sighting.job_id == "q-6"

    def test_a_group_gone_since_it_was_listed_is_passed_over(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.groups = [sample_group(id="gone", name="Gone"), sample_group(id="grp-4", name="B")]
        api.queues = {"grp-4": [sample_queue_item(id="q-4", name=NAME)]}
        api.script(ScriptedAnswer(404, {"detail": "Not found."},
                                  path="/developer/v1/groups/gone/queue/"))
        sighting = locator.locate(_send(clock))
        assert sighting is not None and sighting.where == "the Fleet Control queue of B"

    def test_a_failing_queue_means_the_api_cannot_tell(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.groups = [sample_group(id="grp-5")]
        api.script(ScriptedAnswer(503, {"detail": "down"},
                                  path="/developer/v1/groups/grp-5/queue/"))
        with pytest.raises(PrintLookupError, match="the Web API could not be asked") as caught:
            locator.locate(_send(clock))
        assert KEY in str(caught.value)
        assert caught.value.hint == (
            "the lookup is repeated; check the network and the Dashboard")


class TestTargetPrinter:
    """The printer's current and previous run show a print before the feed does."""

    def test_the_current_run_of_the_target_printer_is_found(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        current = _run(NAME, clock.now(), status="PRINTING", guid="g-c", print_job="job-c")
        api.printers = [sample_printer(serial=PRINTER)]
        api.printers[0]["printer_status"]["current_print_run"] = current
        assert locator.locate(_send(clock)) == Sighting(
            f"the current run of printer {PRINTER}", "job-c", PRINTER, "PRINTING", NAME)

    def test_the_current_run_without_a_job_id_is_named_by_its_guid(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        current = _run(NAME, clock.now(), status="", guid="g-c2", print_job="")
        api.printers = [sample_printer(serial=PRINTER)]
        api.printers[0]["printer_status"]["current_print_run"] = current
        sighting = locator.locate(_send(clock))
        assert sighting is not None and (sighting.job_id, sighting.status) == ("g-c2", None)

    def test_the_previous_run_of_the_target_printer_is_found(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.printers = [sample_printer(serial=PRINTER, previous_print_run={
            "name": NAME, "guid": "g-p", "status": "FINISHED"})]
        assert locator.locate(_send(clock)) == Sighting(
            f"the previous run of printer {PRINTER}", "g-p", PRINTER, "FINISHED", NAME)

    def test_a_previous_run_with_empty_fields_has_no_job_or_status(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.printers = [sample_printer(serial=PRINTER, previous_print_run={
            "name": NAME, "guid": "", "status": None})]
        sighting = locator.locate(_send(clock))
        assert sighting is not None and (sighting.job_id, sighting.status) == (None, None)

    def test_a_printer_running_something_else_shows_nothing(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.printers = [sample_printer(serial=PRINTER, previous_print_run={"name": "other"})]
        assert locator.locate(_send(clock)) is None

    def test_a_target_that_is_not_a_printer_serial_shows_nothing(
        self, locator: WebApiLocator, clock: ManualClock
    ) -> None:
        assert locator.locate(_send(clock, printer="192.168.1.20")) is None

    def test_a_failing_printer_request_means_the_api_cannot_tell(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        api.script(ScriptedAnswer(500, {"detail": "boom"},
                                  path=f"/developer/v1/printers/{PRINTER}/"))
        with pytest.raises(PrintLookupError, match="could not be asked"):
            locator.locate(_send(clock))

    def test_without_a_target_printer_no_printer_is_asked(
        self, locator: WebApiLocator, api: FakeWebApi, clock: ManualClock
    ) -> None:
        assert locator.locate(_send(clock, printer=None)) is None
        assert PRINTER not in _api_paths(api)


class TestRefusedCredentials:
    """Refused credentials are a configuration error, never 'cannot tell right now'."""

    def test_refused_credentials_are_raised_as_they_are(
        self, make_client: Callable[..., WebApiClient], clock: ManualClock
    ) -> None:
        located = WebApiLocator(make_client(secret="wrong"))
        with pytest.raises(CloudAuthError):
            located.locate(_send(clock))
