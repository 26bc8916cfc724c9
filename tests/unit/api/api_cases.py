"""The operations the client supports, each with its expected request and a sample answer.

Shared by the call tests (blocking and ``?async=true``); the conformance tests keep their own
richer option sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.api import (
    ActionReport,
    AutoLayoutOptions,
    AutoOrientOptions,
    AutoPackOptions,
    AutoSupportOptions,
    CustomBounds,
    Device,
    DrainHole,
    DrainHoleOptions,
    DrainHoleResult,
    EulerAngles,
    FpsSettings,
    HollowOptions,
    Interferences,
    LabelOptions,
    MaterialCatalogue,
    ModelInfo,
    ModelUpdate,
    Operation,
    OperationStatus,
    PackAndCageOptions,
    PackingType,
    Position,
    PreFormClient,
    PrintOptions,
    PrintResult,
    PrintTimeEstimate,
    PrintValidation,
    RaftType,
    RepairBehavior,
    ReplaceResult,
    ScanToModelOptions,
    ScanToModelResult,
    Scene,
    SceneSettings,
    ScreenshotOptions,
    SlaMaterialUsage,
    User,
    WebAuthTokens,
    WorkspaceMode,
)
from tests.unit.api.api_fakes import scene_json

__all__ = [
    "CASES",
    "LONG_OPERATIONS",
    "MODEL",
    "MODEL_JSON",
    "SERVER_MODEL",
    "Case",
    "windows_mapper",
]

HERE = Path(__file__).resolve().parent
MODEL = HERE / "part.stl"
SERVER_MODEL = "C:\\jobs\\part.stl"


def windows_mapper(path: Path) -> str:
    """Maps local files onto a Windows server's job folder, as a remote pool would."""
    return "C:\\jobs\\" + path.name


MODEL_JSON = {
    "id": "m-1",
    "name": "part",
    "position": {"x": 1, "y": 2, "z": 0},
    "orientation": {"x": 0, "y": 0, "z": 90},
    "scale": 1,
    "units": "MILLIMETERS",
    "bounding_box": {
        "min_corner": {"x": -5, "y": -5, "z": 0},
        "max_corner": {"x": 5, "y": 5, "z": 20},
    },
    "original_file": SERVER_MODEL,
    "visible": True,
    "has_supports": False,
    "in_bounds": True,
    "raw_mesh_hash": "abc",
    "canonical_model_hash": "def",
    "lock": "FREE",
}

DEVICE_JSON = {
    "id": "Form4-Happy",
    "product_name": "Form 4",
    "status": "IDLE",
    "is_connected": True,
    "connection_type": "WIFI",
    "ip_address": "10.0.0.7",
    "firmware_version": "1.9.0",
    "ready_to_print_now": True,
    "tank_material_code": "FLGPBK05",
}


@dataclass(frozen=True)
class Case:
    """One operation: what the client is asked, what it must send, and what it gets back."""

    name: str
    call: Callable[[PreFormClient], Any]
    method: str
    path: str
    body: Any = None
    answer: Any = None
    check: Callable[[Any], None] = field(default=lambda result: None)
    params: dict[str, str] = field(default_factory=dict)
    status: int = 200


def _scene_check(result: Any) -> None:
    assert isinstance(result, Scene)
    assert result.id == "scene-1"
    assert result.model_ids == ("m-1",)
    assert result.scene_settings == SceneSettings("FORM-4-0", "FLGPBK05", 0.05, "DEFAULT")
    assert result.material_usage == SlaMaterialUsage(12.5, 10.0)
    assert result.layer_count == 400


SCENE = scene_json("scene-1", ("m-1",))
SETTINGS = SceneSettings("FORM-4-0", "FLGPBK05", 0.05, print_setting="DEFAULT")
SETTINGS_BODY = {
    "machine_type": "FORM-4-0",
    "material_code": "FLGPBK05",
    "layer_thickness_mm": 0.05,
    "print_setting": "DEFAULT",
}

CASES = [
    Case(
        "get_api_version",
        lambda c: c.get_api_version(),
        "GET",
        "/",
        answer={"version": "0.9.12"},
        check=lambda r: r.version == "0.9.12" or pytest.fail(r),
    ),
    Case(
        "login",
        lambda c: c.login("ada", "s3cret"),
        "POST",
        "/login/",
        {"username": "ada", "password": "s3cret"},
        {"access_token": "AT", "refresh_token": "RT"},
        lambda r: r == WebAuthTokens("AT", "RT") or pytest.fail(r),
    ),
    Case(
        "login_with_token",
        lambda c: c.login_with_token("AT"),
        "POST",
        "/login/",
        {"access_token": "AT"},
        {"access_token": "AT"},
    ),
    Case("logout", lambda c: c.logout(), "POST", "/logout/"),
    Case(
        "get_user",
        lambda c: c.get_user(),
        "GET",
        "/user/",
        answer={"username": "ada", "email": "ada@example.com"},
        check=lambda r: r == User(username="ada", email="ada@example.com") or pytest.fail(r),
    ),
    Case(
        "list_materials",
        lambda c: c.list_materials(),
        "GET",
        "/list-materials/",
        answer={
            "printer_types": [
                {
                    "label": "Form 4",
                    "build_volume_dimensions_mm": [200, 125, 210],
                    "supported_machine_type_ids": ["FORM-4-0"],
                    "supported_product_names": ["Form 4"],
                    "materials": [
                        {
                            "label": "Black V5",
                            "description": "General purpose",
                            "material_settings": [
                                {"label": "0.050mm", "scene_settings": SETTINGS_BODY}
                            ],
                        }
                    ],
                }
            ]
        },
        check=lambda r: (
            (
                isinstance(r, MaterialCatalogue)
                and r.scene_settings_for("FORM-4-0", "FLGPBK05") == (SETTINGS,)
                and r.printer_types[0].build_volume_dimensions_mm == (200.0, 125.0, 210.0)
            )
            or pytest.fail(r)
        ),
    ),
    Case(
        "create_scene",
        lambda c: c.create_scene(SETTINGS),
        "POST",
        "/scene/",
        SETTINGS_BODY,
        SCENE,
        _scene_check,
    ),
    Case(
        "create_scene_from_fps",
        lambda c: c.create_scene(FpsSettings(HERE / "grey.fps")),
        "POST",
        "/scene/",
        {"fps_file": "C:\\jobs\\grey.fps"},
        SCENE,
        _scene_check,
    ),
    Case(
        "create_default_scene",
        lambda c: c.create_default_scene(SETTINGS),
        "POST",
        "/scene/default/",
        SETTINGS_BODY,
        SCENE,
        _scene_check,
    ),
    Case(
        "delete_default_scene",
        lambda c: c.delete_default_scene(),
        "DELETE",
        "/scene/default/",
        answer=SCENE,
        check=_scene_check,
    ),
    Case(
        "get_scene",
        lambda c: c.get_scene("scene-1"),
        "GET",
        "/scene/scene-1/",
        None,
        SCENE,
        _scene_check,
    ),
    Case(
        "get_all_scenes",
        lambda c: c.get_all_scenes(),
        "GET",
        "/scenes/",
        answer={"scenes": [SCENE, scene_json("scene-2")]},
        check=lambda r: [s.id for s in r] == ["scene-1", "scene-2"] or pytest.fail(r),
    ),
    Case(
        "update_scene",
        lambda c: c.update_scene("scene-1", SETTINGS),
        "PUT",
        "/scene/scene-1/",
        SETTINGS_BODY,
        SCENE,
        _scene_check,
    ),
    Case(
        "delete_scene",
        lambda c: c.delete_scene("scene-1"),
        "DELETE",
        "/scene/scene-1/",
        answer=SCENE,
        check=lambda r: r is None or pytest.fail(r),
    ),
    Case(
        "load_form",
        lambda c: c.load_form(HERE / "job.form"),
        "POST",
        "/load-form/",
        {"file": "C:\\jobs\\job.form"},
        SCENE,
        _scene_check,
    ),
    Case(
        "save_form",
        lambda c: c.save_form("scene-1", HERE / "job.form"),
        "POST",
        "/scene/scene-1/save-form/",
        {"file": "C:\\jobs\\job.form"},
    ),
    Case(
        "save_screenshot",
        lambda c: c.save_screenshot(
            "scene-1", HERE / "shot.png", ScreenshotOptions(view_type="FULL_BUILD_VOLUME")
        ),
        "POST",
        "/scene/scene-1/save-screenshot/",
        {"file": "C:\\jobs\\shot.png", "view_type": "FULL_BUILD_VOLUME"},
    ),
    Case(
        "save_fps_file",
        lambda c: c.save_fps_file("scene-1", HERE / "grey.fps"),
        "POST",
        "/scene/scene-1/save-fps-file/",
        {"file": "C:\\jobs\\grey.fps"},
    ),
    Case(
        "scan_to_model",
        lambda c: c.scan_to_model(
            "scene-1",
            HERE / "upper.stl",
            ScanToModelOptions(cutoff_height_mm=5, hollow=True, shell_thickness_mm=2),
            files=[HERE / "upper.stl", HERE / "lower.stl"],
        ),
        "POST",
        "/scene/scene-1/scan-to-model/",
        {
            "file": "C:\\jobs\\upper.stl",
            "files": ["C:\\jobs\\upper.stl", "C:\\jobs\\lower.stl"],
            "cutoff_height_mm": 5,
            "hollow": True,
            "shell_thickness_mm": 2,
        },
        {**SCENE, "warnings": ["thin base"], "infos": []},
        lambda r: (
            (
                isinstance(r, ScanToModelResult)
                and r.warnings == ("thin base",)
                and r.scene.model_ids == ("m-1",)
            )
            or pytest.fail(r)
        ),
    ),
    Case(
        "get_model",
        lambda c: c.get_model("scene-1", "m-1"),
        "GET",
        "/scene/scene-1/models/m-1/",
        answer=MODEL_JSON,
        check=lambda r: (
            (
                isinstance(r, ModelInfo)
                and r.bounding_box is not None
                and r.bounding_box.size == (10, 10, 20)
                and r.orientation == EulerAngles(0, 0, 90)
                and r.lock == "FREE"
            )
            or pytest.fail(r)
        ),
    ),
    Case(
        "update_model",
        lambda c: c.update_model(
            "scene-1",
            "m-1",
            ModelUpdate(name="renamed", position=Position(1, 2, 3), units="INCHES"),
        ),
        "POST",
        "/scene/scene-1/models/m-1/",
        {"name": "renamed", "position": {"x": 1, "y": 2, "z": 3}, "units": "INCHES"},
    ),
    Case(
        "delete_model",
        lambda c: c.delete_model("scene-1", "m-1"),
        "DELETE",
        "/scene/scene-1/models/m-1/",
    ),
    Case(
        "duplicate_model",
        lambda c: c.duplicate_model("scene-1", "m-1", 3),
        "POST",
        "/scene/scene-1/models/m-1/duplicate/",
        {"count": 3},
        SCENE,
        _scene_check,
    ),
    Case(
        "replace_model",
        lambda c: c.replace_model("scene-1", "m-1", MODEL, repair_behavior=RepairBehavior.REPAIR),
        "POST",
        "/scene/scene-1/models/m-1/replace/",
        {"file": SERVER_MODEL, "repair_behavior": "REPAIR"},
        {"warnings": ["repaired 2 holes"], "model_properties": MODEL_JSON},
        lambda r: (
            (
                isinstance(r, ReplaceResult)
                and r.model is not None
                and r.model.id == "m-1"
                and r.warnings == ("repaired 2 holes",)
            )
            or pytest.fail(r)
        ),
    ),
    Case(
        "auto_orient_dental",
        lambda c: c.auto_orient(
            "scene-1", AutoOrientOptions(models=["m-1"], mode=WorkspaceMode.DENTAL, tilt=10)
        ),
        "POST",
        "/scene/scene-1/auto-orient/",
        {"models": ["m-1"], "mode": "DENTAL", "tilt": 10},
    ),
    Case(
        "auto_orient_standard",
        lambda c: c.auto_orient("scene-1"),
        "POST",
        "/scene/scene-1/auto-orient/",
        {},
    ),
    Case(
        "auto_support",
        lambda c: c.auto_support(
            "scene-1", AutoSupportOptions(density=1.2, raft_type=RaftType.MINI_RAFT)
        ),
        "POST",
        "/scene/scene-1/auto-support/",
        {"density": 1.2, "raft_type": "MINI_RAFT"},
    ),
    Case(
        "auto_layout",
        lambda c: c.auto_layout(
            "scene-1",
            AutoLayoutOptions(
                models="ALL", model_spacing_mm=2, custom_bounds=CustomBounds(x_min_mm=-50)
            ),
        ),
        "POST",
        "/scene/scene-1/auto-layout/",
        {"models": "ALL", "model_spacing_mm": 2, "custom_bounds": {"x_min_mm": -50}},
        SCENE,
        _scene_check,
    ),
    Case(
        "auto_pack",
        lambda c: c.auto_pack("scene-1", AutoPackOptions(model_spacing_mm=3)),
        "POST",
        "/scene/scene-1/auto-pack/",
        {"model_spacing_mm": 3},
        SCENE,
        _scene_check,
    ),
    Case(
        "pack_and_cage",
        lambda c: c.pack_and_cage(
            PackAndCageOptions(packing_type=PackingType.PACK_HEIGHT, cage_label="LOT 7")
        ),
        "POST",
        "/scene/pack-and-cage/",
        {"models": "ALL", "packing_type": {"packing_type": "PACK_HEIGHT"}, "cage_label": "LOT 7"},
        SCENE,
        _scene_check,
    ),
    Case(
        "hollow",
        lambda c: c.hollow("scene-1", HollowOptions(models=["m-1"], wall_thickness_mm=2)),
        "POST",
        "/scene/scene-1/hollow/",
        {"models": ["m-1"], "wall_thickness_mm": 2},
        {"warnings": ["Failed to hollow model with ID m-2"]},
        lambda r: (
            r == ActionReport(warnings=("Failed to hollow model with ID m-2",)) or pytest.fail(r)
        ),
    ),
    Case(
        "label",
        lambda c: c.label(
            "scene-1",
            LabelOptions("m-1", "A7", Position(0, -5, 10), EulerAngles(90, 0, 0), 4, 0.5),
        ),
        "POST",
        "/scene/scene-1/label/",
        {
            "model_id": "m-1",
            "label": "A7",
            "position": {"x": 0, "y": -5, "z": 10},
            "orientation": {"x": 90, "y": 0, "z": 0},
            "font_size_mm": 4,
            "depth_mm": 0.5,
        },
        {"infos": ["labelled"]},
        lambda r: r.infos == ("labelled",) or pytest.fail(r),
    ),
    Case(
        "add_drain_holes",
        lambda c: c.add_drain_holes(
            "scene-1",
            DrainHoleOptions(
                "m-1",
                [DrainHole(Position(0, 0, 1), EulerAngles(180, 0, 0), 3, "AUTO", True)],
            ),
        ),
        "POST",
        "/scene/scene-1/add-drain-holes/",
        {
            "model_id": "m-1",
            "drain_holes": [
                {
                    "position": {"x": 0, "y": 0, "z": 1},
                    "orientation": {"x": 180, "y": 0, "z": 0},
                    "diameter_mm": 3,
                    "depth_mm": "AUTO",
                    "create_plug": True,
                }
            ],
        },
        {"plugs": ["plug-1"], "warnings": []},
        lambda r: r == DrainHoleResult(plugs=("plug-1",)) or pytest.fail(r),
    ),
    Case(
        "get_print_validation",
        lambda c: c.get_print_validation("scene-1"),
        "GET",
        "/scene/scene-1/print-validation/",
        answer={
            "per_model_results": {
                "m-1": {"cups": 0, "unsupported_minima": 2, "undersupported": True},
                "m-2": {"cups": 1, "unsupported_minima": 0, "undersupported": False},
            }
        },
        check=lambda r: (
            (
                isinstance(r, PrintValidation)
                and r.undersupported_model_ids == ("m-1",)
                and r.models_with_unsupported_minima == ("m-1",)
                and r.per_model_results["m-2"].cups == 1
            )
            or pytest.fail(r)
        ),
    ),
    Case(
        "estimate_print_time",
        lambda c: c.estimate_print_time("scene-1"),
        "POST",
        "/scene/scene-1/estimate-print-time/",
        answer={"total_print_time_s": 3600, "preprint_time_s": 300, "printing_time_s": 3300},
        check=lambda r: r == PrintTimeEstimate(3600, 300, 3300) or pytest.fail(r),
    ),
    Case(
        "get_interferences",
        lambda c: c.get_interferences("scene-1", collision_offset_mm=0.5),
        "POST",
        "/scene/scene-1/interferences/",
        {"collision_offset_mm": 0.5},
        [["m-1", "m-2"]],
        lambda r: (isinstance(r, Interferences) and list(r) == [("m-1", "m-2")]) or pytest.fail(r),
    ),
    Case(
        "print_scene",
        lambda c: c.print_scene(
            "scene-1", PrintOptions("Form4-Happy", "batch 12", print_now=False)
        ),
        "POST",
        "/scene/scene-1/print/",
        {"printer": "Form4-Happy", "job_name": "batch 12", "print_now": False},
        {"job_id": "job-9"},
        lambda r: r == PrintResult("job-9") or pytest.fail(r),
    ),
    Case(
        "get_devices",
        lambda c: c.get_devices(can_print=True),
        "GET",
        "/devices/",
        answer={"count": 1, "devices": [DEVICE_JSON]},
        check=lambda r: (
            (len(r) == 1 and r[0].ready_to_print_now and r[0].tank_material_code == "FLGPBK05")
            or pytest.fail(r)
        ),
        params={"can_print": "true"},
    ),
    Case(
        "get_device",
        lambda c: c.get_device("Form4-Happy"),
        "GET",
        "/devices/Form4-Happy/",
        answer=DEVICE_JSON,
        check=lambda r: (isinstance(r, Device) and r.ip_address == "10.0.0.7") or pytest.fail(r),
    ),
    Case(
        "discover_devices",
        lambda c: c.discover_devices(timeout_seconds=5, ip_address="10.0.0.7"),
        "POST",
        "/discover-devices/",
        {"timeout_seconds": 5, "ip_address": "10.0.0.7"},
        {"count": 1, "devices": [DEVICE_JSON]},
        lambda r: [d.id for d in r] == ["Form4-Happy"] or pytest.fail(r),
    ),
    Case(
        "list_operations",
        lambda c: c.list_operations(),
        "GET",
        "/operations/",
        answer={
            "count": 1,
            "operations": [{"id": "op-1", "status": "IN_PROGRESS", "progress": 0.5}],
        },
        check=lambda r: (
            r == (Operation("op-1", OperationStatus.IN_PROGRESS, 0.5),) or pytest.fail(r)
        ),
    ),
    Case(
        "get_operation",
        lambda c: c.get_operation("op-1"),
        "GET",
        "/operations/op-1/",
        answer={"id": "op-1", "status": "SUCCEEDED", "progress": 1.0, "result": {"job_id": "j"}},
        check=lambda r: (r.done and r.result == {"job_id": "j"}) or pytest.fail(r),
    ),
]

#: Operations the contract lets run with ``?async=true``.
LONG_OPERATIONS = {
    "load_form",
    "save_form",
    "save_screenshot",
    "scan_to_model",
    "auto_orient_dental",
    "auto_orient_standard",
    "auto_support",
    "auto_layout",
    "auto_pack",
    "hollow",
    "label",
    "add_drain_holes",
    "get_print_validation",
    "estimate_print_time",
    "print_scene",
    "discover_devices",
}
