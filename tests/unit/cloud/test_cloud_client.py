"""The Web API client: lazy pagination, filters, 429 handling, errors, logging and budget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from itertools import islice

import httpx
import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, RateLimiter, WebApiClient, format_datetime
from preform_pipeline.cloud.auth import TOKEN_PATH
from preform_pipeline.cloud.ratelimit import DEFAULT_RETRY_AFTER_S
from preform_pipeline.errors import (
    CloudError,
    CloudRateLimitError,
    CloudUnavailableError,
)
from preform_pipeline.simulator.cloud.testing import (
    FakeWebApi,
    ScriptedAnswer,
    sample_event,
    sample_print_run,
    sample_printer,
)

ClientFactory = Callable[..., WebApiClient]
PRINTS = "/developer/v1/prints/"
PRINTERS = "/developer/v1/printers/"


def _prints(count: int) -> list[dict[str, object]]:
    return [sample_print_run(guid=f"guid-{i:03d}", name=f"job-{i:03d}") for i in range(count)]


def _page_requests(api: FakeWebApi, path: str = PRINTS) -> list[httpx.Request]:
    return [r for r in api.api_requests() if r.url.path == path]


class TestLazyPagination:
    """Pages are fetched only when the caller reaches them."""

    def test_creating_the_iterator_sends_nothing(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(45)
        client.iter_prints(per_page=10)
        assert fake_api.requests == []

    @pytest.mark.parametrize(("consumed", "pages"), [(1, 1), (10, 1), (11, 2), (25, 3), (45, 5)])
    def test_requests_made_follow_the_items_consumed(
        self, client: WebApiClient, fake_api: FakeWebApi, consumed: int, pages: int
    ) -> None:
        fake_api.prints = _prints(45)
        taken = list(islice(client.iter_prints(per_page=10), consumed))
        assert [run.guid for run in taken] == [f"guid-{i:03d}" for i in range(consumed)]
        assert len(_page_requests(fake_api)) == pages
        assert len(fake_api.token_requests()) == 1

    def test_iterating_to_the_end_stops_after_the_last_page(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(45)
        assert len(list(client.iter_prints(per_page=10))) == 45
        pages = [r.url.params.get("page") for r in _page_requests(fake_api)]
        assert pages == [None, "2", "3", "4", "5"]

    def test_filters_are_kept_on_every_page(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(25)
        list(client.iter_prints(status="FINISHED", per_page=10))
        for request in _page_requests(fake_api):
            assert request.url.params["status"] == "FINISHED"
            assert request.url.params["per_page"] == "10"

    def test_the_client_default_page_size_is_sent(
        self, make_client: ClientFactory, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(3)
        list(make_client(per_page=7).iter_prints())
        assert _page_requests(fake_api)[0].url.params["per_page"] == "7"

    def test_a_next_link_to_another_host_is_followed_on_our_own_host(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(15)
        first = {
            "count": 15,
            "next": "http://elsewhere.example/developer/v1/prints/?page=2&per_page=10",
            "previous": None,
            "results": _prints(10),
        }
        fake_api.script(ScriptedAnswer(200, json=first, path=PRINTS))
        assert len(list(client.iter_prints(per_page=10))) == 15
        second = _page_requests(fake_api)[1]
        assert second.url.host == httpx.URL(fake_api.base_url).host
        assert second.url.scheme == "https"
        assert second.url.params["page"] == "2"

    def test_a_next_link_that_loops_is_an_error(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        looping = {
            "count": 20,
            "next": f"{fake_api.base_url}{PRINTS}?page=2&per_page=10",
            "previous": None,
            "results": _prints(10),
        }
        fake_api.script(*(ScriptedAnswer(200, json=looping, path=PRINTS) for _ in range(3)))
        with pytest.raises(CloudError, match="loops"):
            list(client.iter_prints(per_page=10))

    def test_every_paginated_list_is_lazy(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.events = [sample_event(id=i) for i in range(30)]
        events = client.iter_events(per_page=10)
        next(events)
        assert len(_page_requests(fake_api, "/developer/v1/events/")) == 1


class TestPageApi:
    """Callers that manage paging get one page with its neighbours' numbers."""

    def test_a_middle_page(self, client: WebApiClient, fake_api: FakeWebApi) -> None:
        fake_api.prints = _prints(45)
        page = client.list_prints_page(2, 10)
        assert [run.guid for run in page.items] == [f"guid-{i:03d}" for i in range(10, 20)]
        assert (page.page, page.per_page, page.count) == (2, 10, 45)
        assert (page.previous_page, page.next_page, page.has_next) == (1, 3, True)

    def test_the_last_page_has_no_next(self, client: WebApiClient, fake_api: FakeWebApi) -> None:
        fake_api.prints = _prints(45)
        page = client.list_prints_page(5, 10)
        assert len(page.items) == 5
        assert (page.next_page, page.has_next, page.previous_page) == (None, False, 4)

    def test_page_numbers_start_at_one(self, client: WebApiClient) -> None:
        with pytest.raises(ValueError, match="from 1"):
            client.list_prints_page(0)

    def test_a_page_past_the_end_is_a_cloud_error_with_404(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(3)
        with pytest.raises(CloudError) as caught:
            client.list_prints_page(9, 10)
        assert caught.value.status_code == 404


class TestFilters:
    """Every documented filter is sent under its documented name and format."""

    def test_print_filters_are_encoded_as_documented(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        paris = timezone(timedelta(hours=1))
        list(
            client.iter_prints(
                date=datetime(2025, 1, 6, 9, 30, tzinfo=paris),
                date__gt=datetime(2025, 1, 1, tzinfo=timezone.utc),
                date__lt=datetime(2025, 2, 1, 12, 0, 0, 250_000, tzinfo=timezone.utc),
                machine_type_id=["FORM-4-0", "FORM-4L-0"],
                material="FLGPGR05",
                name="crowns",
                printer="Form4-SweetMatcha",
                status="PRINTING",
            )
        )
        params = _page_requests(fake_api)[0].url.params
        assert params["date"] == "2025-01-06T08:30:00Z"
        assert params["date__gt"] == "2025-01-01T00:00:00Z"
        assert params["date__lt"] == "2025-02-01T12:00:00.250000Z"
        assert params.get_list("machine_type_id") == ["FORM-4-0", "FORM-4L-0"]
        assert params["material"] == "FLGPGR05"
        assert params["name"] == "crowns"
        assert params["printer"] == "Form4-SweetMatcha"
        assert params["status"] == "PRINTING"

    def test_a_single_machine_type_is_sent_once(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        list(client.iter_prints(machine_type_id="FORM-3-0"))
        assert _page_requests(fake_api)[0].url.params.get_list("machine_type_id") == ["FORM-3-0"]

    def test_unset_filters_are_not_sent(self, client: WebApiClient, fake_api: FakeWebApi) -> None:
        list(client.iter_prints())
        assert set(_page_requests(fake_api)[0].url.params) == {"per_page"}

    def test_printer_prints_take_the_serial_in_the_path_quoted(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        list(client.iter_printer_prints("Form 4/A", status="FINISHED"))
        request = fake_api.api_requests()[0]
        assert request.url.raw_path.startswith(b"/developer/v1/printers/Form%204%2FA/prints/")
        assert request.url.params["status"] == "FINISHED"

    def test_event_filters_are_encoded_as_documented(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        list(
            client.iter_events(
                cartridge="C1",
                date__gt=datetime(2025, 1, 1, tzinfo=timezone.utc),
                date__lt=datetime(2025, 1, 2, tzinfo=timezone.utc),
                print_run="guid-1",
                printer="P1",
                tank="T1",
                type="PRINT_FINISHED",
            )
        )
        params = _page_requests(fake_api, "/developer/v1/events/")[0].url.params
        assert dict(params) == {
            "cartridge": "C1",
            "date__gt": "2025-01-01T00:00:00Z",
            "date__lt": "2025-01-02T00:00:00Z",
            "print_run": "guid-1",
            "printer": "P1",
            "tank": "T1",
            "type": "PRINT_FINISHED",
            "per_page": "100",
        }

    def test_an_unknown_status_is_refused_before_any_request(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        with pytest.raises(ValueError, match="DONE"):
            client.iter_prints(status="DONE")
        assert fake_api.requests == []

    def test_naive_datetimes_are_refused(self, client: WebApiClient) -> None:
        with pytest.raises(ValueError, match="timezone"):
            client.iter_prints(date__gt=datetime(2025, 1, 1))

    def test_format_datetime_converts_to_utc(self) -> None:
        tokyo = timezone(timedelta(hours=9))
        assert format_datetime(datetime(2025, 1, 1, 9, tzinfo=tokyo)) == "2025-01-01T00:00:00Z"

    def test_the_fake_applies_the_filters_it_received(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.printers = [sample_printer(serial="P1"), sample_printer(serial="P2")]
        fake_api.prints = [
            sample_print_run(guid="a", printer="P1", status="FINISHED"),
            sample_print_run(guid="b", printer="P2", status="ERROR"),
        ]
        assert [r.guid for r in client.iter_prints(printer="P2")] == ["b"]
        assert [r.guid for r in client.iter_printer_prints("P1")] == ["a"]


class TestTooManyRequests:
    """A 429 waits for Retry-After and repeats the request, a bounded number of times."""

    def test_retry_after_seconds_is_honoured(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client.list_printers()
        fake_api.script(ScriptedAnswer(429, headers={"Retry-After": "7"}, path=PRINTERS))
        before = clock.monotonic()
        with capture_logs() as logs:
            client.list_printers()
        assert clock.monotonic() - before == pytest.approx(7, abs=0.2)
        assert len(_page_requests(fake_api, PRINTERS)) == 3
        limited = [e for e in logs if e["event"] == "web_api_rate_limited"]
        assert limited[0]["retry_after_s"] == 7
        assert limited[0]["log_level"] == "warning"  # it is waited out: said as it happens

    def test_retry_after_http_date_is_honoured(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client.list_printers()
        when = http_date(clock.now() + timedelta(seconds=42), usegmt=True)
        fake_api.script(ScriptedAnswer(429, headers={"Retry-After": when}, path=PRINTERS))
        before = clock.monotonic()
        client.list_printers()
        assert clock.monotonic() - before == pytest.approx(42, abs=0.2)

    def test_a_429_without_retry_after_waits_the_default(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client.list_printers()
        fake_api.script(ScriptedAnswer(429, path=PRINTERS))
        before = clock.monotonic()
        client.list_printers()
        assert clock.monotonic() - before == pytest.approx(DEFAULT_RETRY_AFTER_S, abs=0.2)

    def test_retries_are_bounded(
        self, make_client: ClientFactory, fake_api: FakeWebApi
    ) -> None:
        client = make_client(max_429_retries=2)
        fake_api.script(
            *(ScriptedAnswer(429, headers={"Retry-After": "1"}, path=PRINTERS) for _ in range(5))
        )
        with pytest.raises(CloudRateLimitError) as caught:
            client.list_printers()
        assert caught.value.status_code == 429
        assert caught.value.retry_after_s == 1
        assert len(_page_requests(fake_api, PRINTERS)) == 3

    @pytest.mark.parametrize("status", [429, 503])
    def test_a_429_or_503_on_the_token_endpoint_is_retried_too(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock, status: int
    ) -> None:
        # A 503 that says when (a Dashboard in maintenance) is waited as a 429 is.
        fake_api.script(ScriptedAnswer(status, headers={"Retry-After": "3"}, path=TOKEN_PATH))
        client.list_printers()
        assert len(fake_api.token_requests()) == 2
        assert clock.slept >= 3

    def test_a_caller_that_will_not_wait_gets_the_error_at_once(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        client = make_client(wait_for_budget=False)
        client.list_printers()
        fake_api.script(ScriptedAnswer(429, headers={"Retry-After": "30"}, path=PRINTERS))
        with pytest.raises(CloudRateLimitError) as caught:
            client.list_printers()
        assert caught.value.retry_after_s == 30
        assert len(_page_requests(fake_api, PRINTERS)) == 2
        with pytest.raises(CloudRateLimitError) as again:
            client.list_printers()
        assert again.value.request is not None
        assert len(_page_requests(fake_api, PRINTERS)) == 2

    def test_a_429_holds_back_other_clients_sharing_the_limiter(
        self, make_client: ClientFactory, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        shared = RateLimiter(clock=clock, sleep=clock.sleep)
        first = make_client(limiter=shared)
        second = make_client(limiter=shared)
        first.list_printers()
        second.list_printers()
        fake_api.script(
            ScriptedAnswer(429, headers={"Retry-After": "20"}, path=PRINTERS),
            ScriptedAnswer(429, headers={"Retry-After": "20"}, path=PRINTERS),
        )
        with pytest.raises(CloudRateLimitError):
            make_client(limiter=shared, max_429_retries=0).list_printers()
        before = clock.monotonic()
        second.list_printers()
        assert clock.monotonic() - before >= 20 - 0.01


class TestErrors:
    """Failures map onto the CloudError tree with the request and the answer."""

    def test_an_unknown_printer_is_a_cloud_error_with_404_and_a_hint(
        self, client: WebApiClient
    ) -> None:
        with pytest.raises(CloudError) as caught:
            client.get_printer("nope")
        assert caught.value.status_code == 404
        assert "serial" in caught.value.hint
        assert caught.value.request is not None
        assert caught.value.request.url.endswith("/printers/nope/")

    def test_a_5xx_is_unavailable(self, client: WebApiClient, fake_api: FakeWebApi) -> None:
        fake_api.script(ScriptedAnswer(502, json={"detail": "bad gateway"}, path=PRINTERS))
        with pytest.raises(CloudUnavailableError) as caught:
            client.list_printers()
        assert caught.value.status_code == 502
        assert caught.value.body == {"detail": "bad gateway"}

    def test_a_network_failure_is_unavailable(
        self, make_client: ClientFactory, clock: ManualClock
    ) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        client = make_client(transport=httpx.MockTransport(refuse))
        with pytest.raises(CloudUnavailableError, match="cannot reach"):
            client.list_printers()

    def test_a_timeout_is_unavailable(self, make_client: ClientFactory) -> None:
        def hang(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("timed out", request=request)

        client = make_client(transport=httpx.MockTransport(hang))
        with pytest.raises(CloudUnavailableError, match="in time"):
            client.list_printers()

    def test_an_answer_that_is_not_json_is_a_cloud_error(
        self, make_client: ClientFactory, fake_api: FakeWebApi
    ) -> None:
        def html(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/token/"):
                return fake_api.handle(request)
            return httpx.Response(200, text="<html>login</html>")

        client = make_client(transport=httpx.MockTransport(html))
        with pytest.raises(CloudError, match="not JSON") as caught:
            client.list_printers()
        assert "login" in str(caught.value.body)

    def test_an_answer_of_the_wrong_shape_is_a_cloud_error(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.script(ScriptedAnswer(200, json={"results": "nope"}, path=PRINTS))
        with pytest.raises(CloudError, match="page object"):
            list(client.iter_prints())

    def test_a_closed_client_refuses_requests(self, client: WebApiClient) -> None:
        client.close()
        with pytest.raises(CloudError, match="closed"):
            client.list_printers()


class TestLoggingAndBudget:
    """Each exchange is logged with the budget left; closing logs the budget spent."""

    def test_one_debug_event_per_request(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.prints = _prints(15)
        with capture_logs() as logs:
            list(client.iter_prints(per_page=10))
        requests = [e for e in logs if e["event"] == "web_api_request"]
        assert [(e["method"], e["path"], e["status"]) for e in requests] == [
            ("POST", "/developer/v1/o/token/", 200),
            ("GET", PRINTS, 200),
            ("GET", PRINTS, 200),
        ]
        assert all(e["log_level"] == "debug" for e in requests)
        assert [e["budget_remaining"] for e in requests] == [1199, 1198, 1197]
        assert all("elapsed_ms" in e for e in requests)

    def test_budget_counts_every_request_including_token_fetches(
        self, client: WebApiClient
    ) -> None:
        client.list_printers()
        client.list_groups()
        snap = client.budget()
        assert (snap.spent, snap.remaining, snap.limit) == (3, 1197, 1200)

    def test_closing_logs_the_budget(self, client: WebApiClient) -> None:
        client.list_printers()
        with capture_logs() as logs:
            client.close()
            client.close()
        budget = [e for e in logs if e["event"] == "web_api_budget"]
        assert len(budget) == 1
        assert (budget[0]["spent"], budget[0]["remaining"], budget[0]["limit"]) == (2, 1198, 1200)

    def test_the_context_manager_closes_the_client(
        self, credentials: Credentials, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        with WebApiClient(
            credentials,
            base_url=fake_api.base_url,
            transport=fake_api.transport(),
            clock=clock,
            sleep=clock.sleep,
        ) as client:
            client.list_printers()
        with pytest.raises(CloudError, match="closed"):
            client.list_printers()

    def test_a_base_url_with_a_path_prefix_is_kept(
        self, make_client: ClientFactory, fake_api: FakeWebApi
    ) -> None:
        seen: list[str] = []

        def prefixed(request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path)
            stripped = request.url.copy_with(path=request.url.path.removeprefix("/proxy"))
            return fake_api.handle(httpx.Request(request.method, stripped,
                                                 headers=request.headers,
                                                 content=request.content))

        client = make_client(base_url=fake_api.base_url + "/proxy",
                             transport=httpx.MockTransport(prefixed))
        client.list_printers()
        assert seen == ["/proxy/developer/v1/o/token/", "/proxy/developer/v1/printers/"]
