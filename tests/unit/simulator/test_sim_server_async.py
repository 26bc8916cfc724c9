"""``?async=true`` operations: accepted at once, tracked under ``/operations/``."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S, ProgressGate, RecordingEngine

from preform_pipeline.simulator.operations import (
    FAILED,
    IN_PROGRESS,
    SUCCEEDED,
    Operation,
    OperationRegistry,
)
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract

POLL_INTERVAL_S = 0.005


def operation_schema() -> dict[str, Any] | None:
    return local_api_contract().response_schema("/operations/{id}/", "get", 200)


def poll(
    client: httpx.Client, operation: str, until: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """GET the operation until ``until(body)`` holds; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    pause = threading.Event()
    while True:
        response = client.get(f"/operations/{operation}/")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        local_api_contract().assert_valid(body, operation_schema(), "operation status")
        if until(body):
            return body
        assert time.monotonic() < deadline, f"operation never reached the state: {body}"
        pause.wait(POLL_INTERVAL_S)


def reached(progress: float) -> Callable[[dict[str, Any]], bool]:
    return lambda body: bool(body["progress"] >= progress)


def start(client: httpx.Client, path: str, body: Any = None) -> str:
    response = client.post(path, params={"async": "true"}, json=body)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    schema = local_api_contract().response_schema("/scene/{scene_id}/auto-support/", "post", 202)
    local_api_contract().assert_valid(accepted, schema, "202 answer")
    assert set(accepted) == {"operationId"}
    uuid.UUID(accepted["operationId"])
    return str(accepted["operationId"])


class TestAcceptedOperations:
    """An async request answers 202 at once and its operation ends SUCCEEDED with the result."""

    def test_progress_rises_while_the_operation_runs_then_it_succeeds(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        gate = ProgressGate(steps=(0.25, 0.5, 0.75))
        sim_engine.gates["auto_support"] = gate
        sim_engine.answers["auto_support"] = {"done": True}
        op = start(sim_client, "/scene/s/auto-support/", {"models": "ALL"})
        seen = []
        for step in gate.steps:
            body = poll(sim_client, op, reached(step))
            assert body["status"] == IN_PROGRESS and "result" not in body
            seen.append(body["progress"])
            gate.release()
        final = poll(sim_client, op, lambda b: b["status"] != IN_PROGRESS)
        assert seen == sorted(seen) and len(set(seen)) == 3
        assert seen[0] > 0 and seen[-1] < 1
        assert final == {"id": op, "status": SUCCEEDED, "progress": 1.0, "result": {"done": True}}
        assert sim_engine.last_call().had_progress

    def test_async_false_runs_synchronously(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        response = sim_client.post(
            "/scene/s/auto-layout/", params={"async": "false"}, json={"models": "ALL"}
        )
        assert response.status_code == 200
        assert response.json()["operation"] == "auto_layout"

    def test_the_request_answers_before_the_engine_finishes(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        gate = ProgressGate(steps=(0.5,))
        sim_engine.gates["import_model"] = gate
        op = start(sim_client, "/scene/s/import-model/", {"file": "/m.stl"})
        assert gate.reached.wait(WAIT_S)
        assert poll(sim_client, op, lambda b: True)["status"] == IN_PROGRESS
        gate.release()
        assert poll(sim_client, op, lambda b: b["status"] == SUCCEEDED)

    def test_an_operation_outside_scenes_runs_async_too(self, sim_client: httpx.Client) -> None:
        op = start(sim_client, "/discover-devices/", {"timeout_seconds": 1})
        final = poll(sim_client, op, lambda b: b["status"] == SUCCEEDED)
        assert final["result"]["operation"] == "discover_devices"

    def test_one_the_contract_gives_no_async_answer_is_answered_at_once(
        self, sim_client: httpx.Client
    ) -> None:
        response = sim_client.post("/scene/default/?async=true", json={"machine_type": "X"})
        assert (response.status_code, response.json()["operation"]) == (
            200,
            "create_default_scene",
        )


class TestFailedOperations:
    """A failing async operation ends FAILED with the ErrorModel body as its result."""

    def test_a_sim_error_becomes_the_failed_result(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.errors["hollow_model"] = SimError(400, "MODEL_NOT_FOUND", "no model m1")
        op = start(sim_client, "/scene/s/hollow/", {"models": ["m1"]})
        final = poll(sim_client, op, lambda b: b["status"] != IN_PROGRESS)
        assert final["status"] == FAILED
        assert final["result"] == {"error": {"code": "MODEL_NOT_FOUND", "message": "no model m1"}}
        error_model = local_api_contract().component("ErrorModel")
        local_api_contract().assert_valid(final["result"], error_model, "failed result")

    def test_an_unexpected_exception_fails_with_internal_error(
        self, sim_server: SimulatorServer, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.errors["label_part"] = RuntimeError("label melted")
        op = start(sim_client, "/scene/s/label/", {"label": "A"})
        final = poll(sim_client, op, lambda b: b["status"] != IN_PROGRESS)
        assert (final["status"], final["result"]["error"]["code"]) == (FAILED, "INTERNAL_ERROR")
        with pytest.raises(RuntimeError, match="label melted"):
            sim_server.check()
        assert sim_client.get("/").status_code == 200


class TestOperationEndpoints:
    """``/operations/`` lists every operation; an unknown id is a 404 ErrorModel."""

    def test_the_listing_counts_and_describes_every_operation(
        self, sim_client: httpx.Client
    ) -> None:
        first = start(sim_client, "/scene/s/auto-orient/", {"models": "ALL"})
        second = start(sim_client, "/scene/s/auto-layout/", {"models": "ALL"})
        for op in (first, second):
            poll(sim_client, op, lambda b: b["status"] == SUCCEEDED)
        listing = sim_client.get("/operations/").json()
        schema = local_api_contract().response_schema("/operations/", "get", 200)
        local_api_contract().assert_valid(listing, schema, "operations listing")
        assert listing["count"] == 2
        assert {o["id"] for o in listing["operations"]} == {first, second}
        assert all(o["status"] == SUCCEEDED for o in listing["operations"])

    def test_an_empty_listing(self, sim_client: httpx.Client) -> None:
        assert sim_client.get("/operations").json() == {"count": 0, "operations": []}

    def test_an_unknown_operation_is_404(self, sim_client: httpx.Client) -> None:
        response = sim_client.get(f"/operations/{uuid.uuid4()}/")
        assert response.status_code == 404
        schema = local_api_contract().response_schema("/operations/{id}/", "get", 404)
        local_api_contract().assert_valid(response.json(), schema, "404 answer")
        assert response.json()["error"]["code"] == "OPERATION_NOT_FOUND"


class TestOperationRecord:
    """An operation's progress stays in [0, 1] and never goes backwards."""

    def test_progress_is_clamped_and_monotonic(self) -> None:
        op = Operation("auto_support")
        for value in (0.3, 0.2, -1.0, 0.6, 7.0):
            op.report(value)
        assert op.snapshot().progress == 1.0
        op = Operation("auto_support")
        op.report(0.4)
        op.report(0.1)
        assert op.snapshot().progress == 0.4

    def test_the_first_ending_wins(self) -> None:
        op = Operation("print")
        op.fail({"error": {"code": "X", "message": "m"}})
        op.succeed({"late": True})
        snapshot = op.snapshot()
        assert (snapshot.status, snapshot.result["error"]["code"]) == (FAILED, "X")

    def test_old_finished_operations_are_forgotten_beyond_the_limit(self) -> None:
        registry = OperationRegistry(max_finished=2)
        started = [registry.start("get_scene", lambda op: {}, lambda exc: {}) for _ in range(4)]
        for op in started:
            assert op.wait(WAIT_S)
        registry.start("get_scene", lambda op: {}, lambda exc: {}).wait(WAIT_S)
        remaining = {s.id for s in registry.snapshots()}
        assert started[0].id not in remaining and started[3].id in remaining
        assert len(remaining) <= 3
