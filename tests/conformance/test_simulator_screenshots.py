"""Screenshots as the Local API contract documents them: ``.png`` or ``.webp`` stills and
``.webp`` flyaround animations.

Found by sending every documented field of each request to the simulator (docs/testing.md,
session 32's vendor sweep): a ``.webp`` path or a ``flyaround_transform``, both in the
contract's save-screenshot schema, were refused with 400 ``UNSUPPORTED_IMAGE_FORMAT``. A real
simulator over HTTP; each request is checked against the contract's request schema before
it is sent, each answer against the response schema.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from tests.conformance.local_simulator import simulator_client
from tests.openapi_contract import Contract, local_api_contract

SHOT = "/scene/{scene_id}/save-screenshot/"
FORM4 = {
    "machine_type": "FORM-4-0",
    "material_code": "FLGPGR05",
    "print_setting": "DEFAULT",
    "layer_thickness_mm": 0.1,
}
#: How long an asynchronous flyaround may take on a loaded machine.
OPERATION_WAIT_S = 30.0


@pytest.fixture(scope="module")
def contract() -> Contract:
    return local_api_contract()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[httpx.Client]:
    with simulator_client(folder, timeout=OPERATION_WAIT_S) as http:
        yield http


@pytest.fixture(scope="module")
def scene(client: httpx.Client, folder: Path) -> tuple[str, str]:
    """A scene with one box in it: its id and the box's model id."""
    write_stl(folder / "box.stl", box_triangles((0.0, 0.0, 0.0), (30.0, 20.0, 10.0)))
    scene_id = client.post("/scene/", json=FORM4).json()["id"]
    model = client.post(f"/scene/{scene_id}/import-model/", json={"file": str(folder / "box.stl")})
    return scene_id, model.json()["id"]


def _shoot(
    client: httpx.Client, contract: Contract, scene_id: str, body: dict[str, Any], query: str = ""
) -> httpx.Response:
    contract.assert_valid(body, contract.request_schema(SHOT, "post"), "save-screenshot request")
    return client.post(SHOT.format(scene_id=scene_id) + query, json=body)


class TestWebp:
    """A ``.webp`` path gets a WebP file: one frame, or the flyaround's frames."""

    def test_the_contracts_full_options_saved_as_webp(
        self, client: httpx.Client, contract: Contract, scene: tuple[str, str], folder: Path
    ) -> None:
        path = folder / "full.webp"
        body = {"file": str(path), "view_type": "FULL_BUILD_VOLUME", "models": [scene[1]],
                "image_size_px": 96}
        response = _shoot(client, contract, scene[0], body)
        assert (response.status_code, response.json()) == (200, {})
        with Image.open(path) as image:
            assert (image.format, getattr(image, "n_frames", 1)) == ("WEBP", 1)

    def test_a_flyaround_runs_asynchronously_to_an_animation(
        self, client: httpx.Client, contract: Contract, scene: tuple[str, str], folder: Path
    ) -> None:
        path = folder / "fly.webp"
        fly = {
            "transform": [{"yaw": 0, "pitch": 20}, {"yaw": 180, "pitch": 20}],
            "frame_count": 4,
            "ensure_constant_size": True,
        }
        body = {"file": str(path), "image_size_px": 64, "flyaround_transform": fly}
        accepted = _shoot(client, contract, scene[0], body, "?async=true")
        assert accepted.status_code == 202, accepted.text
        operation = f"/operations/{accepted.json()['operationId']}/"
        deadline = time.monotonic() + OPERATION_WAIT_S
        while (status := client.get(operation).json())["status"] == "IN_PROGRESS":
            assert time.monotonic() < deadline, status
            time.sleep(0.02)
        assert (status["status"], status["result"], status["progress"]) == ("SUCCEEDED", {}, 1.0)
        schema = contract.response_schema("/operations/{id}/", "get", 200)
        contract.assert_valid(status, schema, "operation")
        with Image.open(path) as animation:
            assert (animation.format, animation.n_frames) == ("WEBP", 4)

    def test_a_flyaround_to_a_png_is_a_contract_refusal(
        self, client: httpx.Client, contract: Contract, scene: tuple[str, str], folder: Path
    ) -> None:
        fly = {"transform": [{"yaw": 0, "pitch": 20}, {"yaw": 90, "pitch": 20}]}
        body = {"file": str(folder / "fly.png"), "flyaround_transform": fly}
        response = client.post(SHOT.format(scene_id=scene[0]), json=body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "INVALID_BODY"
        contract.assert_valid(response.json(), contract.response_schema(SHOT, "post", 400), "400")
        assert not (folder / "fly.png").exists()
