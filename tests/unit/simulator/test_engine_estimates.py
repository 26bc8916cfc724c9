"""SimEngine estimates: layer count, print time, material usage, print validation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator import estimates
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
FUSE = {"machine_type": "FS30-1-0", "material_code": "FLP12G01", "layer_thickness_mm": 0.11}


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


def scene_with(
    engine: SimEngine, tmp_path: Path, settings: dict[str, Any], size: tuple[float, float, float]
) -> dict[str, str]:
    scene = {"scene_id": engine.call("create_scene", {}, settings)["id"]}
    path = tmp_path / f"box-{size[0]}-{size[1]}-{size[2]}.stl"
    write_stl(path, box_triangles((0, 0, 0), size))
    engine.call("import_model", scene, {"file": str(path)})
    return scene


class TestLayers:
    """Layer count is the build height over the layer thickness, rounded up."""

    def test_layers_follow_height_and_thickness(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (10, 10, 12.34))
        assert engine.call("get_scene", scene, None)["layer_count"] == 124

    def test_adaptive_layers_use_the_average_thickness(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        settings = {**FORM4, "layer_thickness_mm": "ADAPTIVE"}
        scene = scene_with(engine, tmp_path, settings, (10, 10, 10))
        expected = math.ceil(10 / estimates.ADAPTIVE_AVERAGE_LAYER_MM - 1e-9)
        assert engine.call("get_scene", scene, None)["layer_count"] == expected

    def test_supports_add_their_height(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (10, 10, 10))
        engine.call("auto_support", scene, {})
        lift = estimates.DEFAULT_RAFT_THICKNESS_MM + estimates.DEFAULT_HEIGHT_ABOVE_RAFT_MM
        assert engine.call("get_scene", scene, None)["layer_count"] == round((10 + lift) / 0.1)


class TestPrintTime:
    """SLA time is preprint plus a constant per layer; SLS adds cooling that grows with height."""

    def test_sla_time_is_preprint_plus_layers(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (10, 10, 20))
        answer = engine.call("estimate_print_time", scene, None)
        assert set(answer) == {"total_print_time_s", "preprint_time_s", "printing_time_s"}
        assert answer["printing_time_s"] == pytest.approx(200 * estimates.SLA_SECONDS_PER_LAYER)
        assert answer["total_print_time_s"] == pytest.approx(
            answer["preprint_time_s"] + answer["printing_time_s"]
        )

    def test_a_taller_build_takes_longer(self, engine: SimEngine, tmp_path: Path) -> None:
        short = scene_with(engine, tmp_path, FORM4, (10, 10, 10))
        tall = scene_with(engine, tmp_path, FORM4, (10, 10, 40))
        short_s = engine.call("estimate_print_time", short, None)["total_print_time_s"]
        tall_s = engine.call("estimate_print_time", tall, None)["total_print_time_s"]
        assert tall_s > short_s

    def test_thinner_layers_take_longer(self, engine: SimEngine, tmp_path: Path) -> None:
        coarse = scene_with(engine, tmp_path, FORM4, (10, 10, 10))
        fine = scene_with(engine, tmp_path, {**FORM4, "layer_thickness_mm": 0.05}, (10, 10, 10))
        assert (
            engine.call("estimate_print_time", fine, None)["printing_time_s"]
            == 2 * engine.call("estimate_print_time", coarse, None)["printing_time_s"]
        )

    def test_sls_time_has_cooling_that_grows_with_height(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        low = engine.call(
            "estimate_print_time", scene_with(engine, tmp_path, FUSE, (10, 10, 10)), None
        )
        high = engine.call(
            "estimate_print_time", scene_with(engine, tmp_path, FUSE, (10, 10, 50)), None
        )
        assert high["cool_to_removal_time_s"] > low["cool_to_removal_time_s"]
        assert (
            high["additional_cool_to_room_temp_time_s"] > low["additional_cool_to_room_temp_time_s"]
        )

    def test_an_empty_scene_takes_no_time(self, engine: SimEngine) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        assert engine.call("estimate_print_time", scene, None) == {
            "total_print_time_s": 0.0, "preprint_time_s": 0.0, "printing_time_s": 0.0
        }

    def test_an_empty_sls_scene_takes_no_time_nor_cooling(self, engine: SimEngine) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FUSE)["id"]}
        assert engine.call("estimate_print_time", scene, None) == {
            "total_print_time_s": 0.0, "preprint_time_s": 0.0, "printing_time_s": 0.0,
            "cool_to_removal_time_s": 0.0, "additional_cool_to_room_temp_time_s": 0.0,
        }

    def test_an_sls_build_is_priced_by_its_rule(self, engine: SimEngine, tmp_path: Path) -> None:
        # 20 mm at 0.11 mm: 182 layers of 9 s after 2700 s; cooling 3600 + 40/mm and
        # 1800 + 20/mm (docs/simulator-engine.md, "Estimates").
        scene = scene_with(engine, tmp_path, FUSE, (10, 10, 20))
        assert engine.call("estimate_print_time", scene, None) == pytest.approx({
            "total_print_time_s": 2700.0 + 182 * 9.0, "preprint_time_s": 2700.0,
            "printing_time_s": 182 * 9.0, "cool_to_removal_time_s": 3600.0 + 20 * 40.0,
            "additional_cool_to_room_temp_time_s": 1800.0 + 20 * 20.0,
        })


class TestMaterialUsage:
    """SLA usage is model volume plus supports; SLS usage is powder for the build height."""

    def test_sla_volume_is_the_model_volume(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (20, 20, 20))
        usage = engine.call("get_scene", scene, None)["material_usage"]
        assert usage == {
            "volume_ml": pytest.approx(8.0),
            "unsupported_volume_ml": pytest.approx(8.0),
        }

    def test_supports_add_volume(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (20, 20, 20))
        engine.call("auto_support", scene, {})
        usage = engine.call("get_scene", scene, None)["material_usage"]
        assert usage["unsupported_volume_ml"] == pytest.approx(8.0)
        assert usage["volume_ml"] > usage["unsupported_volume_ml"]

    def test_denser_supports_use_more_material(self, engine: SimEngine, tmp_path: Path) -> None:
        sparse = scene_with(engine, tmp_path, FORM4, (20, 20, 20))
        dense = scene_with(engine, tmp_path, FORM4, (20, 20, 20))
        engine.call("auto_support", sparse, {"density": 0.5})
        engine.call("auto_support", dense, {"density": 2.0})
        assert (
            engine.call("get_scene", dense, None)["material_usage"]["volume_ml"]
            > engine.call("get_scene", sparse, None)["material_usage"]["volume_ml"]
        )

    def test_sls_usage_has_the_powder_shape(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FUSE, (20, 20, 20))
        usage = engine.call("get_scene", scene, None)["material_usage"]
        powder_ml = 165 * 165 * 20 / 1000
        assert usage["total_powder_ml"] == pytest.approx(powder_ml)
        # The bed: the part's solid mass plus the loose powder around it.
        assert usage["total_powder_kg"] == pytest.approx(
            8.0 * 1.01 / 1000 + (powder_ml - 8.0) * estimates.SLS_POWDER_BULK_DENSITY_G_ML / 1000
        )
        assert usage["total_sintered_powder_ml"] == pytest.approx(8.0)
        assert usage["total_sintered_powder_kg"] == pytest.approx(8.0 * 1.01 / 1000)
        assert usage["mass_packing_density"] == pytest.approx(
            usage["total_sintered_powder_kg"] / usage["total_powder_kg"]
        )

    def test_sls_numbers_are_physically_consistent(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        # A part filling most of its bed: the density stays below 1, sintered >= parts.
        scene = scene_with(engine, tmp_path, FUSE, (160, 160, 20))
        usage = engine.call("get_scene", scene, None)["material_usage"]
        assert usage["total_sintered_powder_ml"] >= 160 * 160 * 20 / 1000 - 1e-6
        assert usage["total_powder_ml"] >= usage["total_sintered_powder_ml"]
        assert 0 < usage["mass_packing_density"] <= 1
        assert usage["total_powder_kg"] >= usage["total_sintered_powder_kg"]


class TestPrintValidation:
    """Unsupported SLA models report minima and overhangs; supported ones and SLS none."""

    def test_a_box_on_the_platform_needs_nothing(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (10, 10, 10))
        (result,) = engine.call("get_print_validation", scene, None)["per_model_results"].values()
        assert result == {
            "cups": 0,
            "unsupported_minima": 0,
            "undersupported": False,
            "has_seamline": False,
        }

    def test_a_floating_box_has_an_unsupported_minimum(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = scene_with(engine, tmp_path, FORM4, (10, 10, 10))
        model_id = engine.call("get_scene", scene, None)["models"][0]["id"]
        engine.call(
            "update_model", {**scene, "id": model_id}, {"position": {"x": 0, "y": 0, "z": 5}}
        )
        result = engine.call("get_print_validation", scene, None)["per_model_results"][model_id]
        assert result["unsupported_minima"] == 1  # the bottom face is one plateau
        assert result["undersupported"] is True

    def test_an_overhang_is_undersupported_until_supported(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        path = tmp_path / "tee.stl"
        stem = box_triangles((4, 4, 0), (6, 6, 10))
        top = box_triangles((0, 0, 10), (10, 10, 12))
        write_stl(path, np.concatenate([stem, top]))
        model_id = engine.call(
            "import_model", scene, {"file": str(path), "repair_behavior": "IGNORE"}
        )["id"]
        before = engine.call("get_print_validation", scene, None)["per_model_results"][model_id]
        assert before["undersupported"] is True
        engine.call("auto_support", scene, {})
        after = engine.call("get_print_validation", scene, None)["per_model_results"][model_id]
        assert after["undersupported"] is False

    def test_sls_models_never_need_supports(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = scene_with(engine, tmp_path, FUSE, (10, 10, 10))
        model_id = engine.call("get_scene", scene, None)["models"][0]["id"]
        engine.call(
            "update_model", {**scene, "id": model_id}, {"position": {"x": 0, "y": 0, "z": 9}}
        )
        result = engine.call("get_print_validation", scene, None)["per_model_results"][model_id]
        assert result["unsupported_minima"] == 0 and result["undersupported"] is False


class TestMinimaRule:
    """unsupported_minima counts plateaus and points with no lower neighbour."""

    def test_two_separate_boxes_in_the_air_are_two_minima(self) -> None:
        from preform_pipeline.geometry import Mesh

        triangles = np.concatenate(
            [box_triangles((0, 0, 2), (1, 1, 3)), box_triangles((5, 0, 4), (6, 1, 5))]
        ).astype(np.float32)
        assert estimates.unsupported_minima(Mesh(triangles, "two")) == 2

    def test_a_box_on_the_platform_has_none(self) -> None:
        from preform_pipeline.geometry import Mesh

        mesh = Mesh(box_triangles((0, 0, 0), (1, 1, 1)).astype(np.float32), "one")
        assert estimates.unsupported_minima(mesh) == 0
