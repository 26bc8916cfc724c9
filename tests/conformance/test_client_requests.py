"""The Local API client speaks the official contract: its requests validate against the
contract's request schemas, and it reads answers that validate against the response schemas.

Every operation is driven with a rich option set through ``httpx.MockTransport``; the body
the client actually sent is validated, then a contract-conforming example answer is parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from preform_pipeline.api import (
    AutoLayoutOptions,
    AutoOrientOptions,
    AutoPackOptions,
    AutoSupportOptions,
    CameraAngle,
    CustomBounds,
    DirectionVectors,
    DrainHole,
    DrainHoleOptions,
    EulerAngles,
    FlyaroundTransform,
    FpsSettings,
    HollowOptions,
    ImportOptions,
    LabelOptions,
    ModelUpdate,
    PackAndCageOptions,
    Position,
    PreFormClient,
    PrintOptions,
    ScanToModelOptions,
    SceneSettings,
    ScreenshotOptions,
    TransformMatrix,
    WorkspaceMode,
)
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import ServerInternalError
from tests.openapi_contract import local_api_contract

HERE = Path(__file__).resolve().parent
BASE = "http://preform.test:44388"

#: Async operations whose contract entry documents no 202 answer although it takes
#: ``?async=true``; the client handles a 202 for them like for any other.
NO_DOCUMENTED_202 = {"addDrainHoles"}

#: Non-deprecated contract operations the client deliberately leaves out, with the reason.
NOT_COVERED = {
    "uploadFirmware": "flashing printer firmware is not part of preparing print jobs",
}

SETTINGS = SceneSettings(
    "FORM-4-0",
    "FLGPBK05",
    0.05,
    print_setting="DEFAULT",
    custom_print_setting_id="custom-1",
)
POS = Position(10, -5, 2)
EULER = EulerAngles(50, 2, 39)
MATRIX = TransformMatrix(((1, 0, 0), (0, 0, -1), (0, 1, 0)))
VECTORS = DirectionVectors((0, 0, 1), (1, 0, 0))

MODEL = {
    "id": "m-1",
    "name": "crown",
    "position": {"x": 0, "y": 0, "z": 0},
    "orientation": {"x": 0, "y": 0, "z": 0},
    "scale": 1,
    "units": "MILLIMETERS",
    "bounding_box": {
        "min_corner": {"x": -5, "y": -5, "z": 0},
        "max_corner": {"x": 5, "y": 5, "z": 12},
    },
    "original_file": "/jobs/crown.stl",
    "visible": True,
    "has_supports": True,
    "in_bounds": True,
    "raw_mesh_hash": "h1",
    "canonical_model_hash": "h2",
    "lock": "FREE",
}
SCENE = {
    "id": "scene-1",
    "models": [MODEL],
    "scene_settings": {
        "machine_type": "FORM-4-0",
        "material_code": "FLGPBK05",
        "print_setting": "DEFAULT",
        "layer_thickness_mm": 0.05,
    },
    "material_usage": {"volume_ml": 3.2, "unsupported_volume_ml": 2.9},
    "layer_count": 240,
}
SCENE_BEFORE_IMPORT = {**SCENE, "models": []}
DEVICE = {
    "id": "Form4-Happy",
    "product_name": "Form 4",
    "status": "IDLE",
    "is_connected": True,
    "connection_type": "WIFI",
    "ip_address": "10.0.0.7",
    "firmware_version": "1.9.0",
    "ready_to_print_now": True,
}
ERROR_MODEL = {"error": {"code": "SCENE_NOT_FOUND", "message": "no scene scene-9"}}


@dataclass(frozen=True)
class Op:
    """One contract operation, the client call that exercises it, and a conforming answer."""

    operation_id: str
    path: str
    method: str
    call: Callable[[PreFormClient], Any]
    answer: Any = None
    #: Validate the answer against this component instead (the contract's own schema cannot
    #: be satisfied; the reason is given in ``quirk``).
    answer_component: str | None = None
    quirk: str = ""
    extra_answers: dict[tuple[str, str], Any] = field(default_factory=dict)


OPS = [
    Op("getApiVersion", "/", "get", lambda c: c.get_api_version(), {"version": "0.9.12"}),
    Op(
        "login",
        "/login/",
        "post",
        lambda c: c.login("ada", "pw"),
        {"access_token": "a", "refresh_token": "r"},
    ),
    Op("login", "/login/", "post", lambda c: c.login_with_token("tok"), {"access_token": "a"}),
    Op("logout", "/logout/", "post", lambda c: c.logout()),
    Op(
        "getUser",
        "/user/",
        "get",
        lambda c: c.get_user(),
        {
            "username": "ada",
            "first_name": "Ada",
            "last_name": "L",
            "email": "ada@example.com",
            "persistent_id": "p",
        },
    ),
    Op(
        "listMaterials",
        "/list-materials/",
        "get",
        lambda c: c.list_materials(),
        {
            "printer_types": [
                {
                    "label": "Form 4",
                    "build_volume_dimensions_mm": [200.0, 125.0, 210.0],
                    "supported_machine_type_ids": ["FORM-4-0"],
                    "supported_product_names": ["Form 4"],
                    "materials": [
                        {
                            "label": "Black V5",
                            "description": "General purpose",
                            "material_settings": [
                                {"label": "0.050mm", "scene_settings": SCENE["scene_settings"]}
                            ],
                        }
                    ],
                }
            ]
        },
    ),
    Op("createScene", "/scene/", "post", lambda c: c.create_scene(SETTINGS), SCENE),
    Op(
        "createScene",
        "/scene/",
        "post",
        lambda c: c.create_scene(FpsSettings(HERE / "grey.fps")),
        SCENE,
    ),
    Op(
        "createDefaultScene",
        "/scene/default/",
        "post",
        lambda c: c.create_default_scene(SETTINGS),
        SCENE,
    ),
    Op(
        "deleteDefaultScene", "/scene/default/", "delete", lambda c: c.delete_default_scene(), SCENE
    ),
    Op("getAllScenes", "/scenes/", "get", lambda c: c.get_all_scenes(), {"scenes": [SCENE]}),
    Op("getScene", "/scene/{scene_id}/", "get", lambda c: c.get_scene("scene-1"), SCENE),
    Op(
        "updateScene",
        "/scene/{scene_id}/",
        "put",
        lambda c: c.update_scene("scene-1", SETTINGS),
        SCENE,
    ),
    Op("deleteScene", "/scene/{scene_id}/", "delete", lambda c: c.delete_scene("scene-1"), SCENE),
    Op("loadFormFile", "/load-form/", "post", lambda c: c.load_form(HERE / "job.form"), SCENE),
    Op(
        "saveFormFile",
        "/scene/{scene_id}/save-form/",
        "post",
        lambda c: c.save_form("scene-1", HERE / "job.form"),
    ),
    Op(
        "saveScreenshot",
        "/scene/{scene_id}/save-screenshot/",
        "post",
        lambda c: c.save_screenshot(
            "scene-1",
            HERE / "fly.webp",
            ScreenshotOptions(
                view_type="FULL_PLATFORM_WIDTH",
                yaw=30,
                pitch=20,
                image_size_px=640,
                crop_to_models=False,
                models=["m-1"],
                flyaround_transform=FlyaroundTransform(
                    [CameraAngle(0, 30), CameraAngle(120, 30), CameraAngle(240, 30)],
                    frame_count=36,
                    ensure_constant_size=True,
                ),
            ),
        ),
    ),
    Op(
        "saveFpsFile",
        "/scene/{scene_id}/save-fps-file/",
        "post",
        lambda c: c.save_fps_file("scene-1", HERE / "grey.fps"),
    ),
    Op(
        "getModel",
        "/scene/{scene_id}/models/{id}/",
        "get",
        lambda c: c.get_model("scene-1", "m-1"),
        MODEL,
    ),
    Op(
        "updateModel",
        "/scene/{scene_id}/models/{id}/",
        "post",
        lambda c: c.update_model(
            "scene-1",
            "m-1",
            ModelUpdate(
                name="renamed",
                position=POS,
                orientation=MATRIX,
                scale=0.5,
                units="INCHES",
                lock="LOCKED_ROTATION_FREE_TRANSLATION",
            ),
        ),
    ),
    Op(
        "deleteModel",
        "/scene/{scene_id}/models/{id}/",
        "delete",
        lambda c: c.delete_model("scene-1", "m-1"),
    ),
    Op(
        "duplicateModel",
        "/scene/{scene_id}/models/{id}/duplicate/",
        "post",
        lambda c: c.duplicate_model("scene-1", "m-1", 4),
        SCENE,
    ),
    Op(
        "replaceModel",
        "/scene/{scene_id}/models/{id}/replace/",
        "post",
        lambda c: c.replace_model("scene-1", "m-1", HERE / "v2.stl", repair_behavior="IGNORE"),
        {"warnings": ["repaired"], "model_properties": MODEL},
    ),
    Op(
        "importModel",
        "/scene/{scene_id}/import-model/",
        "post",
        lambda c: c.import_model(
            "scene-1",
            HERE / "crown.stl",
            ImportOptions(
                repair_behavior="REPAIR",
                name="crown",
                position=POS,
                orientation=EULER,
                scale=1.5,
                units="DETECTED",
                lock="LOCKED_XY_ROTATION_FREE_TRANSLATION",
            ),
        ),
        MODEL,
        extra_answers={("GET", "/scene/scene-1/"): [SCENE_BEFORE_IMPORT, SCENE]},
    ),
    Op(
        "importModel",
        "/scene/{scene_id}/import-model/",
        "post",
        lambda c: c.import_model("scene-1", HERE / "crown.stl", ImportOptions(orientation=VECTORS)),
        MODEL,
        extra_answers={("GET", "/scene/scene-1/"): [SCENE_BEFORE_IMPORT, SCENE]},
    ),
    Op(
        "scanToModel",
        "/scene/{scene_id}/scan-to-model/",
        "post",
        lambda c: c.scan_to_model(
            "scene-1",
            HERE / "upper.stl",
            ScanToModelOptions(
                cutoff_height_mm=4,
                units="MILLIMETERS",
                extrude_distance_mm=2,
                hollow=True,
                enable_honeycomb_infill=True,
                cutoff_below_gumline_mm=3,
                shell_thickness_mm=2,
                wall_thickness_mm=1,
                drain_hole_radius_mm=1.5,
                drain_hole_height_ratio=1,
                drain_hole_suppression_distance_mm=2,
                drain_hole_max_count=2,
                enable_smooth_contour_extended_sides=True,
            ),
            files=[HERE / "upper.stl", HERE / "lower.stl"],
        ),
        {**SCENE, "warnings": ["thin"], "infos": ["ok"]},
    ),
    Op(
        "autoOrient",
        "/scene/{scene_id}/auto-orient/",
        "post",
        lambda c: c.auto_orient(
            "scene-1", AutoOrientOptions(models="ALL", mode=WorkspaceMode.DENTAL, tilt=10)
        ),
    ),
    Op(
        "autoOrient",
        "/scene/{scene_id}/auto-orient/",
        "post",
        lambda c: c.auto_orient("scene-1", AutoOrientOptions(models=["m-1"])),
    ),
    Op(
        "autoSupport",
        "/scene/{scene_id}/auto-support/",
        "post",
        lambda c: c.auto_support(
            "scene-1",
            AutoSupportOptions(
                models=["m-1"],
                density=1.1,
                slope_multiplier=1.2,
                only_minima=False,
                raft_type="MINI_RAFTS_ON_BP",
                raft_label_enabled=True,
                breakaway_structure_enabled=True,
                touchpoint_size_mm=0.45,
                internal_supports_enabled=False,
                raft_thickness_mm=1.5,
                height_above_raft_mm=4,
                z_compression_correction_mm=0.2,
                early_layer_merge_mm=0.3,
            ),
        ),
    ),
    Op(
        "autoLayout",
        "/scene/{scene_id}/auto-layout/",
        "post",
        lambda c: c.auto_layout(
            "scene-1",
            AutoLayoutOptions(
                models="ALL",
                mode="DENTAL",
                model_spacing_mm=1.5,
                allow_overlapping_supports=False,
                lock_rotation=True,
                build_platform_2_optimized=False,
                custom_bounds=CustomBounds(-90, 90, -60, 60),
            ),
        ),
        SCENE,
    ),
    Op(
        "autoPack",
        "/scene/{scene_id}/auto-pack/",
        "post",
        lambda c: c.auto_pack("scene-1", AutoPackOptions(model_spacing_mm=2)),
        SCENE,
    ),
    Op(
        "packAndCage",
        "/scene/pack-and-cage/",
        "post",
        lambda c: c.pack_and_cage(
            PackAndCageOptions(
                models=["m-1"],
                packing_type="PACK_VOLUME",
                cage_label="LOT-7",
                generate_mesh_label=True,
                model_spacing_mm=2,
                bar_spacing_mm=8,
                bar_thickness_mm=2,
                bar_width_mm=2,
                distance_to_cage_mm=3,
                enable_round_edges=True,
                enable_square_bars=False,
            )
        ),
        SCENE,
    ),
    Op(
        "hollowModel",
        "/scene/{scene_id}/hollow/",
        "post",
        lambda c: c.hollow(
            "scene-1",
            HollowOptions(models=["m-1"], wall_thickness_mm=2, feature_size_mm=1, accuracy=0.7),
        ),
        {"warnings": [], "infos": ["hollowed"]},
    ),
    Op(
        "labelPart",
        "/scene/{scene_id}/label/",
        "post",
        lambda c: c.label(
            "scene-1",
            LabelOptions(
                model_id="m-1",
                label="A-17",
                position=POS,
                orientation=MATRIX,
                font_size_mm=4,
                depth_mm=0.6,
                application_mode="ENGRAVE",
            ),
        ),
        {"warnings": ["label wraps an edge"]},
    ),
    Op(
        "addDrainHoles",
        "/scene/{scene_id}/add-drain-holes/",
        "post",
        lambda c: c.add_drain_holes(
            "scene-1",
            DrainHoleOptions(
                "m-1",
                [
                    DrainHole(POS, EULER, 3, "AUTO", True, outset_mm=0.5, max_search_distance=5),
                    DrainHole(POS, VECTORS, 2.5, 4.0, False),
                ],
            ),
        ),
        {"plugs": ["plug-1"], "warnings": [], "infos": []},
    ),
    Op(
        "getPrintValidation",
        "/scene/{scene_id}/print-validation/",
        "get",
        lambda c: c.get_print_validation("scene-1"),
        {
            "per_model_results": {
                "m-1": {
                    "cups": 1,
                    "unsupported_minima": 0,
                    "undersupported": False,
                    "has_seamline": True,
                }
            }
        },
    ),
    Op(
        "estimatePrintTime",
        "/scene/{scene_id}/estimate-print-time/",
        "post",
        lambda c: c.estimate_print_time("scene-1"),
        {
            "total_print_time_s": 7200,
            "preprint_time_s": 600,
            "printing_time_s": 6600,
            "cool_to_removal_time_s": 3600,
            "additional_cool_to_room_temp_time_s": 1800,
        },
        quirk=(
            "an SLA-only estimate matches both oneOf branches of EstimatedPrintTimeModel, so only "
            "an SLS-shaped example can validate; the client reads either"
        ),
    ),
    Op(
        "getSceneInterferences",
        "/scene/{scene_id}/interferences/",
        "post",
        lambda c: c.get_interferences("scene-1", collision_offset_mm=0.2),
    ),
    Op(
        "print",
        "/scene/{scene_id}/print/",
        "post",
        lambda c: c.print_scene(
            "scene-1",
            PrintOptions(
                printer="Form4-Happy",
                job_name="batch 12",
                find_printer_timeout_seconds=10,
                print_now=True,
            ),
        ),
        {"job_id": "job-1"},
    ),
    Op(
        "getDevices",
        "/devices/",
        "get",
        lambda c: c.get_devices(can_print=True),
        {"count": 1, "devices": [DEVICE]},
        answer_component="BaseDeviceStatusModel",
        quirk=(
            "DeviceStatusModel's branches combine allOf with additionalProperties: false, which "
            "no device body can satisfy; the fields the client reads are validated instead"
        ),
    ),
    Op(
        "getDevice",
        "/devices/{id}/",
        "get",
        lambda c: c.get_device("Form4-Happy"),
        DEVICE,
        answer_component="BaseDeviceStatusModel",
        quirk="as for getDevices",
    ),
    Op(
        "discoverDevices",
        "/discover-devices/",
        "post",
        lambda c: c.discover_devices(timeout_seconds=10, ip_address="10.0.0.7"),
        {"count": 1, "devices": [DEVICE]},
        answer_component="BaseDeviceStatusModel",
        quirk="as for getDevices",
    ),
    Op(
        "getAllOperations",
        "/operations/",
        "get",
        lambda c: c.list_operations(),
        {"count": 1, "operations": [{"id": "op-1", "status": "IN_PROGRESS", "progress": 0.5}]},
    ),
    Op(
        "getOperation",
        "/operations/{id}/",
        "get",
        lambda c: c.get_operation("op-1"),
        {"id": "op-1", "status": "SUCCEEDED", "progress": 1.0, "result": {"job_id": "job-1"}},
    ),
]

_IDS = [f"{op.operation_id}-{i}" for i, op in enumerate(OPS)]


def _is_deprecated(operation: dict[str, Any]) -> bool:
    # The contract marks its scene-less legacy paths by name and description, not by flag.
    return bool(
        operation.get("deprecated")
        or operation["operationId"].endswith("Deprecated")
        or str(operation.get("description", "")).startswith("Deprecated")
    )


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")


class _Recorder:
    """Answers the operation under test with its example and records what the client sent."""

    def __init__(self, op: Op) -> None:
        self.op = op
        self.sent: list[tuple[str, str, Any]] = []
        self._extra = {key: list(value) for key, value in op.extra_answers.items()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        queue = self._extra.get((request.method, request.url.path))
        if queue:
            return httpx.Response(200, json=queue.pop(0) if len(queue) > 1 else queue[0])
        if _template_regex(self.op.path).match(request.url.path) and (
            request.method == self.op.method.upper()
        ):
            if self.op.answer is None:
                return httpx.Response(200)
            return httpx.Response(200, json=self.op.answer)
        if request.url.path == "/":
            return httpx.Response(200, json={"version": "0.9.12"})
        return httpx.Response(404, json=ERROR_MODEL)


def _run(op: Op) -> tuple[_Recorder, Any]:
    recorder = _Recorder(op)
    with PreFormClient(
        BASE, transport=httpx.MockTransport(recorder), async_operations=False
    ) as client:
        result = op.call(client)
    return recorder, result


class TestRequestsConform:
    """The body the client sends for each operation validates against the request schema."""

    @pytest.mark.parametrize("op", OPS, ids=_IDS)
    def test_request_body_is_valid(self, op: Op) -> None:
        contract = local_api_contract()
        recorder, _ = _run(op)

        matching = [
            body
            for method, path, body in recorder.sent
            if method == op.method.upper() and _template_regex(op.path).match(path)
        ]
        assert len(matching) == 1, f"{op.operation_id} was not sent exactly once: {recorder.sent}"
        [body] = matching
        operation = contract.operation(op.path, op.method)
        assert operation["operationId"] == op.operation_id
        schema = contract.request_schema(op.path, op.method)
        if schema is None:
            assert body is None, f"{op.operation_id} takes no body but the client sent {body!r}"
            return
        if operation["requestBody"].get("required"):
            assert body is not None, f"{op.operation_id} requires a body"
        if body is not None:
            contract.assert_valid(body, schema, f"{op.operation_id} request body")


class TestAnswersAreRead:
    """A contract-conforming example answer is parsed into a typed result without error."""

    @pytest.mark.parametrize(
        "op", [op for op in OPS if op.answer is not None], ids=lambda op: op.operation_id
    )
    def test_example_answer_conforms_and_is_parsed(self, op: Op) -> None:
        contract = local_api_contract()
        schema = contract.response_schema(op.path, op.method, 200)
        assert schema is not None, f"{op.operation_id} documents no JSON answer"
        if op.answer_component is None:
            contract.assert_valid(op.answer, schema, f"{op.operation_id} example answer")
        else:
            component = {"$ref": f"#/components/schemas/{op.answer_component}"}
            devices = op.answer.get("devices", [op.answer])
            for device in devices:
                contract.assert_valid(device, component, f"{op.operation_id} device ({op.quirk})")

        _, result = _run(op)

        assert result is not None or op.operation_id == "deleteScene"
        raw = getattr(result, "raw", None)
        if raw is not None and op.operation_id not in {"scanToModel", "importModel"}:
            assert raw == op.answer

    def test_the_error_model_example_is_read_into_the_error(self) -> None:
        contract = local_api_contract()
        schema = contract.response_schema("/scene/{scene_id}/", "put", 400)
        contract.assert_valid(ERROR_MODEL, schema, "ErrorModel example")
        transport = httpx.MockTransport(
            lambda r: (
                httpx.Response(200, json={"version": "0.9.12"})
                if r.url.path == "/"
                else httpx.Response(400, json=ERROR_MODEL)
            )
        )
        with (
            PreFormClient(BASE, transport=transport) as client,
            # A scene the server does not have was lost in a restart: transient (session 39).
            pytest.raises(ServerInternalError) as caught,
        ):
            client.update_scene("scene-9", SETTINGS)
        assert (caught.value.code, caught.value.server_message) == (
            "SCENE_NOT_FOUND",
            "no scene scene-9",
        )


class TestAsyncEnvelope:
    """The async acceptance and the operation status the client reads conform too."""

    def test_accepted_and_status_bodies_conform(self) -> None:
        contract = local_api_contract()
        accepted = {"operationId": "op-1"}
        async_ops = [
            (path, method)
            for path, item in contract.document["paths"].items()
            for method, op in item.items()
            if method != "parameters"
            and not _is_deprecated(op)
            and any(p.get("name") == "async" for p in op.get("parameters", []))
            and op["operationId"] not in NO_DOCUMENTED_202
        ]
        assert len(async_ops) >= 15
        for path, method in async_ops:
            contract.assert_valid(
                accepted, contract.response_schema(path, method, 202), f"{method} {path} 202"
            )
        status_schema = contract.response_schema("/operations/{id}/", "get", 200)
        for body in (
            {"id": "op-1", "status": "IN_PROGRESS", "progress": 0.3},
            {"id": "op-1", "status": "FAILED", "progress": 0.3, "result": ERROR_MODEL},
        ):
            contract.assert_valid(body, status_schema, "operation status")


class _AnsweringWith(_Recorder):
    """Answers the operation under test with ``status``: a 200 as :class:`_Recorder` does; a
    202 with an accepted operation, whose status read gives the example as its result."""

    def __init__(self, op: Op, status: int) -> None:
        super().__init__(op)
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status == 202 and request.url.path == "/operations/op-1/":
            return httpx.Response(200, json={"id": "op-1", "status": "SUCCEEDED",
                                             "progress": 1.0, "result": self.op.answer})
        response = super().__call__(request)
        if self.status == 202 and request.method == self.op.method.upper() \
                and _template_regex(self.op.path).match(request.url.path):
            return httpx.Response(202, json={"operationId": "op-1"})
        return response


class TestEverySuccessOfTheContractIsTaken:
    """Each success status the contract lists for an operation (a 200, with its body or none,
    and a 202 where it lists one) is read as a success, the operations run on as PreFormServer
    runs them (``?async=true``). Review rv47-fuzz: session 47 refused every other 2xx and a 202
    to a call that waits, which must never refuse an answer the real server gives."""

    @pytest.mark.parametrize("op", OPS, ids=_IDS)
    def test_each_listed_success_is_read(self, op: Op) -> None:
        operation = local_api_contract().operation(op.path, op.method)
        statuses = sorted(int(s) for s in operation["responses"] if str(s).startswith("2"))
        assert statuses, f"{op.operation_id} lists no success"
        for status in statuses:
            recorder = _AnsweringWith(op, status)
            with PreFormClient(BASE, transport=httpx.MockTransport(recorder),
                               clock=ManualClock()) as client:
                op.call(client)
            answered = [path for method, path, _ in recorder.sent
                        if method == op.method.upper() and _template_regex(op.path).match(path)]
            assert len(answered) == 1, f"{op.operation_id} {status}: {recorder.sent}"


class TestCoverage:
    """Every non-deprecated contract operation is exercised here or excluded with a reason."""

    def test_every_operation_is_covered(self) -> None:
        contract = local_api_contract()
        in_contract = {
            op["operationId"]
            for item in contract.document["paths"].values()
            for method, op in item.items()
            if method != "parameters" and not _is_deprecated(op)
        }
        covered = {op.operation_id for op in OPS}
        missing = in_contract - covered - set(NOT_COVERED)
        assert not missing, f"operations the client does not exercise: {sorted(missing)}"
        assert covered <= in_contract
