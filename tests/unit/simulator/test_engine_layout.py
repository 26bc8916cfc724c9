"""SimEngine: auto-orient, auto-support, auto-layout, auto-pack, pack-and-cage, interferences."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
FUSE = {"machine_type": "FS30-1-0", "material_code": "FLP12G01", "layer_thickness_mm": 0.11}
FORM4_PLATFORM = (200.0, 125.0)
FUSE_VOLUME = (165.0, 165.0, 300.0)


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


def box_file(folder: Path, name: str, size: tuple[float, float, float]) -> Path:
    path = folder / name
    write_stl(path, box_triangles((0, 0, 0), size))
    return path


def new_scene(engine: SimEngine, settings: dict[str, Any]) -> dict[str, str]:
    return {"scene_id": engine.call("create_scene", {}, settings)["id"]}


def add(engine: SimEngine, scene: dict[str, str], path: Path, count: int = 1) -> list[str]:
    return [engine.call("import_model", scene, {"file": str(path)})["id"] for _ in range(count)]


def error_of(engine: SimEngine, op: str, params: dict[str, str], body: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value


def boxes(scene: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for model in scene["models"]:
        low, high = model["bounding_box"]["min_corner"], model["bounding_box"]["max_corner"]
        out.append((np.array([low[k] for k in "xyz"]), np.array([high[k] for k in "xyz"])))
    return out


def min_gap(scene: dict[str, Any]) -> float:
    """Smallest distance between two models' boxes along the axis where they are apart."""
    gaps = []
    for (alo, ahi), (blo, bhi) in itertools.combinations(boxes(scene), 2):
        separation = np.maximum(blo - ahi, alo - bhi)
        gaps.append(float(separation.max()))
    return min(gaps)


class TestAutoOrient:
    """Standard orient puts the largest flat face down; DENTAL aligns and tilts the arch."""

    def test_a_standing_slab_is_laid_on_its_largest_face(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        (model_id,) = add(engine, scene, box_file(tmp_path, "slab.stl", (60, 10, 30)))
        assert engine.call("auto_orient", scene, {"models": "ALL"}) == {}
        model = engine.call("get_model", {**scene, "id": model_id}, None)
        low, high = model["bounding_box"]["min_corner"], model["bounding_box"]["max_corner"]
        assert high["z"] - low["z"] == pytest.approx(10)
        assert low["z"] == pytest.approx(0)

    def test_locked_models_keep_their_orientation(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = new_scene(engine, FORM4)
        path = box_file(tmp_path, "slab.stl", (60, 10, 30))
        model = engine.call("import_model", scene, {"file": str(path), "lock": "FULLY_LOCKED"})
        engine.call("auto_orient", scene, {})
        again = engine.call("get_model", {**scene, "id": model["id"]}, None)
        assert again["orientation"] == model["orientation"]

    def test_dental_mode_turns_the_long_side_along_x_and_tilts(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        (model_id,) = add(engine, scene, box_file(tmp_path, "arch.stl", (10, 50, 4)))
        engine.call("auto_orient", scene, {"models": [model_id], "mode": "DENTAL"})
        flat = engine.call("get_model", {**scene, "id": model_id}, None)
        low, high = flat["bounding_box"]["min_corner"], flat["bounding_box"]["max_corner"]
        assert high["x"] - low["x"] == pytest.approx(50, abs=1e-3)
        engine.call("auto_orient", scene, {"models": [model_id], "mode": "DENTAL", "tilt": 20})
        tilted = engine.call("get_model", {**scene, "id": model_id}, None)
        height = (
            tilted["bounding_box"]["max_corner"]["z"] - tilted["bounding_box"]["min_corner"]["z"]
        )
        # A 10 mm deep, 4 mm thick base tilted 20 degrees about x stands this tall.
        assert height == pytest.approx(10 * np.sin(np.radians(20)) + 4 * np.cos(np.radians(20)))

    @pytest.mark.parametrize(
        "body",
        [
            {"tilt": 10},
            {"mode": "STANDARD"},
            {"mode": "DENTAL", "tilt": 1.5},
            {"models": "SOME"},
            {"models": "ALL", "speed": 2},
        ],
    )
    def test_bodies_outside_the_two_forms_are_invalid(
        self, engine: SimEngine, body: dict[str, Any]
    ) -> None:
        scene = new_scene(engine, FORM4)
        assert error_of(engine, "auto_orient", scene, body).code == "INVALID_BODY"

    def test_an_unknown_model_in_the_selection_is_not_found(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FORM4)
        assert error_of(engine, "auto_orient", scene, {"models": ["nope"]}).status == 400


class TestAutoSupport:
    """Supports lift the model by raft plus height above raft; SLS scenes have none."""

    def test_supported_models_are_lifted_and_flagged(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        (model_id,) = add(engine, scene, box_file(tmp_path, "cube.stl", (20, 20, 20)))
        engine.call("auto_support", scene, {"raft_thickness_mm": 1.5, "height_above_raft_mm": 4})
        model = engine.call("get_model", {**scene, "id": model_id}, None)
        assert model["has_supports"] is True
        assert model["bounding_box"]["min_corner"]["z"] == pytest.approx(5.5)

    def test_negative_options_are_invalid(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FORM4)
        assert error_of(engine, "auto_support", scene, {"density": -1}).code == "INVALID_BODY"

    def test_sls_scenes_refuse_supports(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FUSE)
        assert error_of(engine, "auto_support", scene, {}).code == "WRONG_TECHNOLOGY"


class TestAutoLayout:
    """Layout packs footprints on the platform with the spacing asked, or changes nothing."""

    def test_models_are_spread_apart_and_inside_the_platform(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        add(engine, scene, box_file(tmp_path, "cube.stl", (20, 20, 20)), count=6)
        result = engine.call("auto_layout", scene, {"models": "ALL", "model_spacing_mm": 3})
        assert all(m["in_bounds"] for m in result["models"])
        assert min_gap(result) >= 3 - 1e-6
        assert engine.call("get_scene_interferences", scene, None) == []

    def test_too_many_models_do_not_fit_and_nothing_moves(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        add(engine, scene, box_file(tmp_path, "big.stl", (90, 60, 10)), count=5)
        before = engine.call("get_scene", scene, None)
        error = error_of(engine, "auto_layout", scene, {"models": "ALL"})
        assert (error.status, error.code) == (400, "MODELS_DO_NOT_FIT")
        assert engine.call("get_scene", scene, None) == before

    def test_custom_bounds_confine_the_layout(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = new_scene(engine, FORM4)
        add(engine, scene, box_file(tmp_path, "cube.stl", (10, 10, 10)), count=4)
        bounds = {"x_min_mm": 0, "x_max_mm": 60, "y_min_mm": 0, "y_max_mm": 40}
        result = engine.call("auto_layout", scene, {"custom_bounds": bounds})
        for low, high in boxes(result):
            assert low[0] >= -1e-6 and high[0] <= 60 + 1e-6
            assert low[1] >= -1e-6 and high[1] <= 40 + 1e-6

    def test_lock_rotation_keeps_long_parts_unturned(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        add(engine, scene, box_file(tmp_path, "bar.stl", (100, 10, 10)), count=3)
        result = engine.call("auto_layout", scene, {"lock_rotation": True})
        assert all(m["orientation"]["z"] == 0 for m in result["models"])

    def test_fully_locked_models_stay_where_they_are(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        path = box_file(tmp_path, "cube.stl", (10, 10, 10))
        pinned = engine.call(
            "import_model",
            scene,
            {"file": str(path), "lock": "FULLY_LOCKED", "position": {"x": 50, "y": 20, "z": 0}},
        )
        add(engine, scene, path, count=2)
        result = engine.call("auto_layout", scene, {})
        after = next(m for m in result["models"] if m["id"] == pinned["id"])
        assert after["position"] == pinned["position"]

    def test_supported_models_keep_room_for_their_rafts(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        add(engine, scene, box_file(tmp_path, "cube.stl", (20, 20, 20)), count=3)
        engine.call("auto_support", scene, {})
        result = engine.call("auto_layout", scene, {"model_spacing_mm": 1})
        assert min_gap(result) >= 1 + 2 * 2.0 - 1e-6  # spacing plus a raft border each side

    def test_empty_custom_bounds_are_invalid(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FORM4)
        body = {"custom_bounds": {"x_min_mm": 10, "x_max_mm": 5}}
        assert error_of(engine, "auto_layout", scene, body).code == "INVALID_BODY"

    def test_sls_scenes_use_auto_pack_instead(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FUSE)
        error = error_of(engine, "auto_layout", scene, {})
        assert error.code == "WRONG_TECHNOLOGY"
        assert "auto-pack" in error.error_message


class TestAutoPack:
    """SLS packing stacks footprint layers in the build volume without overlaps."""

    def test_models_fill_layers_without_overlapping(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FUSE)
        add(engine, scene, box_file(tmp_path, "block.stl", (50, 50, 40)), count=12)
        result = engine.call("auto_pack", scene, {"model_spacing_mm": 2})
        assert all(m["in_bounds"] for m in result["models"])
        assert min_gap(result) >= 2 - 1e-6
        floors = sorted({round(m["position"]["z"], 6) for m in result["models"]})
        assert floors == pytest.approx([0.0, 42.0])  # 9 per layer on 165 x 165, then 3 more
        assert result["material_usage"]["total_powder_ml"] == pytest.approx(
            FUSE_VOLUME[0] * FUSE_VOLUME[1] * 82 / 1000
        )

    def test_more_than_the_volume_holds_do_not_fit_and_nothing_moves(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FUSE)
        add(engine, scene, box_file(tmp_path, "tall.stl", (80, 80, 140)), count=9)
        before = engine.call("get_scene", scene, None)
        assert error_of(engine, "auto_pack", scene, {}).code == "MODELS_DO_NOT_FIT"
        assert engine.call("get_scene", scene, None) == before

    def test_sla_scenes_use_auto_layout_instead(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FORM4)
        assert error_of(engine, "auto_pack", scene, {}).code == "WRONG_TECHNOLOGY"


class TestPackAndCage:
    """pack-and-cage packs the selection and adds a cage model around it."""

    def test_a_cage_encloses_the_packed_models(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = new_scene(engine, FUSE)
        ids = add(engine, scene, box_file(tmp_path, "block.stl", (30, 30, 30)), count=4)
        result = engine.call(
            "pack_and_cage",
            {},
            {
                "models": "ALL",
                "cage_label": "lot 7",
                "packing_type": {"packing_type": "PACK_HEIGHT"},
            },
        )
        cages = [m for m in result["models"] if m["id"] not in ids]
        assert len(cages) == 1
        (cage,) = cages
        assert cage["name"] == "Cage lot 7"
        assert cage["in_bounds"] and cage["lock"] == "FULLY_LOCKED"
        cage_low = np.array([cage["bounding_box"]["min_corner"][k] for k in "xyz"])
        cage_high = np.array([cage["bounding_box"]["max_corner"][k] for k in "xyz"])
        for model in result["models"]:
            if model["id"] in ids:
                low = np.array([model["bounding_box"]["min_corner"][k] for k in "xyz"])
                high = np.array([model["bounding_box"]["max_corner"][k] for k in "xyz"])
                assert np.all(low >= cage_low) and np.all(high <= cage_high)

    def test_repeating_pack_and_cage_keeps_one_cage(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FUSE)
        add(engine, scene, box_file(tmp_path, "block.stl", (30, 30, 30)), count=2)
        engine.call("pack_and_cage", scene, {"models": "ALL"})
        result = engine.call("pack_and_cage", scene, {"models": "ALL"})
        assert sum(m["name"].startswith("Cage") for m in result["models"]) == 1

    def test_auto_pack_afterwards_removes_the_cage(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FUSE)
        ids = add(engine, scene, box_file(tmp_path, "block.stl", (30, 30, 30)), count=2)
        engine.call("pack_and_cage", scene, {"models": "ALL"})
        result = engine.call("auto_pack", scene, {})
        assert sorted(m["id"] for m in result["models"]) == sorted(ids)

    def test_models_are_required(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FUSE)
        assert error_of(engine, "pack_and_cage", scene, {}).code == "INVALID_BODY"

    def test_bars_thinner_than_1_mm_are_invalid(self, engine: SimEngine) -> None:
        scene = new_scene(engine, FUSE)
        body = {"models": "ALL", "bar_thickness_mm": 0.5}
        assert error_of(engine, "pack_and_cage", scene, body).code == "INVALID_BODY"


class TestInterferences:
    """Models whose bounding boxes come closer than the offset are reported in pairs."""

    def test_overlapping_models_are_reported_as_a_pair(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = new_scene(engine, FORM4)
        ids = add(engine, scene, box_file(tmp_path, "cube.stl", (10, 10, 10)), count=2)
        assert engine.call("get_scene_interferences", scene, None) == [ids]

    def test_the_collision_offset_widens_the_check(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = new_scene(engine, FORM4)
        path = box_file(tmp_path, "cube.stl", (10, 10, 10))
        first = engine.call("import_model", scene, {"file": str(path)})["id"]
        second = engine.call(
            "import_model", scene, {"file": str(path), "position": {"x": 13, "y": 0, "z": 0}}
        )["id"]
        assert engine.call("get_scene_interferences", scene, {"collision_offset_mm": 2}) == []
        assert engine.call("get_scene_interferences", scene, {"collision_offset_mm": 4}) == [
            [first, second]
        ]

    @pytest.mark.parametrize(
        ("raft", "gap_mm", "interfering"),
        [("FULL_RAFT", 6.0, False), ("FULL_RAFT", 4.0, True), ("MINI_RAFT", 4.0, False)],
    )
    def test_a_raft_reaches_past_its_model_as_the_layout_keeps_it(
        self, engine: SimEngine, tmp_path: Path, raft: str, gap_mm: float, interfering: bool
    ) -> None:
        """Two supported cubes ``gap_mm`` apart, checked with a 1 mm offset: full rafts (2 mm
        rims each) need more than 5 mm, mini rafts (1 mm) more than 3 mm."""
        scene = new_scene(engine, FORM4)
        path = box_file(tmp_path, "cube.stl", (10, 10, 10))
        first = engine.call("import_model", scene, {"file": str(path)})["id"]
        second = engine.call(
            "import_model", scene,
            {"file": str(path), "position": {"x": 10 + gap_mm, "y": 0, "z": 0}},
        )["id"]
        engine.call("auto_support", scene, {"raft_type": raft})
        found = engine.call("get_scene_interferences", scene, {"collision_offset_mm": 1})
        assert found == ([[first, second]] if interfering else [])
