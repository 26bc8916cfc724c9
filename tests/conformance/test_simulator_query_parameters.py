"""The simulator's query parameters, read as the Local API contract declares them.

Found by driving the simulator with Formlabs' generated client and raw requests
(docs/testing.md, session 32's vendor sweep): ``?async=true`` on an operation the contract
gives no asynchronous answer (``POST /scene/``, ``GET /devices/``) was answered 202, a status
the contract never lists for it, and left the caller without the scene it asked for; and
``can_print`` took any value, reading ``perhaps`` (or ``yes``) as false where ``async`` refused
it. A real simulator over HTTP, each answer checked against the contract.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from preform_pipeline.simulator.engine import SimEngine
from tests.conformance.local_simulator import simulator_client
from tests.openapi_contract import Contract, local_api_contract

FORM4 = {
    "machine_type": "FORM-4-0",
    "material_code": "FLGPGR05",
    "print_setting": "DEFAULT",
    "layer_thickness_mm": 0.1,
}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return local_api_contract()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    def offline(engine: SimEngine) -> None:
        # An offline printer: what ``can_print=true`` leaves out.
        engine.fleet.update_printer("SimulatedForm3-1", status="OFFLINE")

    with simulator_client(tmp_path_factory.mktemp("query"), prepare=offline) as http:
        yield http


def _device_ids(client: httpx.Client, query: str) -> list[str]:
    response = client.get("/devices/" + query)
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["devices"]]


class TestAsyncWhereTheContractGivesNone:
    """``async`` on an operation without an asynchronous answer is answered at once."""

    def test_a_scene_asked_for_asynchronously_is_created_and_answered(
        self, client: httpx.Client, contract: Contract
    ) -> None:
        response = client.post("/scene/?async=true", json=FORM4)
        assert response.status_code == 200, response.text
        scene = response.json()
        contract.assert_valid(scene, contract.response_schema("/scene/", "post", 200), "scene")
        assert scene["id"] in {s["id"] for s in client.get("/scenes/").json()["scenes"]}

    def test_a_listing_asked_for_asynchronously_is_the_listing(
        self, client: httpx.Client, contract: Contract
    ) -> None:
        response = client.get("/list-materials/?async=true")
        assert response.status_code == 200, response.text
        schema = contract.response_schema("/list-materials/", "get", 200)
        contract.assert_valid(response.json(), schema, "materials")


class TestCanPrint:
    """``can_print`` is a boolean: read as ``async`` is, anything else refused."""

    def test_its_spellings_of_true_filter_alike(self, client: httpx.Client) -> None:
        every = _device_ids(client, "")
        printable = _device_ids(client, "?can_print=true")
        assert set(every) - set(printable) == {"SimulatedForm3-1"}
        assert _device_ids(client, "?can_print=yes") == printable
        assert _device_ids(client, "?can_print=0") == every

    def test_a_value_that_is_no_boolean_is_a_contract_refusal(
        self, client: httpx.Client, contract: Contract
    ) -> None:
        response = client.get("/devices/?can_print=perhaps")
        assert response.status_code == 400
        body = response.json()
        assert body["error"]["code"] == "INVALID_QUERY_PARAMETER"
        assert "can_print='perhaps'" in body["error"]["message"]
        contract.assert_valid(body, contract.response_schema("/devices/", "get", 400), "400")
