"""The Dashboard simulator's HTTP server in-process on 127.0.0.1, on a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.errors import CloudAuthError, CloudError, CloudRateLimitError
from preform_pipeline.simulator.cloud.fleet_view import group_uuid
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import dashboard_server, write_job
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS

API = "/developer/v1"
CREDENTIALS = Credentials("unit-client", "unit-secret")
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": CREDENTIALS.client_id,
    "client_secret": CREDENTIALS.client_secret,
}

ServerFactory = Callable[..., DashboardServer]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


@pytest.fixture
def start(fleet: Path, clock: ManualClock) -> Iterator[ServerFactory]:
    """Start in-process dashboards on ``clock``; each is checked for server-side failures."""
    running: list[Any] = []

    def make(**options: Any) -> DashboardServer:
        options.setdefault("credentials", CREDENTIALS)
        options.setdefault("poll_interval", 0.005)
        context = dashboard_server(fleet, clock=clock, **options)
        server = context.__enter__()
        running.append((context, server))
        return server

    yield make
    for context, server in running:
        context.__exit__(None, None, None)
        server.check()


@pytest.fixture
def server(start: ServerFactory) -> DashboardServer:
    return start()


@pytest.fixture
def http(server: DashboardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def token(http: httpx.Client) -> dict[str, str]:
    answer = http.post(f"{API}/o/token/", data=TOKEN_FORM)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def web_client(server: DashboardServer, **options: Any) -> WebApiClient:
    # The client's own pacing runs on a clock of its own, so its waits cost no real time.
    own = ManualClock()
    options.setdefault("credentials", CREDENTIALS)
    creds = options.pop("credentials")
    return WebApiClient(creds, base_url=server.url, clock=own, sleep=own.sleep, **options)


class TestTheDateHeader:
    """Every answer's ``Date`` is read from the clock its prints are stamped by, as the real
    Dashboard's is: the client measures the two clocks' difference from it."""

    def test_the_date_is_the_simulated_clocks(
        self, http: httpx.Client, clock: ManualClock
    ) -> None:
        clock.advance(3 * 86400.0 + 0.25)

        answers = [http.post(f"{API}/o/token/", data=TOKEN_FORM),
                   http.get(f"{API}/widgets/")]

        expected = clock.now().replace(microsecond=0)
        assert [parsedate_to_datetime(a.headers["Date"]) for a in answers] == [expected] * 2


class TestRouting:
    """Unknown paths, wrong methods and missing tokens get the Web API's error answers."""

    def test_an_unknown_path_is_not_found(self, http: httpx.Client) -> None:
        answer = http.get(f"{API}/widgets/", headers=token(http))

        assert answer.status_code == 404
        assert answer.json() == {"detail": "Not found."}

    def test_a_wrong_method_names_the_allowed_one(
        self, http: httpx.Client, server: DashboardServer
    ) -> None:
        answer = http.delete(f"{API}/prints/", headers=token(http))

        assert answer.status_code == 405
        assert answer.json() == {"detail": 'Method "DELETE" not allowed.'}
        assert answer.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert server.exchanges[-1].user == CREDENTIALS.client_id

    def test_trace_is_a_method_not_allowed_as_django_answers_it(
        self, http: httpx.Client, server: DashboardServer
    ) -> None:
        answer = http.request("TRACE", f"{API}/groups/", headers=token(http))

        assert answer.status_code == 405
        assert answer.json() == {"detail": 'Method "TRACE" not allowed.'}
        assert answer.headers["Allow"] == "GET, POST, HEAD, OPTIONS"
        assert (server.exchanges[-1].method, server.exchanges[-1].status) == ("TRACE", 405)

    def test_trace_on_an_unknown_path_is_not_found(self, http: httpx.Client) -> None:
        answer = http.request("TRACE", f"{API}/widgets/")

        assert (answer.status_code, answer.json()) == (404, {"detail": "Not found."})

    def test_a_wrong_method_without_a_token_is_unauthenticated_first(
        self, http: httpx.Client
    ) -> None:
        # Django REST framework authenticates (initial()) before it looks the method up.
        answer = http.delete(f"{API}/prints/")

        assert answer.status_code == 401
        assert answer.json() == {"detail": "Authentication credentials were not provided."}
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Allow" not in answer.headers

    def test_a_wrong_method_with_a_revoked_token_is_unauthenticated(
        self, http: httpx.Client
    ) -> None:
        answer = http.patch(f"{API}/groups/", headers={"Authorization": "Bearer not-a-token"})

        assert (answer.status_code, answer.json()) == (
            401, {"detail": "Invalid or revoked access token."}
        )

    def test_an_unknown_path_is_not_found_before_the_token_is_checked(
        self, http: httpx.Client
    ) -> None:
        # Django's URL routing runs before any view: no token, still 404.
        for method in ("GET", "DELETE"):
            answer = http.request(method, f"{API}/widgets/")
            assert (answer.status_code, answer.json()) == (404, {"detail": "Not found."})

    def test_a_wrong_method_counts_against_the_users_hourly_limit(
        self, start: ServerFactory
    ) -> None:
        # DRF's throttles run in initial() too: the user's limit answers before the 405.
        server = start(hourly_limit=2)
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            bearer = token(http)  # the user's first request this hour
            assert http.delete(f"{API}/prints/", headers=bearer).status_code == 405
            answer = http.delete(f"{API}/prints/", headers=bearer)

        assert answer.status_code == 429
        assert "Retry-After" in answer.headers

    def test_a_token_endpoint_refuses_another_method_without_credentials(
        self, http: httpx.Client
    ) -> None:
        # The OAuth2 views are plain Django views, which check nothing before the method.
        answer = http.get(f"{API}/o/token/")

        assert answer.status_code == 405
        assert answer.headers["Allow"] == "POST, OPTIONS"

    def test_head_is_the_gets_answer_without_its_body(
        self, http: httpx.Client, server: DashboardServer
    ) -> None:
        # Django's View.setup makes HEAD the view's GET; the server sends no body.
        bearer = token(http)
        got = http.get(f"{API}/printers/", headers=bearer)
        answer = http.head(f"{API}/printers/", headers=bearer)

        assert answer.status_code == 200
        assert answer.content == b""
        assert answer.headers["Content-Length"] == got.headers["Content-Length"] != "0"
        assert answer.headers["Content-Type"] == "application/json"
        assert (server.exchanges[-1].method, server.exchanges[-1].status) == ("HEAD", 200)
        assert server.exchanges[-1].user == CREDENTIALS.client_id

    def test_head_of_an_unknown_printer_is_not_found(self, http: httpx.Client) -> None:
        answer = http.head(f"{API}/printers/NoSuchPrinter/", headers=token(http))

        assert (answer.status_code, answer.content) == (404, b"")

    def test_head_where_there_is_no_get_is_a_method_not_allowed(
        self, http: httpx.Client
    ) -> None:
        answer = http.head(f"{API}/groups/some-group/members/", headers=token(http))

        assert answer.status_code == 405
        assert answer.headers["Allow"] == "POST, PUT, DELETE, OPTIONS"

    def test_options_answers_the_views_metadata(
        self, http: httpx.Client, server: DashboardServer
    ) -> None:
        # Django REST framework's APIView.options: SimpleMetadata's body, Allow on the answer.
        answer = http.options(f"{API}/groups/", headers=token(http))

        assert answer.status_code == 200
        assert answer.json() == {
            "name": "Groups",
            "description": "",
            "renders": ["application/json", "text/html"],
            "parses": [
                "application/json", "application/x-www-form-urlencoded", "multipart/form-data"
            ],
        }
        assert answer.headers["Allow"] == "GET, POST, HEAD, OPTIONS"
        assert server.exchanges[-1].user == CREDENTIALS.client_id

    def test_options_of_a_printers_prints_names_the_view(self, http: httpx.Client) -> None:
        answer = http.options(f"{API}/printers/Form4-Unit/prints/", headers=token(http))

        assert (answer.status_code, answer.json()["name"]) == (200, "Printers Prints")
        assert answer.headers["Allow"] == "GET, HEAD, OPTIONS"

    def test_head_and_options_without_a_token_are_unauthenticated(
        self, http: httpx.Client
    ) -> None:
        # DRF's initial() authenticates before any handler, OPTIONS' and HEAD's included.
        options = http.options(f"{API}/printers/")
        head = http.head(f"{API}/printers/")

        assert (options.status_code, options.json()) == (
            401, {"detail": "Authentication credentials were not provided."}
        )
        assert (head.status_code, head.content) == (401, b"")
        assert head.headers["WWW-Authenticate"].startswith("Bearer")

    def test_options_counts_against_the_users_hourly_limit(self, start: ServerFactory) -> None:
        server = start(hourly_limit=2)
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            bearer = token(http)
            assert http.options(f"{API}/prints/", headers=bearer).status_code == 200
            assert http.options(f"{API}/prints/", headers=bearer).status_code == 429

    def test_options_on_a_token_endpoint_is_djangos_empty_answer(
        self, http: httpx.Client
    ) -> None:
        # A plain Django view's View.options: 200, no body, no credentials needed.
        answer = http.options(f"{API}/o/token/")

        assert (answer.status_code, answer.content) == (200, b"")
        assert answer.headers["Allow"] == "POST, OPTIONS"

    def test_the_api_needs_a_bearer_token(self, http: httpx.Client) -> None:
        answer = http.get(f"{API}/printers/")

        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")

    def test_paths_work_without_their_trailing_slash(self, http: httpx.Client) -> None:
        assert http.get(f"{API}/printers", headers=token(http)).status_code == 200

    def test_an_unknown_printer_is_a_404_for_the_client(self, server: DashboardServer) -> None:
        with web_client(server) as client, pytest.raises(CloudError) as caught:
            client.get_printer("NoSuchPrinter")

        assert caught.value.status_code == 404


class TestPagination:
    """Lists come in pages with count, next and previous, as Django REST framework pages."""

    @pytest.fixture(autouse=True)
    def seven_jobs(self, fleet: Path, clock: ManualClock) -> None:
        for index in range(7):
            write_job(fleet, name=f"job-{index}", created_at=clock.now() + timedelta(seconds=index))
        clock.advance(10)

    @pytest.fixture
    def server(self, start: ServerFactory) -> DashboardServer:
        # Never-printed printers: the counts are of the jobs written here, and each printer's
        # past print (the simulator's default) would add one run to every list.
        return start(print_history=False)

    def test_pages_link_to_their_neighbours(self, http: httpx.Client) -> None:
        headers = token(http)

        first = http.get(f"{API}/prints/", params={"per_page": 3}, headers=headers).json()
        second = http.get(first["next"], headers=headers).json()
        last = http.get(second["next"], headers=headers).json()

        assert first["count"] == second["count"] == last["count"] == 7
        assert [len(p["results"]) for p in (first, second, last)] == [3, 3, 1]
        assert first["previous"] is None and last["next"] is None
        assert second["previous"].endswith("/prints/?per_page=3")
        assert [r["name"] for r in first["results"]] == ["job-6", "job-5", "job-4"]

    def test_a_page_past_the_end_is_an_invalid_page(self, http: httpx.Client) -> None:
        answer = http.get(f"{API}/prints/", params={"page": 9}, headers=token(http))

        assert answer.status_code == 404
        assert answer.json() == {"detail": "Invalid page."}

    def test_page_sizes_are_capped_and_bad_ones_ignored(self, start: ServerFactory) -> None:
        small = start(max_per_page=4, default_per_page=2, print_history=False)
        with httpx.Client(base_url=small.url) as http:
            headers = token(http)
            capped = http.get(f"{API}/prints/", params={"per_page": 50}, headers=headers).json()
            ignored = http.get(f"{API}/prints/", params={"per_page": "x"}, headers=headers).json()
            last = http.get(f"{API}/prints/", params={"page": "last"}, headers=headers).json()

        assert len(capped["results"]) == 4
        assert len(ignored["results"]) == 2
        assert [r["name"] for r in last["results"]] == ["job-0"]

    def test_the_client_follows_every_page(self, server: DashboardServer) -> None:
        with web_client(server, per_page=2) as client:
            names = [run.name for run in client.iter_prints()]

        assert names == [f"job-{i}" for i in reversed(range(7))]


class TestFilters:
    """The documented print and event filters narrow the lists."""

    @pytest.fixture(autouse=True)
    def mixed_jobs(self, fleet: Path, clock: ManualClock) -> None:
        t0 = clock.now()
        write_job(fleet, name="lab-a-001", created_at=t0, material_code="FLGPGR05")
        write_job(
            fleet, name="lab-a-002", printer="SimulatedForm4-2", created_at=t0 + timedelta(1),
            material_code="FLGPBK05",
        )
        write_job(
            fleet, name="lab-b-001", printer="SimulatedForm3-1", machine_type="FORM-3-1",
            material_code="FLGPGR04", created_at=t0 + timedelta(2),
        )
        clock.advance(3 * 86_400 + 500)

    def names(self, server: DashboardServer, **filters: Any) -> set[str]:
        with web_client(server) as client:
            return {run.name for run in client.iter_prints(**filters)}

    @pytest.fixture
    def server(self, start: ServerFactory) -> DashboardServer:
        # Never-printed printers: the counts are of the jobs written here, and each printer's
        # past print (the simulator's default) would add one run to every list.
        return start(print_history=False)
    def test_each_filter_narrows_the_prints(
        self, server: DashboardServer, clock: ManualClock
    ) -> None:
        day1 = clock.now() - timedelta(days=3)
        assert self.names(server, name="lab-a") == {"lab-a-001", "lab-a-002"}
        assert self.names(server, printer="SimulatedForm4-2") == {"lab-a-002"}
        assert self.names(server, material="FLGPGR04") == {"lab-b-001"}
        assert self.names(server, machine_type_id=["FORM-3-1"]) == {"lab-b-001"}
        assert self.names(server, machine_type_id=["FORM-3-1", "FORM-4-0"]) == {
            "lab-a-001", "lab-a-002", "lab-b-001"
        }
        assert self.names(server, status="FINISHED") == {"lab-a-001", "lab-a-002", "lab-b-001"}
        assert self.names(server, status="PRINTING") == set()
        assert self.names(server, date__gt=day1 + timedelta(hours=1)) == {"lab-a-002", "lab-b-001"}
        assert self.names(server, date__lt=day1 + timedelta(hours=1)) == {"lab-a-001"}

    def test_a_printers_own_feed_has_only_its_prints(self, server: DashboardServer) -> None:
        with web_client(server) as client:
            names = [run.name for run in client.iter_printer_prints("SimulatedForm4-1")]

        assert names == ["lab-a-001"]

    def test_events_filter_by_type_and_print(self, server: DashboardServer) -> None:
        with web_client(server) as client:
            finished = list(client.iter_events(type="PRINT_FINISHED"))
            one = list(client.iter_events(print_run=finished[0].print_run.guid))  # type: ignore[union-attr]

        assert len(finished) == 3
        assert {e.type for e in one} == {"PRINT_STARTED", "PRINT_FINISHED"}

    @pytest.mark.parametrize(
        ("params", "field"),
        [({"status": "DONE"}, "status"), ({"date__gt": "yesterday"}, "date__gt")],
    )
    def test_a_bad_filter_value_is_a_bad_request(
        self, http: httpx.Client, params: dict[str, str], field: str
    ) -> None:
        answer = http.get(f"{API}/prints/", params=params, headers=token(http))

        assert answer.status_code == 400
        assert field in answer.json()


class TestRateLimits:
    """Past either limit the server answers 429 with Retry-After, until the window moves on."""

    def test_the_per_ip_limit(self, start: ServerFactory, clock: ManualClock) -> None:
        server = start(per_second_limit=2)
        with httpx.Client(base_url=server.url) as http:
            statuses = [http.get(f"{API}/printers/").status_code for _ in range(3)]
            refused = http.get(f"{API}/printers/")
            clock.advance(1.0)
            again = http.get(f"{API}/printers/")

        assert statuses == [401, 401, 429]
        assert refused.headers["Retry-After"] == "1"
        assert again.status_code == 401
        assert [e.throttled for e in server.exchanges].count("second per IP address") == 2

    def test_the_hourly_limit_per_user(self, start: ServerFactory, clock: ManualClock) -> None:
        server = start(hourly_limit=3)
        with httpx.Client(base_url=server.url) as http:
            headers = token(http)  # the token request is the first of three
            ok = [http.get(f"{API}/groups/", headers=headers).status_code for _ in range(2)]
            refused = http.get(f"{API}/groups/", headers=headers)
            clock.advance(3600)
            again = http.get(f"{API}/groups/", headers=headers)

        assert ok == [200, 200]
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "3600"
        assert again.status_code == 200

    def test_the_client_reports_the_wait_when_it_will_not_wait(
        self, start: ServerFactory
    ) -> None:
        server = start(hourly_limit=2)
        with web_client(server, wait_for_budget=False) as client:
            client.list_printers()
            with pytest.raises(CloudRateLimitError) as caught:
                client.list_groups()

        assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 3000


class TestTokens:
    """Expired and revoked tokens are refused; the client gets a new one and carries on."""

    def test_an_expired_token_is_refused(self, start: ServerFactory, clock: ManualClock) -> None:
        server = start(token_lifetime_s=30)
        with httpx.Client(base_url=server.url) as http:
            headers = token(http)
            clock.advance(30)
            answer = http.get(f"{API}/printers/", headers=headers)

        assert answer.status_code == 401
        assert "expired" in answer.json()["detail"]

    def test_the_client_fetches_a_new_token_when_the_server_expires_its_own(
        self, start: ServerFactory, clock: ManualClock
    ) -> None:
        server = start(token_lifetime_s=30)
        with web_client(server) as client:
            client.list_printers()
            clock.advance(31)  # only the server's clock: the client still trusts its token
            printers = client.list_printers()

        assert len(printers) == len(DEFAULT_PRINTERS)
        assert server.tokens.issued == 2
        assert [e.status for e in server.exchanges if e.path.startswith(f"{API}/printers")] == [
            200, 401, 200
        ]

    def test_revoking_through_the_client(self, server: DashboardServer) -> None:
        with web_client(server) as client:
            client.list_groups()
            assert client.revoke() is True

        assert server.tokens.revoked == 1
        assert server.tokens.live_tokens() == 0

    def test_wrong_credentials_are_an_auth_error(self, server: DashboardServer) -> None:
        wrong = Credentials("unit-client", "nope")
        with web_client(server, credentials=wrong) as client, pytest.raises(
            CloudAuthError
        ) as caught:
            client.list_printers()

        assert "invalid_grant" in str(caught.value)
        assert "nope" not in str(caught.value)


class TestQueues:
    """A group's queue is found by its Dashboard id, its fleet group id or its queue id."""

    @pytest.mark.parametrize(
        "name",
        [group_uuid("SimulatedGroup-Form4"), "SimulatedGroup-Form4", "SimulatedQueue-Form4"],
    )
    def test_each_name_finds_the_queue(
        self, http: httpx.Client, fleet: Path, clock: ManualClock, name: str
    ) -> None:
        write_job(fleet, name="a", printer="SimulatedForm4-1", created_at=clock.now())
        write_job(fleet, name="b", printer="SimulatedForm4-2", created_at=clock.now())
        write_job(
            fleet, name="waiting", printer="SimulatedGroup-Form4", target_kind="group",
            created_at=clock.now() + timedelta(seconds=1),
        )
        clock.advance(2)

        answer = http.get(f"{API}/groups/{name}/queue/", headers=token(http))

        assert [item["name"] for item in answer.json()] == ["waiting"]

    def test_an_unknown_group_is_not_found(self, http: httpx.Client) -> None:
        answer = http.get(f"{API}/groups/no-such-group/queue/", headers=token(http))

        assert answer.status_code == 404
