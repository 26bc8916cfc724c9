"""SimEngine model edits: hollowing, drain holes, labels and scan-to-model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.screenshot import item_for

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
FUSE = {"machine_type": "FS30-1-0", "material_code": "FLP12G01", "layer_thickness_mm": 0.11}
HOLE = {
    "orientation": {"x": 180, "y": 0, "z": 0},
    "position": {"x": 0, "y": 0, "z": 0},
    "diameter_mm": 3,
    "depth_mm": "AUTO",
    "create_plug": False,
}
LABEL = {
    "orientation": {"x": 90, "y": 0, "z": 0},
    "position": {"x": 0, "y": -15, "z": 10},
    "label": "A17",
    "font_size_mm": 5,
    "depth_mm": 1,
}


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


def error_of(engine: SimEngine, op: str, params: dict[str, str], body: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value


@pytest.fixture
def block(engine: SimEngine, tmp_path: Path) -> dict[str, str]:
    """A 30 x 30 x 20 mm block in a Form 4 scene: ``scene_id`` and model ``id``."""
    scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
    path = tmp_path / "block.stl"
    write_stl(path, box_triangles((0, 0, 0), (30, 30, 20)))
    model = engine.call("import_model", scene, {"file": str(path)})
    return {**scene, "id": model["id"]}


def volume_ml(engine: SimEngine, block: dict[str, str]) -> float:
    scene = engine.call("get_scene", {"scene_id": block["scene_id"]}, None)
    return float(scene["material_usage"]["unsupported_volume_ml"])


class TestHollow:
    """Hollowing turns the volume into a shell; parts too thin for the walls stay solid."""

    def test_hollowing_leaves_a_shell(self, engine: SimEngine, block: dict[str, str]) -> None:
        scene = {"scene_id": block["scene_id"]}
        answer = engine.call("hollow_model", scene, {"wall_thickness_mm": 2})
        assert answer == {"warnings": [], "infos": []}
        area = 2 * (30 * 30) + 4 * (30 * 20)
        assert volume_ml(engine, block) == pytest.approx(area * 2 / 1000)

    def test_a_part_too_thin_is_named_in_a_warning(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        answer = engine.call(
            "hollow_model", {"scene_id": block["scene_id"]}, {"wall_thickness_mm": 10}
        )
        assert answer["warnings"] and block["id"] in answer["warnings"][0]
        assert volume_ml(engine, block) == pytest.approx(18.0)

    @pytest.mark.parametrize(
        "body", [{"wall_thickness_mm": 0.05}, {"accuracy": 2}, {"feature_size_mm": 0.01}]
    )
    def test_out_of_range_options_are_invalid(
        self, engine: SimEngine, block: dict[str, str], body: dict[str, Any]
    ) -> None:
        assert error_of(engine, "hollow_model", {"scene_id": block["scene_id"]}, body).code == (
            "INVALID_BODY"
        )

    def test_sls_scenes_are_not_hollowed(self, engine: SimEngine) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FUSE)["id"]}
        assert error_of(engine, "hollow_model", scene, {}).code == "WRONG_TECHNOLOGY"


class TestDrainHoles:
    """Drain holes must sit on the model and be narrower than it; plugs become models."""

    def test_holes_are_recorded_and_plugs_added(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        scene = {"scene_id": block["scene_id"]}
        engine.call("hollow_model", scene, {})
        body = {"model_id": block["id"], "drain_holes": [HOLE, {**HOLE, "create_plug": True}]}
        answer = engine.call("add_drain_holes", scene, body)
        assert len(answer["plugs"]) == 1
        assert answer["infos"] == []
        plug = engine.call("get_model", {**scene, "id": answer["plugs"][0]}, None)
        assert plug["in_bounds"] is True
        with engine.scenes.use(block["scene_id"]) as state:
            assert len(state.models[block["id"]].drain_holes) == 2

    def test_a_hole_away_from_the_model_fails_and_nothing_is_added(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        far = {**HOLE, "position": {"x": 80, "y": 0, "z": 0}}
        body = {"model_id": block["id"], "drain_holes": [HOLE, far]}
        error = error_of(engine, "add_drain_holes", {"scene_id": block["scene_id"]}, body)
        assert (error.status, error.code) == (400, "DRAIN_HOLE_FAILED")
        with engine.scenes.use(block["scene_id"]) as state:
            assert state.models[block["id"]].drain_holes == []

    def test_a_search_distance_lets_a_hole_snap_from_further_away(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        near = {**HOLE, "position": {"x": 0, "y": 0, "z": -4}, "max_search_distance": 5}
        body = {"model_id": block["id"], "drain_holes": [near]}
        assert engine.call("add_drain_holes", {"scene_id": block["scene_id"]}, body)["plugs"] == []

    def test_a_hole_wider_than_the_model_fails(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        body = {"model_id": block["id"], "drain_holes": [{**HOLE, "diameter_mm": 40}]}
        assert error_of(engine, "add_drain_holes", {"scene_id": block["scene_id"]}, body).code == (
            "DRAIN_HOLE_FAILED"
        )

    @pytest.mark.parametrize(
        "hole",
        [
            {**HOLE, "diameter_mm": 0},
            {**HOLE, "depth_mm": "DEEP"},
            {**HOLE, "depth_mm": 2, "max_search_distance": 3},
            {k: v for k, v in HOLE.items() if k != "create_plug"},
            {k: v for k, v in HOLE.items() if k != "position"},
        ],
    )
    def test_malformed_holes_are_invalid(
        self, engine: SimEngine, block: dict[str, str], hole: dict[str, Any]
    ) -> None:
        body = {"model_id": block["id"], "drain_holes": [hole]}
        assert error_of(engine, "add_drain_holes", {"scene_id": block["scene_id"]}, body).code == (
            "INVALID_BODY"
        )

    def test_an_empty_hole_list_is_invalid(self, engine: SimEngine, block: dict[str, str]) -> None:
        body = {"model_id": block["id"], "drain_holes": []}
        assert error_of(engine, "add_drain_holes", {"scene_id": block["scene_id"]}, body).code == (
            "INVALID_BODY"
        )

    def test_an_unknown_model_is_not_found(self, engine: SimEngine, block: dict[str, str]) -> None:
        body = {"model_id": "nope", "drain_holes": [HOLE]}
        assert (
            error_of(engine, "add_drain_holes", {"scene_id": block["scene_id"]}, body).status == 400
        )


class TestLabels:
    """Labels are recorded within the spec's ranges, on the model, and change its volume."""

    def test_an_embossed_label_adds_material(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        before = volume_ml(engine, block)
        answer = engine.call(
            "label_part", {"scene_id": block["scene_id"]}, {**LABEL, "model_id": block["id"]}
        )
        assert answer == {"warnings": [], "infos": []}
        assert volume_ml(engine, block) == pytest.approx(before + 3 * 0.6 * 25 * 1 / 1000)

    def test_an_engraved_label_removes_material(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        before = volume_ml(engine, block)
        body = {**LABEL, "model_id": block["id"], "application_mode": "ENGRAVE"}
        engine.call("label_part", {"scene_id": block["scene_id"]}, body)
        assert volume_ml(engine, block) < before

    @pytest.mark.parametrize(
        "change",
        [
            {"font_size_mm": 1},
            {"font_size_mm": 21},
            {"depth_mm": 0.1},
            {"depth_mm": 11},
            {"application_mode": "PRINT"},
            {"label": ""},
            {"orientation": {"x": 1}},
        ],
    )
    def test_values_outside_the_contract_are_invalid(
        self, engine: SimEngine, block: dict[str, str], change: dict[str, Any]
    ) -> None:
        body = {**LABEL, "model_id": block["id"], **change}
        assert error_of(engine, "label_part", {"scene_id": block["scene_id"]}, body).code == (
            "INVALID_BODY"
        )

    def test_a_label_off_the_model_fails(self, engine: SimEngine, block: dict[str, str]) -> None:
        body = {**LABEL, "model_id": block["id"], "position": {"x": 0, "y": -40, "z": 10}}
        error = error_of(engine, "label_part", {"scene_id": block["scene_id"]}, body)
        assert (error.code, error.error_message.startswith("Failed to create label")) == (
            "LABEL_FAILED",
            True,
        )

    def test_a_label_longer_than_the_model_fails(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        body = {**LABEL, "model_id": block["id"], "label": "A" * 20, "font_size_mm": 10}
        assert error_of(engine, "label_part", {"scene_id": block["scene_id"]}, body).code == (
            "LABEL_FAILED"
        )


class TestALabelGoesWithItsModel:
    """A label is part of its model: a later turn (a layout's) takes it along, so the
    screenshot draws it on the model (session 47's trial: a dental arch the layout turned end
    for end showed its engraved case id in the air between its arms)."""

    def test_a_model_turned_half_round_carries_its_label_to_the_far_side(
        self, engine: SimEngine, block: dict[str, str]
    ) -> None:
        scene, model = {"scene_id": block["scene_id"]}, block["id"]
        before = engine.call("get_model", block, None)["bounding_box"]
        low, high = before["min_corner"], before["max_corner"]
        # On the -y face, 10 mm right of its middle.
        spot = {"x": (low["x"] + high["x"]) / 2 + 10, "y": low["y"],
                "z": (low["z"] + high["z"]) / 2}
        engine.call("label_part", scene, {**LABEL, "model_id": model, "position": spot})
        engine.call("update_model", block, {"orientation": {"x": 0, "y": 0, "z": 180}})
        with engine.scenes.use(block["scene_id"]) as state:
            placed = state.models[model]
            (plate,) = item_for(placed, (200.0, 125.0, 210.0)).labels
            now_low, now_high = placed.bounds()
        centre = (now_low + now_high) / 2
        # Half round about z: the -y face is now +y, and "right" is now left.
        assert plate.centre == pytest.approx(
            (centre[0] - 10, now_high[1], centre[2]), abs=1e-6)


def open_scan(path: Path) -> Path:
    """An open dome-shaped surface (a scan has no bottom), 40 x 30 mm, 5 to 13 mm high."""
    xs, ys = np.linspace(-20, 20, 21), np.linspace(-15, 15, 16)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid_z = 5 + 8 * np.exp(-(grid_x**2 + grid_y**2) / 120)
    points = np.stack([grid_x, grid_y, grid_z], axis=-1)
    triangles = []
    for i in range(points.shape[0] - 1):
        for j in range(points.shape[1] - 1):
            a, b, c, d = points[i, j], points[i, j + 1], points[i + 1, j + 1], points[i + 1, j]
            triangles += [[a, b, c], [a, c, d]]
    write_stl(path, np.array(triangles))
    return path


class TestScanToModel:
    """scan-to-model closes an open scan into a solid standing on a flat base."""

    def test_an_open_scan_becomes_a_closed_solid(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {
            "file": str(open_scan(tmp_path / "arch.stl")),
            "units": "MILLIMETERS",
            "cutoff_height_mm": 0.5,
            "extrude_distance_mm": 3,
        }
        answer = engine.call("scan_to_model", scene, body)
        (model,) = answer["models"]
        assert answer["warnings"] == [] and len(answer["infos"]) == 1
        with engine.scenes.use(scene["scene_id"]) as state:
            mesh = state.models[model["id"]].mesh
        assert mesh.is_closed()
        assert mesh.volume() > 0
        assert model["bounding_box"]["min_corner"]["z"] == 0.0
        assert answer["material_usage"]["volume_ml"] == pytest.approx(mesh.volume() / 1000)

    def test_a_longer_extrusion_gives_a_taller_solid(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scan = open_scan(tmp_path / "arch.stl")
        heights = []
        for extrude in (0, 5):
            scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
            body = {"file": str(scan), "cutoff_height_mm": 0.5, "extrude_distance_mm": extrude}
            (model,) = engine.call("scan_to_model", scene, body)["models"]
            box = model["bounding_box"]
            heights.append(box["max_corner"]["z"] - box["min_corner"]["z"])
        assert heights[1] == pytest.approx(heights[0] + 5, abs=1e-3)

    def test_hollowing_options_are_honoured(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {
            "file": str(open_scan(tmp_path / "arch.stl")),
            "cutoff_height_mm": 0.5,
            "extrude_distance_mm": 5,
            "hollow": True,
            "shell_thickness_mm": 1.5,
            "drain_hole_max_count": 2,
        }
        (model,) = engine.call("scan_to_model", scene, body)["models"]
        with engine.scenes.use(scene["scene_id"]) as state:
            stored = state.models[model["id"]]
            assert stored.hollow is not None and stored.hollow["wall_thickness_mm"] == 1.5
            assert len(stored.drain_holes) == 2

    def test_shell_thickness_without_hollow_is_invalid(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {
            "file": str(open_scan(tmp_path / "arch.stl")),
            "cutoff_height_mm": 0.5,
            "shell_thickness_mm": 2,
        }
        assert error_of(engine, "scan_to_model", scene, body).code == "INVALID_BODY"

    def test_a_cutoff_above_the_scan_is_invalid(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {"file": str(open_scan(tmp_path / "arch.stl")), "cutoff_height_mm": 50}
        error = error_of(engine, "scan_to_model", scene, body)
        assert error.code == "INVALID_BODY" and "removes the whole scan" in error.error_message
        assert engine.call("get_scene", scene, None)["models"] == []

    def test_the_cutoff_height_is_required(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {"file": str(open_scan(tmp_path / "arch.stl"))}
        assert error_of(engine, "scan_to_model", scene, body).code == "INVALID_BODY"

    def test_sls_scenes_refuse_scans(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FUSE)["id"]}
        body = {"file": str(open_scan(tmp_path / "arch.stl")), "cutoff_height_mm": 1}
        assert error_of(engine, "scan_to_model", scene, body).code == "WRONG_TECHNOLOGY"
