"""Every answer of the Dashboard simulator conforms to the official Web API contract.

A fleet with a print in every state the simulator produces (preprint, printing, finished,
failed, aborted, queued behind another, waiting in a Fleet Control queue, dispatched from it,
frozen on an offline printer; SLA, SLS and adaptive layers) is served in-process over real
HTTP on a fixed clock, and each endpoint's body is checked against the contract's response
schema for that path and method: with the shared helper, and again with a response-reading
validator, which also insists on the many required fields the contract marks ``readOnly``.

One reading of the contract: ``printer_status.current_print_run`` is required and not
nullable, so a printer that has never printed cannot be described. The simulator gives every
printer one finished print from before it started (its history), so even a fresh Dashboard
conforms strictly (``TestFreshDashboard``); started with ``print_history=False`` it sends
``null`` there for a brand-new printer, as the seed document allows, and
``TestContractReadings`` checks that case against the contract with only that field made
nullable, and proves the contract still cannot say it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.simulator.cloud.fleet_view import group_uuid
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import dashboard_server, write_job
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS, FleetState
from tests.openapi_contract import Contract, web_api_contract

API = "/developer/v1"
CREDENTIALS = Credentials("conformance-client", "conformance-secret")
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": CREDENTIALS.client_id,
    "client_secret": CREDENTIALS.client_secret,
}
GROUP = "SimulatedGroup-Form4"
SERIALS = (
    "SimulatedForm4-1",
    "SimulatedForm4-2",
    "SimulatedForm4B-1",
    "SimulatedForm4L-1",
    "SimulatedForm3-1",
    "SimulatedFuse1-1",
)


def _fleet(root: Path, clock: ManualClock) -> None:
    """A print in every state; every printer has printed by the time the fleet is served."""
    t0 = clock.now()
    # The six printers below only (the default fleet holds more): each of them prints.
    FleetState(root).declare(tuple(p for p in DEFAULT_PRINTERS if p.serial in SERIALS))

    def sent(seconds: float) -> Any:
        return t0 + timedelta(seconds=seconds)

    write_job(root, name="finished", created_at=sent(0), estimated_print_time_s=100)
    write_job(root, name="failed", created_at=sent(1), estimated_print_time_s=100)
    write_job(root, name="aborted", created_at=sent(2), estimated_print_time_s=100)
    write_job(root, name="printing", created_at=sent(3), estimated_print_time_s=10_000)
    write_job(root, name="queued-behind", created_at=sent(4))
    write_job(root, name="busy-2", printer="SimulatedForm4-2", created_at=sent(0),
              estimated_print_time_s=10_000)
    write_job(root, name="in-fleet-queue", printer=GROUP, target_kind="group", created_at=sent(5))
    write_job(root, name="dental", printer="SimulatedForm4B-1", machine_type="FORM-4B-0",
              material_code="FLDMGR01", created_at=sent(0), estimated_print_time_s=50)
    write_job(root, name="large", printer="SimulatedForm4L-1", machine_type="FORM-4L-0",
              created_at=sent(290), estimated_print_time_s=10_000)
    write_job(root, name="adaptive", printer="SimulatedForm3-1", machine_type="FORM-3-1",
              material_code="FLGPGR04", layer_thickness_mm="ADAPTIVE", created_at=sent(0),
              estimated_print_time_s=10_000)
    write_job(root, name="sintered", printer="SimulatedFuse1-1", machine_type="FS30-1-0",
              material_code="FLP12G01", layer_thickness_mm=0.11, created_at=sent(0),
              estimated_print_time_s=100_000)
    clock.advance(300)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return web_api_contract()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    clock = ManualClock()
    fleet = tmp_path_factory.mktemp("dashboard-conformance") / "fleet"
    _fleet(fleet, clock)
    outcomes = parse_outcomes(
        {
            "jobs": [
                {"name": "failed", "outcome": "ERROR", "at": 0.7, "message": "Resin tank empty"},
                {"name": "aborted", "outcome": "ABORTED", "at": 0.2},
            ],
            "printers": {"SimulatedFuse1-1": {"offline_after_s": 100}},
        }
    )
    with dashboard_server(
        fleet,
        clock=clock,
        started_at=clock.now() - timedelta(seconds=300),
        outcomes=outcomes,
        credentials=CREDENTIALS,
    ) as server:
        yield server
        server.check()


@pytest.fixture(scope="module")
def http(served: DashboardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10.0) as client:
        answer = client.post(f"{API}/o/token/", data=TOKEN_FORM)
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    answer = http.get(API + path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def check(contract: Contract, path: str, body: Any, method: str = "get", status: int = 200) -> None:
    schema = contract.response_schema(API + path, method, status)
    what = f"{method.upper()} {path} {status}"
    # Response schemas are checked in the read direction, so required readOnly fields count.
    contract.assert_valid(body, schema, what)


class TestFleetUnderTest:
    """The fleet really holds every state the conformance checks claim to cover."""

    def test_every_state_is_present(self, http: httpx.Client, served: DashboardServer) -> None:
        # The first jobs were sent at the very moment the Dashboard started.
        since = served.view.started_at - timedelta(seconds=1)
        runs = get(http, "/prints/", per_page=100)["results"]
        since_start = get(http, "/prints/", per_page=100, date__gt=since.isoformat())
        statuses = {r["name"]: r["status"] for r in since_start["results"]}
        past = [r for r in runs if r not in since_start["results"]]

        assert statuses == {
            "finished": "FINISHED",
            "failed": "ERROR",
            "aborted": "ABORTED",
            "printing": "PREPRINT",
            "queued-behind": "QUEUED",
            "busy-2": "PRINTING",
            "dental": "FINISHED",
            "large": "PREPRINT",
            "adaptive": "PRINTING",
            "sintered": "PREPRINT",
        }
        # Before the start, each printer's one past print (its history) and nothing else.
        assert sorted((r["printer"], r["status"]) for r in past) == sorted(
            (serial, "FINISHED") for serial in SERIALS
        )
        assert all(p["printer_status"]["current_print_run"] for p in get(http, "/printers/"))
        assert [q["name"] for q in get(http, f"/groups/{group_uuid(GROUP)}/queue/")] == [
            "in-fleet-queue"
        ]


class TestListsAndRecords:
    """Each GET endpoint's body conforms."""

    def test_printers(self, http: httpx.Client, contract: Contract) -> None:
        check(contract, "/printers/", get(http, "/printers/"))

    @pytest.mark.parametrize("serial", SERIALS)
    def test_each_printer(self, http: httpx.Client, contract: Contract, serial: str) -> None:
        check(contract, "/printers/{printer_serial}/", get(http, f"/printers/{serial}/"))

    @pytest.mark.parametrize(
        "params",
        [{}, {"per_page": 3}, {"per_page": 3, "page": 2}, {"status": "ERROR"}, {"name": "e"}],
    )
    def test_prints(
        self, http: httpx.Client, contract: Contract, params: dict[str, Any]
    ) -> None:
        body = get(http, "/prints/", **params)

        assert body["results"]
        check(contract, "/prints/", body)

    @pytest.mark.parametrize("serial", ["SimulatedForm4-1", "SimulatedFuse1-1"])
    def test_a_printers_prints(self, http: httpx.Client, contract: Contract, serial: str) -> None:
        body = get(http, f"/printers/{serial}/prints/", per_page=2)

        check(contract, "/printers/{printer_serial}/prints/", body)

    def test_tanks(self, http: httpx.Client, contract: Contract) -> None:
        check(contract, "/tanks/", get(http, "/tanks/"))

    def test_cartridges(self, http: httpx.Client, contract: Contract) -> None:
        check(contract, "/cartridges/", get(http, "/cartridges/"))

    def test_events(self, http: httpx.Client, contract: Contract) -> None:
        body = get(http, "/events/", per_page=100)

        assert {e["type"] for e in body["results"]} == {
            "PRINT_STARTED", "PRINT_FINISHED", "PRINT_ERROR", "PRINT_ABORTED", "PRINTER_OFFLINE"
        }
        check(contract, "/events/", body)

    def test_groups(self, http: httpx.Client, contract: Contract) -> None:
        check(contract, "/groups/", get(http, "/groups/"))

    @pytest.mark.parametrize("group", [GROUP, "__account__"])
    def test_group_queues(self, http: httpx.Client, contract: Contract, group: str) -> None:
        body = get(http, f"/groups/{group_uuid(group)}/queue/")

        check(contract, "/groups/{group_id}/queue/", body)


def _left_out(contract: Contract, schema: dict[str, Any], body: Any, where: str) -> list[str]:
    """The places where ``body`` leaves out a property its schema declares (none when complete)."""
    while "$ref" in schema or ("allOf" in schema and "properties" not in schema):
        schema = (
            contract.component(schema["$ref"].rsplit("/", 1)[-1])
            if "$ref" in schema
            else schema["allOf"][0]  # the Web API wraps a reference alone, to mark it readOnly
        )
    if isinstance(body, list):
        items = schema.get("items", {})
        return [gap for value in body for gap in _left_out(contract, items, value, where + "[]")]
    if not isinstance(body, dict):
        return []
    gaps = []
    for name, declared in schema.get("properties", {}).items():
        if name in body:
            gaps += _left_out(contract, declared, body[name], f"{where}.{name}")
        elif not declared.get("writeOnly"):
            gaps.append(f"{where}.{name}")
    return gaps


class TestEveryDeclaredField:
    """Every object carries every field its schema declares, as a DRF serializer renders it.

    The Dashboard's answers come from Django REST framework serializers, which render every
    readable field they declare (``null`` or empty when unset), so the contract's optional
    properties are there too; a client reading ``run["user"]["email"]`` gets the address.
    """

    @pytest.mark.parametrize(
        ("path", "url"),
        [
            ("/printers/", "/printers/"),
            ("/printers/{printer_serial}/", "/printers/SimulatedForm4-1/"),
            ("/prints/", "/prints/?per_page=100"),
            ("/printers/{printer_serial}/prints/", "/printers/SimulatedFuse1-1/prints/"),
            ("/tanks/", "/tanks/"),
            ("/cartridges/", "/cartridges/"),
            ("/events/", "/events/?per_page=100"),
            ("/groups/", "/groups/"),
            ("/groups/{group_id}/queue/", f"/groups/{group_uuid(GROUP)}/queue/"),
        ],
    )
    def test_no_declared_field_is_left_out(
        self, http: httpx.Client, contract: Contract, path: str, url: str
    ) -> None:
        schema = contract.response_schema(API + path, "get", 200)
        assert schema is not None
        body = get(http, url)

        assert body
        assert sorted(set(_left_out(contract, schema, body, "$"))) == []


class TestAuthentication:
    """The token and revoke endpoints answer as documented, refusals included."""

    def test_a_token(self, served: DashboardServer, contract: Contract) -> None:
        answer = httpx.post(f"{served.url}{API}/o/token/", data=TOKEN_FORM)

        assert answer.status_code == 200
        check(contract, "/o/token/", answer.json(), "post", 200)

    def test_wrong_secret_and_unknown_client(
        self, served: DashboardServer, contract: Contract
    ) -> None:
        wrong = httpx.post(
            f"{served.url}{API}/o/token/", data={**TOKEN_FORM, "client_secret": "x"}
        )
        unknown = httpx.post(f"{served.url}{API}/o/token/", data={**TOKEN_FORM, "client_id": "x"})

        assert (wrong.status_code, unknown.status_code) == (400, 401)
        check(contract, "/o/token/", wrong.json(), "post", 400)
        check(contract, "/o/token/", unknown.json(), "post", 401)

    def test_revoking(self, served: DashboardServer, contract: Contract) -> None:
        issued = httpx.post(f"{served.url}{API}/o/token/", data=TOKEN_FORM).json()
        form = {k: v for k, v in TOKEN_FORM.items() if k != "grant_type"}
        refused = httpx.post(
            f"{served.url}{API}/o/revoke_token/",
            data={**form, "client_secret": "x", "token": issued["access_token"]},
        )
        revoked = httpx.post(
            f"{served.url}{API}/o/revoke_token/", data={**form, "token": issued["access_token"]}
        )

        assert contract.response_schema(API + "/o/revoke_token/", "post", 200) is None
        assert (revoked.status_code, revoked.content) == (200, b"")
        assert refused.status_code == 401
        check(contract, "/o/revoke_token/", refused.json(), "post", 401)

    def test_revoking_needs_the_token_the_contract_requires(
        self, served: DashboardServer, contract: Contract
    ) -> None:
        form = {k: v for k, v in TOKEN_FORM.items() if k != "grant_type"}
        schema = contract.request_schema(
            API + "/o/revoke_token/", "post", "application/x-www-form-urlencoded"
        )
        assert schema is not None
        assert contract.errors(form, schema), "the contract should require a token"

        refused = httpx.post(f"{served.url}{API}/o/revoke_token/", data=form)

        # The contract lists no refusal but 401; oauthlib, behind the real endpoint, answers
        # a missing token with 400 invalid_request, in the token endpoint's error shape.
        assert (refused.status_code, refused.json()) == (
            400, {"error": "invalid_request", "error_description": "Missing token parameter."}
        )
        check(contract, "/o/token/", refused.json(), "post", 400)


def _fresh(fleet: Path, *paths: str, print_history: bool = True) -> Iterator[list[Any]]:
    """The bodies of ``paths`` on a Dashboard started on a fleet that has printed nothing."""
    with dashboard_server(fleet, credentials=CREDENTIALS, print_history=print_history) as server:
        with httpx.Client(base_url=server.url) as client:
            answer = client.post(f"{API}/o/token/", data=TOKEN_FORM).json()
            client.headers["Authorization"] = f"Bearer {answer['access_token']}"
            yield [get(client, path) for path in paths]
        server.check()


class TestFreshDashboard:
    """Before anything was sent, every printer's past print makes its body conform strictly."""

    @pytest.fixture
    def bodies(self, tmp_path: Path) -> Iterator[list[Any]]:
        yield from _fresh(tmp_path / "fleet", "/printers/", "/printers/SimulatedForm4-1/")

    def test_the_printers_list_and_one_printer_conform(
        self, bodies: list[Any], contract: Contract
    ) -> None:
        listed, one = bodies

        assert all(p["printer_status"]["current_print_run"] for p in listed)
        check(contract, "/printers/", listed)
        check(contract, "/printers/{printer_serial}/", one)


class TestContractReadings:
    """A printer that never printed: null current print, conforming otherwise."""

    @pytest.fixture
    def idle_printer(self, tmp_path: Path) -> Iterator[dict[str, Any]]:
        for (body,) in _fresh(
            tmp_path / "fleet", "/printers/SimulatedForm4-1/", print_history=False
        ):
            yield body

    def test_the_contract_cannot_say_no_current_print(
        self, idle_printer: dict[str, Any], contract: Contract
    ) -> None:
        schema = contract.response_schema(API + "/printers/{printer_serial}/", "get", 200)
        assert schema is not None

        assert idle_printer["printer_status"]["current_print_run"] is None
        assert contract.errors(idle_printer, schema), "the contract now admits null: drop this"

    def test_with_only_that_field_nullable_it_conforms(
        self, idle_printer: dict[str, Any], contract: Contract
    ) -> None:
        relaxed = copy.deepcopy(contract.component("MyDeepPrinterStatus"))
        # "nullable" beside an allOf does not admit null to a validator: say it as a choice.
        relaxed["properties"]["current_print_run"] = {
            "anyOf": [relaxed["properties"]["current_print_run"], {"enum": [None]}]
        }
        printer = copy.deepcopy(contract.component("DeveloperAPIMyPrinter"))
        printer["properties"]["printer_status"] = {"allOf": [relaxed]}

        # A component schema is checked in the read direction: required readOnly fields count.
        contract.assert_valid(idle_printer, printer, "a printer that never printed")
