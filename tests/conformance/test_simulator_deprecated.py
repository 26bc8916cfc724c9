"""The contract's deprecated operations are served, on the most recently created scene.

The Local API contract keeps the paths without a scene id (``/scene/import-model/``,
``/scene/estimate-print-time/``, ``GET /scene/`` ...) as deprecated operations that "use the
most recently created scene". Formlabs' own example scripts still call them (a speed-run over
print settings, a print dialog, an SLS packing web app), so a stand-in server has to answer
them as the real one does. One flow drives a real simulator over HTTP: each answer's status
must be one the contract lists for that deprecated operation and its body must fit the
contract's schema, and the scene the call changed must be the most recent one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from tests.conformance.local_simulator import simulator_client
from tests.openapi_contract import Contract, local_api_contract

FORM4 = {
    "machine_type": "FORM-4-0",
    "material_code": "FLGPGR05",
    "print_setting": "DEFAULT",
    "layer_thickness_mm": 0.1,
}
FUSE = {"machine_type": "FS30-1-0", "material_code": "FLP11B01", "layer_thickness_mm": 0.11}
#: How long an asynchronous print may take to finish on an instant simulator.
OPERATION_WAIT_S = 30.0


class DeprecatedFlow:
    """Sends requests to a running simulator and checks each against the contract."""

    def __init__(self, client: httpx.Client, contract: Contract) -> None:
        self.client = client
        self.contract = contract
        self.called: set[tuple[str, str]] = set()

    def __call__(
        self, method: str, template: str, body: Any = None, *, path: str | None = None,
        query: str = "", status: int | None = None,
    ) -> Any:
        operation = self.contract.operation(template, method.lower())
        assert operation.get("description", "").startswith("Deprecated"), template
        response = self.client.request(method, (path or template) + query, json=body)
        if status is not None:
            assert response.status_code == status, response.text
        listed = set(operation["responses"])
        assert str(response.status_code) in listed, (
            f"{method} {template}: {response.status_code} is not among the contract's "
            f"answers {sorted(listed)}: {response.text}"
        )
        answer = response.json()
        schema = self.contract.response_schema(template, method.lower(), response.status_code)
        if schema is not None and not self._estimate(template, answer):
            self.contract.assert_valid(answer, schema, f"{method} {template}")
        self.called.add((method.lower(), template))
        return answer

    def _estimate(self, template: str, answer: dict[str, Any]) -> bool:
        """An SLA estimate fits both alternatives of its ``oneOf``; check the SLA one alone."""
        if template != "/scene/estimate-print-time/" or "cool_to_removal_time_s" in answer:
            return False
        sla = self.contract.component("EstimatedPrintTimeModel")["oneOf"][0]
        self.contract.assert_valid(answer, sla, "SLA estimate of the most recent scene")
        return True

    def scene(self, scene_id: str) -> dict[str, Any]:
        response = self.client.get(f"/scene/{scene_id}/")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def _cube(folder: Path, name: str, size: float) -> str:
    path = folder / name
    write_stl(path, box_triangles((0.0, 0.0, 0.0), (size, size, size)))
    return str(path)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return local_api_contract()


@pytest.fixture(scope="module")
def flow(
    contract: Contract, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeprecatedFlow]:
    folder = tmp_path_factory.mktemp("deprecated")
    with simulator_client(folder, timeout=OPERATION_WAIT_S) as client:
        yield DeprecatedFlow(client, contract)


class TestDeprecatedOperations:
    """Each deprecated operation answers as the contract says, on the newest scene."""

    def test_an_sla_job_is_prepared_and_printed_without_naming_its_scene(
        self, flow: DeprecatedFlow, tmp_path: Path
    ) -> None:
        older = flow.client.post("/scene/", json=FORM4).json()["id"]
        newest = flow.client.post("/scene/", json=FORM4).json()["id"]
        model = flow("POST", "/scene/import-model/", {"file": _cube(tmp_path, "a.stl", 20)})
        assert [m["id"] for m in flow.scene(newest)["models"]] == [model["id"]]
        assert flow.scene(older)["models"] == []

        assert flow("GET", "/scene/")["id"] == newest
        flow("PUT", "/scene/", {**FORM4, "layer_thickness_mm": 0.05})
        assert flow.scene(newest)["scene_settings"]["layer_thickness_mm"] == 0.05

        one = f"/scene/models/{model['id']}/"
        position = flow("GET", "/scene/models/{id}/", path=one)["position"]
        flow("POST", "/scene/models/{id}/", {"name": "Cube A"}, path=one)
        assert flow.scene(newest)["models"][0]["name"] == "Cube A"
        flow("POST", "/scene/models/{id}/duplicate/", {"count": 1}, path=one + "duplicate/")
        flow("POST", "/scene/models/{id}/replace/", {"file": _cube(tmp_path, "b.stl", 15)},
             path=one + "replace/")
        flow("POST", "/scene/auto-orient/", {"models": "ALL"})
        flow("POST", "/scene/auto-layout/", {"models": "ALL"})
        flow("POST", "/scene/auto-support/", {"models": "ALL"})
        flow("POST", "/scene/hollow/", {"models": [model["id"]], "wall_thickness_mm": 2})
        position = flow("GET", "/scene/models/{id}/", path=one)["position"]
        hole = {"orientation": {"x": 180, "y": 0, "z": 0}, "position": position,
                "diameter_mm": 3, "depth_mm": "AUTO", "create_plug": True}
        flow("POST", "/scene/add-drain-holes/", {"model_id": model["id"], "drain_holes": [hole]})
        flow("POST", "/scene/label/", {"model_id": model["id"], "label": "A1",
                                       "orientation": {"x": 90, "y": 0, "z": 0},
                                       "position": position, "font_size_mm": 4, "depth_mm": 0.5})
        flow("GET", "/scene/print-validation/")
        assert flow("POST", "/scene/estimate-print-time/")["total_print_time_s"] > 0
        flow("POST", "/scene/interferences/", {"collision_offset_mm": 0.5})
        flow("POST", "/scene/save-form/", {"file": str(tmp_path / "job.form")})
        flow("POST", "/scene/save-screenshot/", {"file": str(tmp_path / "job.png")})
        flow("POST", "/scene/save-fps-file/", {"file": str(tmp_path / "job.fps")})
        assert (tmp_path / "job.form").stat().st_size > 0
        assert (tmp_path / "job.png").stat().st_size > 0

        accepted = flow("POST", "/scene/print/", {"printer": "SimulatedForm4-1",
                                                  "job_name": "Deprecated lot"},
                        query="?async=true")
        assert _finished(flow.client, accepted["operationId"])["status"] == "SUCCEEDED"
        before = [m["id"] for m in flow.scene(newest)["models"]]
        copy = next(i for i in before if i != model["id"])
        flow("DELETE", "/scene/models/{id}/", path=f"/scene/models/{copy}/")
        assert [m["id"] for m in flow.scene(newest)["models"]] == [i for i in before if i != copy]

    def test_a_scan_and_an_sls_pack_act_on_the_scene_made_last(
        self, flow: DeprecatedFlow, tmp_path: Path
    ) -> None:
        dental = flow.client.post("/scene/", json=FORM4).json()["id"]
        scan = tmp_path / "scan.stl"
        write_stl(scan, box_triangles((0.0, 0.0, 0.0), (40.0, 30.0, 12.0))[2:])
        flow("POST", "/scene/scan-to-model/", {"file": str(scan), "cutoff_height_mm": 1})
        assert len(flow.scene(dental)["models"]) == 1

        sls = flow.client.post("/scene/", json=FUSE).json()["id"]
        for name in ("c1.stl", "c2.stl"):
            flow("POST", "/scene/import-model/", {"file": _cube(tmp_path, name, 20)})
        flow("POST", "/scene/auto-pack/", {"model_spacing_mm": 2})
        assert "cool_to_removal_time_s" in flow("POST", "/scene/estimate-print-time/")
        assert len(flow.scene(sls)["models"]) == 2

    def test_bodiless_calls_take_the_defaults_as_the_generated_client_sends_them(
        self, flow: DeprecatedFlow, tmp_path: Path
    ) -> None:
        sla = flow.client.post("/scene/", json=FORM4).json()["id"]
        model = flow("POST", "/scene/import-model/", {"file": _cube(tmp_path, "d.stl", 20)})
        one = f"/scene/models/{model['id']}/"
        for template in ("/scene/auto-orient/", "/scene/auto-layout/", "/scene/auto-support/",
                         "/scene/hollow/"):
            flow("POST", template, status=200)
        flow("POST", "/scene/models/{id}/", path=one, status=200)
        flow("POST", "/scene/models/{id}/duplicate/", path=one + "duplicate/", status=200)
        assert len(flow.scene(sla)["models"]) == 2
        refused = flow.client.post("/scene/import-model/")
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "MISSING_BODY")

        sls = flow.client.post("/scene/", json=FUSE).json()["id"]
        flow("POST", "/scene/import-model/", {"file": _cube(tmp_path, "e.stl", 20)})
        flow("POST", "/scene/auto-pack/", status=200)
        assert flow.scene(sls)["models"][0]["in_bounds"] is True

    def test_every_deprecated_operation_of_the_contract_was_called(
        self, flow: DeprecatedFlow, contract: Contract
    ) -> None:
        deprecated = {
            (method, path)
            for path, item in contract.document["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict)
            and str(operation.get("description", "")).startswith("Deprecated")
        }
        assert deprecated and flow.called == deprecated


def _finished(client: httpx.Client, operation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + OPERATION_WAIT_S
    while True:
        answer: dict[str, Any] = client.get(f"/operations/{operation_id}/").json()
        if answer["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)
