"""The Web API client against the official Web API contract.

Every request the client sends (path, method, query parameter names and values, form and JSON
bodies, bearer header) is checked against the spec, and answers that conform to the spec's
response schemas (full sample records and minimal ones holding only the required fields) parse
into the typed results. Group changes are sent to the fake, which applies the Dashboard
simulator's rules, so each call also gets a real answer.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import (
    Cartridge,
    Credentials,
    Event,
    GroupMember,
    NewGroup,
    Printer,
    PrinterGroup,
    PrintRun,
    QueueItem,
    Tank,
    WebApiClient,
)
from preform_pipeline.cloud.auth import TOKEN_PATH
from preform_pipeline.errors import CloudAuthError
from preform_pipeline.simulator.cloud.testing import (
    FakeWebApi,
    sample_cartridge,
    sample_event,
    sample_group,
    sample_print_run,
    sample_printer,
    sample_queue_item,
    sample_tank,
)
from tests.openapi_contract import Contract, web_api_contract

UTC = timezone.utc
GROUP_ID = sample_group()["id"]
SERIAL = sample_printer()["serial"]
FORM = "application/x-www-form-urlencoded"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

Call = Callable[[WebApiClient], object]

#: One call per client method, with every documented filter set.
CALLS: dict[str, Call] = {
    "list_printers": lambda c: c.list_printers(),
    "get_printer": lambda c: c.get_printer(SERIAL),
    "iter_prints": lambda c: list(
        c.iter_prints(
            date=datetime(2025, 1, 6, 8, tzinfo=UTC),
            date__gt=datetime(2025, 1, 1, tzinfo=UTC),
            date__lt=datetime(2025, 2, 1, 0, 0, 0, 500, tzinfo=UTC),
            machine_type_id=["FORM-4-0", "FORM-4L-0"],
            material="FLGPGR05",
            name="crowns",
            printer=SERIAL,
            status="FINISHED",
            per_page=5,
        )
    ),
    "list_prints_page": lambda c: c.list_prints_page(
        2, 3, status="FINISHED", date__gt=datetime(2024, 1, 1, tzinfo=UTC)
    ),
    "iter_printer_prints": lambda c: list(
        c.iter_printer_prints(
            SERIAL,
            date=datetime(2025, 1, 6, 8, tzinfo=UTC),
            date__gt=datetime(2024, 1, 1, tzinfo=UTC),
            date__lt=datetime(2026, 1, 1, tzinfo=UTC),
            machine_type_id="FORM-4-0",
            name="crowns",
            material="FLGPGR05",
            printer=SERIAL,
            status="FINISHED",
            per_page=4,
        )
    ),
    "list_printer_prints_page": lambda c: c.list_printer_prints_page(SERIAL, 1, 2),
    "iter_tanks": lambda c: list(c.iter_tanks(per_page=2)),
    "list_tanks_page": lambda c: c.list_tanks_page(1, 2),
    "iter_cartridges": lambda c: list(c.iter_cartridges(per_page=2)),
    "list_cartridges_page": lambda c: c.list_cartridges_page(1, 2),
    "iter_events": lambda c: list(
        c.iter_events(
            cartridge="CartFront-1",
            date__gt=datetime(2025, 1, 1, tzinfo=UTC),
            date__lt=datetime(2026, 1, 1, tzinfo=UTC),
            print_run=sample_print_run()["guid"],
            printer=SERIAL,
            tank="Tank-Blue-1",
            type="PRINT_FINISHED",
            per_page=2,
        )
    ),
    "list_events_page": lambda c: c.list_events_page(1, 2),
    "list_groups": lambda c: c.list_groups(),
    "list_group_queue": lambda c: c.list_group_queue(GROUP_ID),
    "revoke": lambda c: (c.list_printers(), c.revoke()),
    "create_group": lambda c: c.create_group("Dental lab"),
    "update_group": lambda c: c.update_group(
        GROUP_ID, name="Production B", remote_print_enabled_override=False
    ),
    "delete_group": lambda c: c.delete_group(c.create_group("Short-lived").id),
    "add_group_member": lambda c: c.add_group_member(GROUP_ID, "tech@lab.example", is_admin=True),
    "update_group_member": lambda c: (
        c.add_group_member(GROUP_ID, "nurse@lab.example"),
        c.update_group_member(GROUP_ID, "nurse@lab.example", is_admin=True),
    ),
    "remove_group_member": lambda c: (
        c.add_group_member(GROUP_ID, "temp@lab.example"),
        c.remove_group_member(GROUP_ID, "temp@lab.example"),
    ),
    "move_printers_to_group": lambda c: c.move_printers_to_group(
        c.create_group("Night shift").id, [SERIAL]
    ),
}


def _populated_api() -> FakeWebApi:
    api = FakeWebApi()
    api.printers = [sample_printer()]
    api.prints = [sample_print_run(guid=f"0c7a0a57-5d5a-4f0b-9f38-5b8f8f0f6a{i:02d}")
                  for i in range(12)]
    api.tanks = [sample_tank(serial=f"Tank-{i}") for i in range(5)]
    api.cartridges = [sample_cartridge(serial=f"Cart-{i}") for i in range(5)]
    api.events = [sample_event(id=i) for i in range(5)]
    api.groups = [sample_group()]
    api.queues = {GROUP_ID: [sample_queue_item()]}
    return api


def _client(api: FakeWebApi, transport: httpx.BaseTransport | None = None) -> WebApiClient:
    clock = ManualClock()
    return WebApiClient(
        Credentials(api.client_id, api.client_secret),
        base_url=api.base_url,
        transport=transport or api.transport(),
        clock=clock,
        sleep=clock.sleep,
    )


def _spec_path(contract: Contract, path: str) -> str:
    """The spec's path template that ``path`` (raw, percent-encoded) instantiates."""
    for template in contract.document["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return str(template)
    raise AssertionError(f"the client sent {path}, which the contract does not document")


def _resolve(contract: Contract, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = contract.component(schema["$ref"].rsplit("/", 1)[-1])
    return schema


def _check_request(contract: Contract, request: httpx.Request) -> None:
    raw_path = request.url.raw_path.decode().partition("?")[0]
    template = _spec_path(contract, raw_path)
    operation = contract.operation(template, request.method)
    what = f"{request.method} {template}"

    declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
    params = request.url.params
    for name in params:
        assert name in declared, f"{what}: query parameter {name!r} is not in the contract"
        schema = declared[name]["schema"]
        values: list[str] = params.get_list(name)
        if schema.get("type") == "array":
            assert declared[name].get("explode", True), f"{what}: {name} is not exploded"
            contract.assert_valid(values, schema, f"{what} ?{name}")
            continue
        assert len(values) == 1, f"{what}: {name} sent {len(values)} times"
        value: Any = int(values[0]) if schema.get("type") == "integer" else values[0]
        contract.assert_valid(value, schema, f"{what} ?{name}")
        if schema.get("format") == "date-time":
            assert RFC3339.match(values[0]), f"{what}: {name}={values[0]!r} is not RFC 3339"

    body = operation.get("requestBody")
    if body is not None:
        content = body["content"]
        if "application/json" in content:
            contract.assert_valid(
                _json(request), contract.request_schema(template, request.method), what
            )
        else:
            # The token and revoke endpoints document form bodies only; the shared helper's
            # request_schema reads JSON bodies, so the form schema is looked up here.
            assert request.headers["Content-Type"] == FORM, f"{what}: not form-encoded"
            form = dict(urllib.parse.parse_qsl(request.content.decode(), strict_parsing=True))
            contract.assert_valid(form, content[FORM]["schema"], what)

    if operation.get("security"):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        assert scheme.lower() == "bearer" and token, f"{what}: no bearer token"
    else:
        assert "Authorization" not in request.headers, f"{what}: needless Authorization header"


def _endpoints_used(contract: Contract) -> set[tuple[str, str]]:
    """(spec path, method) of every request that all of CALLS send together."""
    api = _populated_api()
    with _client(api) as client:
        for call in CALLS.values():
            call(client)
    return {
        (_spec_path(contract, r.url.raw_path.decode().partition("?")[0]), r.method.lower())
        for r in api.requests
    }


def _json(request: httpx.Request) -> Any:
    return json.loads(request.content)


class TestRequests:
    """Everything the client sends is documented by the contract."""

    @pytest.mark.parametrize("method", sorted(CALLS))
    def test_requests_conform(self, method: str) -> None:
        contract = web_api_contract()
        api = _populated_api()
        with _client(api) as client:
            CALLS[method](client)
        assert api.requests, "the call sent nothing"
        for request in api.requests:
            _check_request(contract, request)

    def test_every_documented_filter_is_exercised(self) -> None:
        contract = web_api_contract()
        api = _populated_api()
        with _client(api) as client:
            for call in CALLS.values():
                call(client)
        sent: dict[str, set[str]] = {}
        for request in api.requests:
            if request.method not in ("GET", "POST") or (
                request.method == "POST" and "/o/" not in request.url.path
            ):
                continue  # changes take no query parameters
            template = _spec_path(contract, request.url.raw_path.decode().partition("?")[0])
            sent.setdefault(template, set()).update(request.url.params.keys())
        for template, names in sent.items():
            operation = contract.operation(template, "post" if "/o/" in template else "get")
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert documented <= names, f"{template}: never sent {sorted(documented - names)}"

    def test_every_read_endpoint_is_covered(self) -> None:
        contract = web_api_contract()
        used = _endpoints_used(contract)
        reads = {
            (path, method)
            for path, item in contract.document["paths"].items()
            for method in item
            if method == "get"
        }
        assert reads <= used, f"not covered: {sorted(reads - used)}"

    def test_every_group_change_is_covered(self) -> None:
        contract = web_api_contract()
        used = _endpoints_used(contract)
        changes = {
            (path, method)
            for path, item in contract.document["paths"].items()
            if "/groups/" in path
            for method in item
            if method in ("post", "put", "patch", "delete")
        }
        assert changes <= used, f"not covered: {sorted(changes - used)}"


# -- answers -----------------------------------------------------------------------------------

ANSWERS: list[tuple[str, str, Callable[[], Any], Call, type]] = [
    ("/developer/v1/printers/", "list_printers", lambda: [sample_printer()],
     lambda c: c.list_printers()[0], Printer),
    ("/developer/v1/printers/{printer_serial}/", "get_printer", sample_printer,
     lambda c: c.get_printer(SERIAL), Printer),
    ("/developer/v1/prints/", "iter_prints", lambda: _page([sample_print_run()]),
     lambda c: next(c.iter_prints()), PrintRun),
    ("/developer/v1/printers/{printer_serial}/prints/", "iter_printer_prints",
     lambda: _page([sample_print_run()]), lambda c: next(c.iter_printer_prints(SERIAL)),
     PrintRun),
    ("/developer/v1/tanks/", "iter_tanks", lambda: _page([sample_tank()]),
     lambda c: next(c.iter_tanks()), Tank),
    ("/developer/v1/cartridges/", "iter_cartridges", lambda: _page([sample_cartridge()]),
     lambda c: next(c.iter_cartridges()), Cartridge),
    ("/developer/v1/events/", "iter_events", lambda: _page([sample_event()]),
     lambda c: next(c.iter_events()), Event),
    ("/developer/v1/groups/", "list_groups", lambda: [sample_group()],
     lambda c: c.list_groups()[0], PrinterGroup),
    ("/developer/v1/groups/{group_id}/queue/", "list_group_queue",
     lambda: [sample_queue_item()], lambda c: c.list_group_queue(GROUP_ID)[0], QueueItem),
]


def _page(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": results}


def _minimal(contract: Contract, schema: dict[str, Any]) -> Any:
    """The smallest instance of ``schema``: required properties only, nulls where allowed."""
    schema = _resolve(contract, schema)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(contract, part))
        # OpenAPI 3.0 validators do not let "nullable" beside allOf admit null (the referenced
        # schema still rejects it), so an allOf value is always built, never None.
        merged.update({k: v for k, v in schema.items() if k not in ("allOf", "nullable")})
        return _minimal(contract, merged)
    if schema.get("nullable"):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _minimal(contract, props[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [_minimal(contract, schema["items"])] if "items" in schema else []
    formats = {
        "date-time": "2025-01-06T08:00:00Z",
        "uuid": "00000000-0000-4000-8000-000000000000",
        "uri": "https://example.com/x",
        "email": "someone@example.com",
    }
    scalars = {"string": formats.get(schema.get("format", ""), "x"), "integer": 0,
               "number": 0.0, "boolean": False}
    return scalars[kind]


def _serve(path: str, answer: Any) -> Callable[[httpx.Request], httpx.Response]:
    api = FakeWebApi()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            return api.handle(request)
        return httpx.Response(200, json=answer)

    return handle


class TestAnswers:
    """Answers that conform to the response schemas parse into the typed results."""

    @pytest.mark.parametrize(("template", "method", "make", "call", "kind"), ANSWERS,
                             ids=[a[1] for a in ANSWERS])
    def test_sample_answers_conform_and_parse(
        self, template: str, method: str, make: Callable[[], Any], call: Call, kind: type
    ) -> None:
        contract = web_api_contract()
        answer = make()
        contract.assert_valid(answer, contract.response_schema(template, "get", 200), method)
        api = FakeWebApi()
        with _client(api, httpx.MockTransport(_serve(template, answer))) as client:
            result = call(client)
        assert isinstance(result, kind)
        record = answer if isinstance(answer, dict) and "results" not in answer else (
            answer["results"][0] if isinstance(answer, dict) else answer[0]
        )
        assert result.raw == record  # type: ignore[attr-defined]
        for name in ("serial", "guid", "id", "name", "status", "type"):
            if hasattr(result, name) and name in record and record[name] is not None:
                assert getattr(result, name) == record[name], f"{method}: {name}"

    @pytest.mark.parametrize(("template", "method", "make", "call", "kind"), ANSWERS,
                             ids=[a[1] for a in ANSWERS])
    def test_minimal_answers_conform_and_parse(
        self, template: str, method: str, make: Callable[[], Any], call: Call, kind: type
    ) -> None:
        contract = web_api_contract()
        schema = contract.response_schema(template, "get", 200)
        assert schema is not None
        answer = _minimal(contract, schema)
        results = _resolve(contract, schema).get("properties", {}).get("results")
        if results is not None:
            # A page object requires nothing; a page holding one minimal record is what parses.
            answer = _page([_minimal(contract, results["items"])])
        contract.assert_valid(answer, schema, f"minimal {method}")
        api = FakeWebApi()
        with _client(api, httpx.MockTransport(_serve(template, answer))) as client:
            result = call(client)
        assert isinstance(result, kind)

    def test_the_documented_token_answer_is_accepted(self) -> None:
        contract = web_api_contract()
        responses = contract.operation(TOKEN_PATH, "post")["responses"]
        example = next(iter(responses["200"]["content"]["application/json"]["examples"].values()))
        body = example["value"]
        contract.assert_valid(body, contract.response_schema(TOKEN_PATH, "post", 200), "token")

        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path == TOKEN_PATH:
                return httpx.Response(200, json=body)
            assert request.headers["Authorization"] == f"Bearer {body['access_token']}"
            return httpx.Response(200, json=[])

        with _client(FakeWebApi(), httpx.MockTransport(handle)) as client:
            client.list_printers()
            token = client.auth.token
        assert token is not None and token.expires_in == body["expires_in"]

    @pytest.mark.parametrize("status", [400, 401])
    def test_the_documented_refusals_raise_cloud_auth_error(self, status: int) -> None:
        contract = web_api_contract()
        responses = contract.operation(TOKEN_PATH, "post")["responses"]
        example = next(iter(responses[str(status)]["content"]["application/json"]["examples"]
                            .values()))["value"]

        def handle(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json=example)

        with _client(FakeWebApi(), httpx.MockTransport(handle)) as client, pytest.raises(
            CloudAuthError
        ) as caught:
            client.list_printers()
        assert example["error"] in str(caught.value)


CHANGE_ANSWERS: list[tuple[str, str, Call, type | None]] = [
    ("/developer/v1/groups/", "post", lambda c: c.create_group("Dental lab"), NewGroup),
    ("/developer/v1/groups/{group_id}/", "patch",
     lambda c: c.update_group(GROUP_ID, name="Renamed"), PrinterGroup),
    ("/developer/v1/groups/{group_id}/", "delete", lambda c: c.delete_group(GROUP_ID), None),
    ("/developer/v1/groups/{group_id}/members/", "post",
     lambda c: c.add_group_member(GROUP_ID, "tech@lab.example"), GroupMember),
    ("/developer/v1/groups/{group_id}/members/", "put",
     lambda c: c.update_group_member(GROUP_ID, "tech@lab.example", is_admin=True), GroupMember),
    ("/developer/v1/groups/{group_id}/members/", "delete",
     lambda c: c.remove_group_member(GROUP_ID, "tech@lab.example"), None),
    ("/developer/v1/groups/bulk-add-printers/", "post",
     lambda c: c.move_printers_to_group(GROUP_ID, [SERIAL]), None),
]


class TestChangeAnswers:
    """The documented answers to group changes, down to their required fields, parse."""

    @pytest.mark.parametrize(("template", "method", "call", "kind"), CHANGE_ANSWERS,
                             ids=[f"{a[1]} {a[0]}" for a in CHANGE_ANSWERS])
    def test_minimal_answers_parse(
        self, template: str, method: str, call: Call, kind: type | None
    ) -> None:
        contract = web_api_contract()
        (status,) = (int(code) for code in contract.operation(template, method)["responses"])
        schema = contract.response_schema(template, method, status)
        answer = None if schema is None else _minimal(contract, schema)
        api = FakeWebApi()

        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path == TOKEN_PATH:
                return api.handle(request)
            return httpx.Response(status, json=answer) if answer is not None else (
                httpx.Response(status)
            )

        with _client(api, httpx.MockTransport(handle)) as client:
            result = call(client)
        if kind is None:
            assert (schema, result) == (None, None)
        else:
            assert isinstance(result, kind)
            assert result.raw == answer  # type: ignore[attr-defined]
