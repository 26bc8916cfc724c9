"""Request bodies the Local API contract allows are taken, those it forbids refused.

Found by the session-33 sweep of every operation (docs/testing.md): ``POST
/scene/{scene_id}/models/{id}/`` refused a body with a field the contract does not name
(400 ``INVALID_BODY``, "unexpected field"), though its schema leaves ``additionalProperties``
open, as every other open body the simulator takes and ignores. A closed schema
(``auto-orient``'s) is still refused. A real simulator over HTTP; each request is checked
against the contract's request schema before it is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.local_simulator import simulator_client
from tests.openapi_contract import Contract, local_api_contract

FORM4 = {
    "machine_type": "FORM-4-0",
    "material_code": "FLGPGR05",
    "print_setting": "DEFAULT",
    "layer_thickness_mm": 0.1,
}
MODEL = Path(__file__).resolve().parents[2] / "sample_models" / "batch" / "part_01.stl"
UPDATE = "/scene/{scene_id}/models/{id}/"
ORIENT = "/scene/{scene_id}/auto-orient/"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return local_api_contract()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with simulator_client(tmp_path_factory.mktemp("bodies")) as http:
        yield http


@pytest.fixture
def model(client: httpx.Client) -> tuple[str, str]:
    """A new scene with one imported model: (scene id, model id)."""
    scene = client.post("/scene/", json=FORM4).json()["id"]
    imported = client.post(f"/scene/{scene}/import-model/", json={"file": str(MODEL)})
    assert imported.status_code == 200, imported.text
    return scene, imported.json()["id"]


def _conforming(contract: Contract, template: str, body: dict[str, Any]) -> None:
    schema = contract.request_schema(template, "post")
    contract.assert_valid(body, schema, f"request POST {template}")


class TestUnknownFields:
    """A field the contract does not name is ignored where its schema is open, refused where
    it is closed."""

    def test_a_model_update_ignores_a_field_its_open_schema_allows(
        self, client: httpx.Client, contract: Contract, model: tuple[str, str]
    ) -> None:
        scene, model_id = model
        body = {"name": "renamed", "colour": "red"}
        _conforming(contract, UPDATE, body)

        answer = client.post(f"/scene/{scene}/models/{model_id}/", json=body)

        assert answer.status_code == 200, answer.text
        contract.assert_valid(answer.json(), contract.response_schema(UPDATE, "post", 200),
                              "answer POST " + UPDATE)
        named = client.get(f"/scene/{scene}/models/{model_id}/").json()["name"]
        assert named == "renamed"

    def test_auto_orient_refuses_a_field_its_closed_schema_forbids(
        self, client: httpx.Client, contract: Contract, model: tuple[str, str]
    ) -> None:
        scene, _ = model
        body = {"models": "ALL", "colour": "red"}
        schema = contract.request_schema(ORIENT, "post")
        assert schema is not None
        assert contract.errors(body, schema), "auto-orient's schema should forbid extra fields"

        answer = client.post(f"/scene/{scene}/auto-orient/", json=body)

        assert answer.status_code == 400
        contract.assert_valid(answer.json(), contract.response_schema(ORIENT, "post", 400),
                              "answer POST " + ORIENT)
        assert "unexpected field colour" in answer.json()["error"]["message"]
