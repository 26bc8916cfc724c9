"""The Dashboard simulator's group changes conform to the official Web API contract.

One scenario (create a group, set its override, invite, promote and remove a member, move
printers into it, move them back, delete it) runs over real HTTP against the in-process
simulator, once in each request media type the contract lists (JSON, a URL-encoded form,
``multipart/form-data``; an operation that lists only JSON gets JSON). Every request body is
first checked against the contract's request schema, then
the answer's status is the one the contract documents and its body validates against that
status's response schema; the groups list and the moved printers still conform after the
changes. The moved printers have printed (a printer that never did has a null current print,
a contract defect ``test_dashboard_responses`` covers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.simulator.cloud.server import ENDPOINTS, DashboardServer
from preform_pipeline.simulator.cloud.testing import dashboard_server, write_job
from tests.openapi_contract import Contract, web_api_contract

API = "/developer/v1"
CREDENTIALS = Credentials("conformance-groups", "conformance-groups-secret")


MOVED = ("SimulatedForm4-1", "SimulatedForm4-2")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[DashboardServer]:
    clock = ManualClock()
    fleet = tmp_path / "fleet"
    for serial in MOVED:
        write_job(fleet, name=f"on-{serial}", printer=serial, created_at=clock.now(),
                  estimated_print_time_s=10)
    clock.advance(60)
    with dashboard_server(fleet, clock=clock, credentials=CREDENTIALS) as server:
        yield server
        server.check()


@pytest.fixture
def http(served: DashboardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10.0) as client:
        answer = client.post(
            f"{API}/o/token/",
            data={
                "grant_type": "client_credentials",
                "client_id": CREDENTIALS.client_id,
                "client_secret": CREDENTIALS.client_secret,
            },
        )
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


def _documented_status(contract: Contract, template: str, method: str) -> int:
    codes = [int(c) for c in contract.operation(API + template, method)["responses"]]
    assert len(codes) == 1, f"{method} {template}: expected one documented answer, got {codes}"
    return codes[0]


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def _form_pairs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A body as form fields: a list as its key repeated, a boolean as ``true``/``false``."""
    pairs = []
    for key, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, json.dumps(item) if isinstance(item, bool) else str(item)))
    return pairs


def _encoded(body: dict[str, Any] | None, media_type: str) -> dict[str, Any]:
    """httpx keyword arguments that send ``body`` in ``media_type``."""
    if body is None or media_type == JSON:
        return {"json": body}
    pairs = _form_pairs(body)
    if media_type == FORM:
        return {"content": urlencode(pairs), "headers": {"Content-Type": FORM}}
    return {"files": [(key, (None, value)) for key, value in pairs]}


def send(
    http: httpx.Client,
    contract: Contract,
    method: str,
    template: str,
    body: dict[str, Any] | None = None,
    media_type: str = JSON,
    **ids: str,
) -> Any:
    """Send a conforming request in ``media_type`` where the operation lists it, else JSON;
    assert the documented status and body; the decoded body."""
    what = f"{method} {template}"
    if body is not None:
        listed = contract.operation(API + template, method.lower())["requestBody"]["content"]
        media_type = media_type if media_type in listed else JSON
        schema = contract.request_schema(API + template, method.lower(), media_type)
        contract.assert_valid(body, schema, f"request {what} as {media_type}")
    path = API + template.format(**ids)
    answer = http.request(method, path, **_encoded(body, media_type))
    status = _documented_status(contract, template, method.lower())
    assert answer.status_code == status, f"{what}: {answer.status_code} {answer.text}"
    schema = contract.response_schema(API + template, method.lower(), status)
    if schema is None:  # "No response body"
        assert answer.content == b""
        return None
    decoded = answer.json()
    contract.assert_valid(decoded, schema, f"answer {what} {status}")
    return decoded


class TestGroupChanges:
    """Each group change is answered with the documented status and body."""

    @pytest.mark.parametrize("media", [JSON, FORM, MULTIPART])
    def test_a_group_life_conforms(self, http: httpx.Client, media: str) -> None:
        contract = web_api_contract()
        made = send(http, contract, "POST", "/groups/", {"name": "Dental lab"}, media)
        group = made["id"]
        send(http, contract, "PATCH", "/groups/{group_id}/",
             {"name": "Dental lab A", "remote_print_enabled_override": "false"}, media,
             group_id=group)
        member = {"user": "tech@lab.example", "is_admin": False}
        send(http, contract, "POST", "/groups/{group_id}/members/", member, media, group_id=group)
        promoted = send(http, contract, "PUT", "/groups/{group_id}/members/",
                        {"user": "tech@lab.example", "is_admin": True}, media, group_id=group)
        assert promoted["is_admin"] is True
        send(http, contract, "DELETE", "/groups/{group_id}/members/",
             {"user": "tech@lab.example"}, media, group_id=group)
        send(http, contract, "POST", "/groups/bulk-add-printers/",
             {"target_group": group, "printers": list(MOVED)}, media)

        listed = http.get(f"{API}/groups/").json()
        contract.assert_valid(listed, contract.response_schema(f"{API}/groups/", "get", 200),
                              "groups after changes")
        template = f"{API}/printers/{{printer_serial}}/"
        for serial in MOVED:
            moved = http.get(f"{API}/printers/{serial}/").json()
            contract.assert_valid(moved, contract.response_schema(template, "get", 200), serial)
            assert moved["group"] == {"id": group, "name": "Dental lab A"}
        home = next(g["id"] for g in listed if g["name"] == "SimulatedGroup-Form4")
        send(http, contract, "POST", "/groups/bulk-add-printers/",
             {"target_group": home, "printers": list(MOVED)}, media)
        send(http, contract, "DELETE", "/groups/{group_id}/", group_id=group)
        assert group not in {g["id"] for g in http.get(f"{API}/groups/").json()}

    def test_every_documented_group_change_is_served(self) -> None:
        contract = web_api_contract()
        documented = {
            (path, method.upper())
            for path, item in contract.document["paths"].items()
            if path.startswith(f"{API}/groups/")
            for method in item
            if method in ("post", "put", "patch", "delete")
        }
        served_routes = {(API + pattern, method) for method, pattern in ENDPOINTS}
        assert documented <= served_routes, sorted(documented - served_routes)
