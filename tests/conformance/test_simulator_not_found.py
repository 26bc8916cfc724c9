"""An unknown scene or model is refused with a status the contract gives for that operation.

The Local API contract lists 400 ("Bad Request") as the error answer of the operations on a
scene or a model, and no 404 for any of them; the label operation's 400 answer even names
"Model not found". The simulator answered 404 there, which Formlabs' generated client raises
as another exception class (``NotFoundException``, not ``BadRequestException``) than the
contract leads a script to catch. Each request goes over HTTP to a running simulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from tests.conformance.local_simulator import simulator_client
from tests.openapi_contract import Contract, local_api_contract

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
POINT = {"x": 0, "y": 0, "z": 5}
LABEL = {"model_id": "no-such-model", "orientation": {"x": 90, "y": 0, "z": 0},
         "position": POINT, "label": "A1", "font_size_mm": 4, "depth_mm": 0.5}
HOLE = {"orientation": {"x": 180, "y": 0, "z": 0}, "position": POINT, "diameter_mm": 3,
        "depth_mm": "AUTO", "create_plug": False}

#: Operations on a scene named in the path: (method, contract path, a valid body).
SCENE_OPERATIONS: list[tuple[str, str, Any]] = [
    ("get", "/scene/{scene_id}/", None),
    ("put", "/scene/{scene_id}/", FORM4),
    ("delete", "/scene/{scene_id}/", None),
    ("post", "/scene/{scene_id}/save-form/", {"file": "{folder}/job.form"}),
    ("post", "/scene/{scene_id}/save-screenshot/", {"file": "{folder}/job.png"}),
    ("post", "/scene/{scene_id}/save-fps-file/", {"file": "{folder}/job.fps"}),
    ("post", "/scene/{scene_id}/import-model/", {"file": "{folder}/cube.stl"}),
    ("post", "/scene/{scene_id}/scan-to-model/", {"file": "{folder}/cube.stl",
                                                  "cutoff_height_mm": 1}),
    ("post", "/scene/{scene_id}/print/", {"printer": "SimulatedForm4-1", "job_name": "x"}),
    ("post", "/scene/{scene_id}/auto-orient/", {"models": "ALL"}),
    ("post", "/scene/{scene_id}/auto-support/", {"models": "ALL"}),
    ("post", "/scene/{scene_id}/auto-layout/", {"models": "ALL"}),
    ("post", "/scene/{scene_id}/auto-pack/", {}),
    ("get", "/scene/{scene_id}/print-validation/", None),
    ("post", "/scene/{scene_id}/hollow/", {"models": "ALL", "wall_thickness_mm": 2}),
    ("post", "/scene/{scene_id}/label/", LABEL),
    ("post", "/scene/{scene_id}/estimate-print-time/", None),
    ("post", "/scene/{scene_id}/add-drain-holes/", {"model_id": "no-such-model",
                                                    "drain_holes": [HOLE]}),
    ("post", "/scene/{scene_id}/interferences/", {}),
]
#: Operations on a model named in the path, in a scene that exists.
MODEL_OPERATIONS: list[tuple[str, str, Any]] = [
    ("get", "/scene/{scene_id}/models/{id}/", None),
    ("post", "/scene/{scene_id}/models/{id}/", {"name": "renamed"}),
    ("delete", "/scene/{scene_id}/models/{id}/", None),
    ("post", "/scene/{scene_id}/models/{id}/duplicate/", {"count": 1}),
    ("post", "/scene/{scene_id}/models/{id}/replace/", {"file": "{folder}/cube.stl"}),
]
#: Operations that name an unknown model in their body, in a scene that exists.
MODEL_IN_BODY: list[tuple[str, str, Any]] = [
    ("post", "/scene/{scene_id}/label/", LABEL),
    ("post", "/scene/{scene_id}/add-drain-holes/", {"model_id": "no-such-model",
                                                    "drain_holes": [HOLE]}),
    ("post", "/scene/{scene_id}/auto-orient/", {"models": ["no-such-model"]}),
    ("post", "/scene/{scene_id}/hollow/", {"models": ["no-such-model"],
                                           "wall_thickness_mm": 2}),
]


@pytest.fixture(scope="module")
def contract() -> Contract:
    return local_api_contract()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("not-found")
    write_stl(folder / "cube.stl", box_triangles((0.0, 0.0, 0.0), (20.0, 20.0, 20.0)))
    return folder


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[httpx.Client]:
    with simulator_client(folder) as http:
        yield http


def _send(
    client: httpx.Client, folder: Path, method: str, template: str, body: Any, **ids: str
) -> httpx.Response:
    path = template.format(**ids)
    if isinstance(body, dict):
        body = {k: v.replace("{folder}", str(folder)) if isinstance(v, str) else v
                for k, v in body.items()}
    return client.request(method.upper(), path, json=body)


def _assert_refused_as_the_contract_says(
    contract: Contract, method: str, template: str, response: httpx.Response, code: str
) -> None:
    listed = sorted(s for s in contract.operation(template, method)["responses"] if s >= "400")
    # Where the contract lists no error answer at all, its general "Bad Request" applies.
    assert str(response.status_code) in (listed or ["400"]), (
        f"{method.upper()} {template}: {response.status_code} {response.text}; the contract "
        f"gives {listed or 'no error status'}"
    )
    body = response.json()
    assert body["error"]["code"] == code
    contract.assert_valid(body, contract.component("ErrorModel"), template)


class TestUnknownScene:
    """Every operation on a scene that does not exist is refused 400 SCENE_NOT_FOUND."""

    @pytest.mark.parametrize(("method", "template", "body"), SCENE_OPERATIONS,
                             ids=[f"{m} {t}" for m, t, _ in SCENE_OPERATIONS])
    def test_an_unknown_scene_is_a_bad_request(
        self, contract: Contract, client: httpx.Client, folder: Path, method: str,
        template: str, body: Any,
    ) -> None:
        response = _send(client, folder, method, template, body, scene_id="no-such-scene")
        _assert_refused_as_the_contract_says(contract, method, template, response,
                                             "SCENE_NOT_FOUND")


class TestUnknownModel:
    """Every operation on a model the scene does not hold is refused 400 MODEL_NOT_FOUND."""

    @pytest.mark.parametrize(("method", "template", "body"), MODEL_OPERATIONS + MODEL_IN_BODY,
                             ids=[f"{m} {t}" for m, t, _ in MODEL_OPERATIONS + MODEL_IN_BODY])
    def test_an_unknown_model_is_a_bad_request(
        self, contract: Contract, client: httpx.Client, folder: Path, method: str,
        template: str, body: Any,
    ) -> None:
        scene = client.post("/scene/", json=FORM4).json()["id"]
        client.post(f"/scene/{scene}/import-model/", json={"file": str(folder / "cube.stl")})
        response = _send(client, folder, method, template, body, scene_id=scene,
                         id="no-such-model")
        _assert_refused_as_the_contract_says(contract, method, template, response,
                                             "MODEL_NOT_FOUND")

    def test_the_label_refusal_says_the_model_is_not_found(
        self, client: httpx.Client, folder: Path
    ) -> None:
        scene = client.post("/scene/", json=FORM4).json()["id"]
        response = _send(client, folder, "post", "/scene/{scene_id}/label/", LABEL,
                         scene_id=scene)
        assert response.status_code == 400
        assert "no model with id 'no-such-model'" in response.json()["error"]["message"]


def test_every_operation_with_a_scene_id_is_covered(contract: Contract) -> None:
    with_scene = {
        (method, path)
        for path, item in contract.document["paths"].items()
        for method, operation in item.items()
        if "{scene_id}" in path and isinstance(operation, dict)
    }
    covered = {(m, t) for m, t, _ in SCENE_OPERATIONS + MODEL_OPERATIONS}
    assert with_scene == covered
