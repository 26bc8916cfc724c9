"""The route table and how the server dispatches requests to engine operations."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sim_server_support import RecordingEngine

from preform_pipeline.simulator.routes import (
    DEPRECATED_ROUTES,
    ENGINE_OPERATION_IDS,
    ROUTES,
    SERVER_OPERATION_IDS,
    Route,
    Router,
    RoutingError,
    snake_case,
)
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract

ENGINE_ROUTES = [r for r in ROUTES if r.operation_id not in SERVER_OPERATION_IDS]
SAMPLE_PARAMS = {"scene_id": "scene-1", "id": "model 7"}
DRAIN_HOLES = "/scene/{scene_id}/add-drain-holes/"


def concrete(route: Route) -> str:
    path = route.template
    for name, value in SAMPLE_PARAMS.items():
        path = path.replace("{" + name + "}", value.replace(" ", "%20"))
    return path


def expected_params(route: Route) -> dict[str, str]:
    return {k: v for k, v in SAMPLE_PARAMS.items() if "{" + k + "}" in route.template}


def _is_deprecated(operation: dict[str, object]) -> bool:
    tags = operation.get("tags") or []
    assert isinstance(tags, list)
    return bool(operation.get("deprecated")) or any("deprecated" in str(t) for t in tags)


class TestRouteTable:
    """The route table is the contract's non-deprecated operations, named in snake_case."""

    def test_snake_case_follows_the_agreed_examples(self) -> None:
        assert snake_case("importModel") == "import_model"
        assert snake_case("getApiVersion") == "get_api_version"
        assert snake_case("getPrintValidation") == "get_print_validation"
        assert snake_case("packAndCage") == "pack_and_cage"
        assert snake_case("print") == "print"

    def test_every_route_is_a_contract_operation_with_that_id(self) -> None:
        contract = local_api_contract()
        for route in ROUTES:
            operation = contract.operation(route.template, route.method)
            assert snake_case(str(operation["operationId"])) == route.operation_id
            assert not _is_deprecated(operation), route

    def test_every_non_deprecated_contract_operation_is_served(self) -> None:
        contract = local_api_contract()
        wanted = set()
        for item in contract.document["paths"].values():
            for method, operation in item.items():
                if method in {"get", "post", "put", "delete"} and not _is_deprecated(operation):
                    wanted.add(operation["operationId"])
        served = {snake_case(op) for op in wanted}
        assert served == {r.operation_id for r in ROUTES}

    def test_body_requirements_follow_the_contract(self) -> None:
        contract = local_api_contract()
        for route in ROUTES:
            body = contract.operation(route.template, route.method).get("requestBody") or {}
            assert route.body_required == bool(body.get("required")), route

    def test_deprecated_routes_are_the_deprecated_contract_operations(self) -> None:
        contract = local_api_contract()
        wanted = {
            (method.upper(), template)
            for template, item in contract.document["paths"].items()
            for method, operation in item.items()
            if method in {"get", "post", "put", "delete"} and _is_deprecated(operation)
        }
        assert {(r.method, r.template) for r in DEPRECATED_ROUTES} == wanted
        for route in DEPRECATED_ROUTES:
            operation_id = str(contract.operation(route.template, route.method)["operationId"])
            assert snake_case(operation_id.removesuffix("Deprecated")) == route.operation_id

    def test_async_runs_exactly_where_the_contract_gives_an_asynchronous_answer(self) -> None:
        contract = local_api_contract()
        for route in ROUTES + DEPRECATED_ROUTES:
            operation = contract.operation(route.template, route.method)
            names = {p.get("name") for p in operation.get("parameters", [])}
            offered = "async" in names or "202" in operation["responses"]
            assert route.runs_async == offered, route

    def test_the_user_documentation_lists_every_route(self, repo_root: Path) -> None:
        text = (repo_root / "docs" / "simulator.md").read_text(encoding="utf-8")
        rows = re.findall(r"^\| ([A-Z]+) \| `(/[^`]*)` \| `(\w+)` \|$", text, re.M)
        assert rows == [(r.method, r.template, r.operation_id) for r in ROUTES]

    def test_operation_ids_are_unique(self) -> None:
        assert len({r.operation_id for r in ROUTES}) == len(ROUTES)
        assert len(ENGINE_OPERATION_IDS) == len(ROUTES) - len(SERVER_OPERATION_IDS)


class TestRouter:
    """Paths resolve with or without their trailing slash, literal segments first."""

    def test_a_literal_route_shadows_a_template_for_its_methods(self) -> None:
        router = Router()
        assert router.resolve("DELETE", "/scene/default/").operation_id == "delete_default_scene"
        assert router.resolve("POST", "/scene/default/").operation_id == "create_default_scene"

    def test_default_reaches_scene_templates_for_other_methods(self) -> None:
        match = Router().resolve("GET", "/scene/default/")
        assert (match.operation_id, match.params) == ("get_scene", {"scene_id": "default"})

    def test_pack_and_cage_is_not_a_scene_id(self) -> None:
        assert Router().resolve("POST", "/scene/pack-and-cage").operation_id == "pack_and_cage"

    def test_an_unknown_path_is_404(self) -> None:
        with pytest.raises(RoutingError) as caught:
            Router().resolve("GET", "/scene/s/unknown/")
        assert caught.value.status == 404

    def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(self) -> None:
        with pytest.raises(RoutingError) as caught:
            Router().resolve("POST", "/scene/s1/")
        assert (caught.value.status, caught.value.allowed) == (405, ("DELETE", "GET", "PUT"))

    def test_a_deprecated_path_is_its_operation_without_a_scene_id(self) -> None:
        match = Router().resolve("GET", "/scene/print-validation/")
        assert (match.operation_id, match.params) == ("get_print_validation", {})
        match = Router().resolve("DELETE", "/scene/models/m%201/")
        assert (match.operation_id, match.params) == ("delete_model", {"id": "m 1"})

    def test_a_deprecated_path_is_never_read_as_a_scene_id(self) -> None:
        with pytest.raises(RoutingError) as caught:
            Router().resolve("GET", "/scene/import-model/")
        assert (caught.value.status, caught.value.allowed) == (405, ("POST",))

    def test_the_scene_collection_serves_create_and_the_deprecated_get_and_put(self) -> None:
        router = Router()
        assert router.resolve("POST", "/scene/").operation_id == "create_scene"
        assert router.resolve("GET", "/scene").operation_id == "get_scene"
        assert router.resolve("PUT", "/scene/").operation_id == "update_scene"
        with pytest.raises(RoutingError) as caught:
            router.resolve("DELETE", "/scene/")
        assert caught.value.allowed == ("GET", "POST", "PUT")

    def test_a_refusal_says_what_was_asked_and_what_is_served(self) -> None:
        with pytest.raises(RoutingError) as wrong_method:
            Router().resolve("delete", "/scene/")
        assert str(wrong_method.value) == (
            "DELETE is not allowed on /scene/ (allowed: GET, POST, PUT)"
        )
        with pytest.raises(RoutingError) as unknown:
            Router().resolve("GET", "/nowhere/")
        assert str(unknown.value) == (
            "no operation at /nowhere/; the simulator serves the Local API operations"
        )

    def test_path_parameters_are_percent_decoded(self) -> None:
        match = Router().resolve("GET", "/scene/a%20b/models/c%2Fd/")
        assert match.params == {"scene_id": "a b", "id": "c/d"}


class TestDispatch:
    """Each route reaches the engine operation of the same id, with its path parameters."""

    @pytest.mark.parametrize("route", ENGINE_ROUTES, ids=lambda r: r.operation_id)
    def test_route_calls_its_engine_operation(
        self, route: Route, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        body = {"probe": route.operation_id} if route.method in {"POST", "PUT"} else None
        response = sim_client.request(route.method, concrete(route), json=body)
        assert response.status_code == 200, response.text
        call = sim_engine.last_call()
        assert (call.operation_id, call.params, call.body) == (
            route.operation_id,
            expected_params(route),
            body,
        )
        assert response.json() == {"operation": route.operation_id, "params": call.params}

    @pytest.mark.parametrize("route", ENGINE_ROUTES[:12], ids=lambda r: r.operation_id)
    def test_the_trailing_slash_is_optional(
        self, route: Route, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        body = {"x": 1} if route.method in {"POST", "PUT"} else None
        path = concrete(route).rstrip("/") or "/"
        response = sim_client.request(route.method, path, json=body)
        assert response.status_code == 200, response.text
        assert sim_engine.last_call().operation_id == route.operation_id

    def test_declared_query_parameters_reach_the_engine(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_client.get("/devices/", params={"can_print": "true", "other": "x"})
        assert sim_engine.last_call().params == {"can_print": "true"}

    @pytest.mark.parametrize("value", ["yes", "1", "TRUE", "no", "0", ""])
    def test_a_flag_reaches_the_engine_as_true_or_false(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine, value: str
    ) -> None:
        sim_client.get("/devices/", params={"can_print": value})
        expected = "true" if value.lower() in {"yes", "1", "true"} else "false"
        assert sim_engine.last_call().params == {"can_print": expected}

    def test_a_flag_that_is_no_boolean_is_refused_before_the_engine(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        response = sim_client.get("/devices/", params={"can_print": "perhaps"})
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "INVALID_QUERY_PARAMETER",
            "message": "query parameter can_print='perhaps' is not a boolean",
        }
        assert sim_engine.calls == []

    @pytest.mark.parametrize(
        "route", ENGINE_ROUTES + list(DEPRECATED_ROUTES), ids=lambda r: f"{r.method} {r.template}"
    )
    def test_async_is_honoured_only_where_the_contract_offers_it(
        self, route: Route, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        body = {"probe": 1} if route.method in {"POST", "PUT"} else None
        response = sim_client.request(route.method, concrete(route) + "?async=true", json=body)
        if route.runs_async:
            assert response.status_code == 202, response.text
            assert set(response.json()) == {"operationId"}
        else:
            # Not among its parameters: ignored like any other, answered at once.
            assert response.status_code == 200, response.text
            assert sim_engine.last_call().operation_id == route.operation_id
            assert sim_engine.last_call().had_progress is False
        listed = local_api_contract().operation(route.template, route.method)["responses"]
        # Drain holes declare ``async`` but list no 202: the parameter is read as meant.
        assert str(response.status_code) in listed or route.template == DRAIN_HOLES

    def test_a_synchronous_call_gets_no_progress_callback(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_client.post("/scene/s/auto-support/", json={"models": "ALL"})
        assert sim_engine.last_call().had_progress is False

    def test_an_engine_answer_of_none_becomes_an_empty_object(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.answers["auto_orient"] = None
        response = sim_client.post("/scene/s/auto-orient/", json={"models": "ALL"})
        assert (response.status_code, response.json()) == (200, {})

    def test_the_exchange_log_keeps_every_request(
        self, sim_server: SimulatorServer, sim_client: httpx.Client
    ) -> None:
        sim_client.get("/")
        sim_client.get("/nowhere/")
        exchanges = [(e.method, e.path, e.status, e.operation_id) for e in sim_server.exchanges]
        assert exchanges == [
            ("GET", "/", 200, "get_api_version"),
            ("GET", "/nowhere/", 404, None),
        ]
        assert all(e.elapsed_s >= 0 for e in sim_server.exchanges)
