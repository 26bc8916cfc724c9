"""The Web API client's group changes: bodies sent, answers parsed, refusals and 429s."""

from __future__ import annotations

import json

import httpx
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.errors import CloudError, CloudRateLimitError
from preform_pipeline.simulator.cloud.testing import (
    FakeWebApi,
    ScriptedAnswer,
    sample_group,
    sample_printer,
)
from tests.unit.cloud.conftest import ClientFactory

GROUP_ID = sample_group()["id"]
SERIAL = sample_printer()["serial"]
UNKNOWN_GROUP = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def account(fake_api: FakeWebApi) -> FakeWebApi:
    fake_api.groups = [sample_group(printers=[])]
    fake_api.printers = [sample_printer()]
    return fake_api


def _body(request: httpx.Request) -> object:
    return json.loads(request.content)


class TestBodies:
    """Each change sends the JSON body its request schema describes, and nothing more."""

    def test_create_sends_the_name_and_returns_the_new_group(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        made = client.create_group("Dental lab")

        sent = account.api_requests()[-1]
        assert (sent.method, _body(sent)) == ("POST", {"name": "Dental lab"})
        assert made.name == "Dental lab"
        assert made.id in {g["id"] for g in account.groups}

    def test_update_sends_only_what_is_given_with_the_override_as_text(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        updated = client.update_group(GROUP_ID, remote_print_enabled_override=False)

        sent = account.api_requests()[-1]
        assert (sent.method, _body(sent)) == ("PATCH", {"remote_print_enabled_override": "false"})
        assert updated.remote_print_enabled_override is False
        assert updated.name == sample_group()["name"]

    def test_an_update_with_nothing_to_change_is_refused_before_sending(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        with pytest.raises(ValueError, match="name or a remote_print"):
            client.update_group(GROUP_ID)
        assert account.api_requests() == []

    def test_members_are_added_promoted_and_removed_by_email(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        added = client.add_group_member(GROUP_ID, "tech@lab.example")
        promoted = client.update_group_member(GROUP_ID, "tech@lab.example", is_admin=True)
        client.remove_group_member(GROUP_ID, "tech@lab.example")

        bodies = [(r.method, _body(r)) for r in account.api_requests()]
        assert bodies == [
            ("POST", {"user": "tech@lab.example"}),
            ("PUT", {"user": "tech@lab.example", "is_admin": True}),
            ("DELETE", {"user": "tech@lab.example"}),
        ]
        assert (added.is_admin, promoted.is_admin) == (False, True)
        assert [m["email"] for m in account.groups[0]["memberships"]] == ["lab-bot@example.com"]

    def test_printers_are_moved_with_one_request(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        client.move_printers_to_group(GROUP_ID, [SERIAL])

        sent = account.api_requests()[-1]
        assert _body(sent) == {"target_group": GROUP_ID, "printers": [SERIAL]}
        assert client.list_groups()[0].printers == (SERIAL,)

    @pytest.mark.parametrize("serials", [[], "Form4-SweetMatcha"])
    def test_moving_no_printers_or_a_bare_string_is_refused_before_sending(
        self, client: WebApiClient, account: FakeWebApi, serials: list[str]
    ) -> None:
        with pytest.raises(ValueError, match="non-empty list"):
            client.move_printers_to_group(GROUP_ID, serials)
        assert account.api_requests() == []


class TestRefusals:
    """Refusals become CloudErrors carrying the status and the server's own words."""

    def test_an_unknown_group_is_a_404(self, client: WebApiClient, account: FakeWebApi) -> None:
        with pytest.raises(CloudError) as caught:
            client.delete_group(UNKNOWN_GROUP)

        assert caught.value.status_code == 404
        assert caught.value.body == {"detail": "Not found."}
        assert "group id" in (caught.value.hint or "")

    def test_a_bad_body_is_a_400_naming_the_field(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        with pytest.raises(CloudError) as caught:
            client.create_group("x" * 41)

        assert caught.value.status_code == 400
        assert "name: Ensure this field has no more than 40 characters." in str(caught.value)
        assert [g["id"] for g in account.groups] == [GROUP_ID]

    def test_an_unknown_printer_is_refused_and_nothing_moves(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        with pytest.raises(CloudError, match="Unknown printer") as caught:
            client.move_printers_to_group(GROUP_ID, [SERIAL, "Form4-Typo"])

        assert caught.value.status_code == 400
        assert account.groups[0]["printers"] == []

    def test_a_change_that_is_not_json_is_a_cloud_error(self, make_client: ClientFactory) -> None:
        api = FakeWebApi()

        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/o/token/"):
                return api.handle(request)
            return httpx.Response(201, text="<html>proxy login</html>")

        client = make_client(transport=httpx.MockTransport(handle))
        with pytest.raises(CloudError, match="not JSON"):
            client.create_group("Dental lab")


class TestRateLimit:
    """Changes spend the request budget and wait out a 429 like every other call."""

    def test_a_429_is_retried_after_retry_after(
        self, make_client: ClientFactory, account: FakeWebApi, clock: ManualClock
    ) -> None:
        account.script(
            ScriptedAnswer(429, {"detail": "Request was throttled."}, {"Retry-After": "7"},
                           path=f"/developer/v1/groups/{GROUP_ID}/members/")
        )
        client = make_client()
        started = clock.monotonic()

        member = client.add_group_member(GROUP_ID, "tech@lab.example")

        assert member.email == "tech@lab.example"
        assert clock.monotonic() - started >= 7
        posts = [r for r in account.api_requests() if r.method == "POST"]
        assert len(posts) == 2

    def test_without_waiting_a_429_raises(
        self, make_client: ClientFactory, account: FakeWebApi
    ) -> None:
        account.script(ScriptedAnswer(429, {"detail": "Request was throttled."},
                                      {"Retry-After": "7"}, path="/developer/v1/groups/"))
        client = make_client(wait_for_budget=False)

        with pytest.raises(CloudRateLimitError) as caught:
            client.create_group("Dental lab")
        assert caught.value.retry_after_s == 7

    def test_each_change_is_counted_against_the_budget(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        client.list_groups()  # the token is fetched (and counted) here
        before = client.budget().spent
        client.create_group("Dental lab")
        client.update_group(GROUP_ID, name="B")

        assert client.budget().spent - before == 2
