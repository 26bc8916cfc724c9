"""SimEngine: dispatch, scene creation and settings checks, the default scene, the scene cache."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SIMULATED_API_VERSION, SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


@pytest.fixture
def cube(tmp_path: Path) -> Path:
    path = tmp_path / "cube.stl"
    write_stl(path, box_triangles((0, 0, 0), (20, 20, 20)))
    return path


def error_of(engine: SimEngine, op: str, params: dict[str, str], body: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value


class TestDispatch:
    """Operations are found by snake_case operationId; anything else is a 404."""

    def test_an_unknown_operation_is_not_found(self, engine: SimEngine) -> None:
        error = error_of(engine, "make_coffee", {}, None)
        assert (error.status, error.code) == (404, "NOT_FOUND")

    def test_names_that_are_not_operation_ids_are_not_found(self, engine: SimEngine) -> None:
        assert error_of(engine, "__init__", {}, None).status == 404
        assert error_of(engine, "_handler", {}, None).status == 404

    def test_the_api_version_is_the_contract_version(self, engine: SimEngine) -> None:
        assert engine.call("get_api_version", {}, None) == {"version": SIMULATED_API_VERSION}

    def test_list_materials_is_the_catalogue(self, engine: SimEngine) -> None:
        assert engine.call("list_materials", {}, None) == DEFAULT_CATALOGUE.to_list_materials()

    def test_estimate_work_counts_triangles_of_a_scene(self, engine: SimEngine, cube: Path) -> None:
        scene = engine.call("create_scene", {}, FORM4)
        engine.call("import_model", {"scene_id": scene["id"]}, {"file": str(cube)})
        work = engine.estimate_work("auto_layout", {"scene_id": scene["id"]}, {})
        assert (work.triangles, work.models) == (12, 1)

    def test_estimate_work_sizes_an_import_from_the_file(
        self, engine: SimEngine, cube: Path
    ) -> None:
        assert (
            engine.estimate_work("import_model", {"scene_id": "x"}, {"file": str(cube)}).triangles
            == 12
        )

    def test_estimate_work_ignores_malformed_bodies(self, engine: SimEngine) -> None:
        work = engine.estimate_work("scan_to_model", {}, {"file": 3, "files": 7})
        assert work.triangles == 0


class TestSceneCreation:
    """Scenes are created from catalogue settings or an .fps file; anything else is a 400."""

    def test_a_created_scene_has_a_uuid_and_echoes_its_settings(self, engine: SimEngine) -> None:
        scene = engine.call("create_scene", {}, FORM4)
        assert uuid.UUID(scene["id"])
        assert scene["scene_settings"] == {**FORM4, "print_setting": "DEFAULT"}
        assert scene["models"] == []
        assert scene["layer_count"] == 0
        assert scene["material_usage"] == {"volume_ml": 0.0, "unsupported_volume_ml": 0.0}

    def test_an_unknown_machine_type_lists_the_valid_ones(self, engine: SimEngine) -> None:
        error = error_of(engine, "create_scene", {}, {**FORM4, "machine_type": "FORM-9"})
        assert (error.status, error.code) == (400, "UNKNOWN_MACHINE_TYPE")
        assert "FORM-4L-0" in error.error_message

    def test_an_unknown_material_lists_the_valid_ones(self, engine: SimEngine) -> None:
        error = error_of(engine, "create_scene", {}, {**FORM4, "material_code": "FLNOPE01"})
        assert (error.status, error.code) == (400, "UNKNOWN_MATERIAL")
        assert "FLGPBK05" in error.error_message

    def test_a_material_of_another_machine_is_unknown(self, engine: SimEngine) -> None:
        body = {**FORM4, "material_code": "FLP12G01"}
        assert error_of(engine, "create_scene", {}, body).code == "UNKNOWN_MATERIAL"

    def test_an_unsupported_thickness_lists_the_valid_ones(self, engine: SimEngine) -> None:
        error = error_of(engine, "create_scene", {}, {**FORM4, "layer_thickness_mm": 0.3})
        assert error.code == "UNSUPPORTED_LAYER_THICKNESS"
        assert "0.05" in error.error_message

    def test_adaptive_layers_are_accepted_where_offered(self, engine: SimEngine) -> None:
        scene = engine.call("create_scene", {}, {**FORM4, "layer_thickness_mm": "ADAPTIVE"})
        assert scene["scene_settings"]["layer_thickness_mm"] == "ADAPTIVE"

    def test_a_thickness_sent_as_a_decimal_string_is_that_thickness(
        self, engine: SimEngine
    ) -> None:
        # Formlabs' generated client and its examples send ``"0.1"`` (the oneOf's wrapper).
        body = {**FORM4, "material_code": "FLRG1011", "layer_thickness_mm": "0.1"}
        scene = engine.call("create_scene", {}, body)
        assert scene["scene_settings"]["layer_thickness_mm"] == 0.1
        assert scene["scene_settings"]["material_code"] == "FLRG1011"

    def test_a_decimal_string_is_checked_like_the_number(self, engine: SimEngine) -> None:
        error = error_of(engine, "create_scene", {}, {**FORM4, "layer_thickness_mm": "0.3"})
        assert error.code == "UNSUPPORTED_LAYER_THICKNESS"

    def test_an_unknown_print_setting_is_refused(self, engine: SimEngine) -> None:
        body = {**FORM4, "print_setting": "TURBO"}
        assert error_of(engine, "create_scene", {}, body).code == "UNKNOWN_PRINT_SETTING"

    @pytest.mark.parametrize(
        "body",
        [
            None,
            [],
            "FORM-4-0",
            {"machine_type": "FORM-4-0"},
            {**FORM4, "colour": "red"},
            {**FORM4, "layer_thickness_mm": "thin"},
            {**FORM4, "layer_thickness_mm": "0"},
            {**FORM4, "layer_thickness_mm": "-0.1"},
            {**FORM4, "layer_thickness_mm": "nan"},
            {**FORM4, "layer_thickness_mm": "1e-1"},
            {**FORM4, "layer_thickness_mm": ""},
            {**FORM4, "layer_thickness_mm": -0.1},
            {**FORM4, "machine_type": 4},
        ],
    )
    def test_malformed_bodies_are_invalid(self, engine: SimEngine, body: Any) -> None:
        error = error_of(engine, "create_scene", {}, body)
        assert (error.status, error.code) == (400, "INVALID_BODY")

    def test_a_scene_can_be_created_from_a_saved_fps_file(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        source = engine.call(
            "create_scene", {}, {**FORM4, "material_code": "FLGPBK05", "layer_thickness_mm": 0.05}
        )
        fps = tmp_path / "black.fps"
        engine.call("save_fps_file", {"scene_id": source["id"]}, {"file": str(fps)})
        scene = engine.call("create_scene", {}, {"fps_file": str(fps)})
        # Every .fps is a custom print setting: the scene names the file's setting id.
        setting_id = json.loads(fps.read_text(encoding="utf-8"))["metadata"]["id"]
        assert scene["scene_settings"] == {
            **source["scene_settings"], "custom_print_setting_id": setting_id
        }

    def test_a_missing_fps_file_is_not_found(self, engine: SimEngine, tmp_path: Path) -> None:
        error = error_of(engine, "create_scene", {}, {"fps_file": str(tmp_path / "no.fps")})
        assert error.code == "FILE_NOT_FOUND"

    def test_a_foreign_fps_file_is_invalid(self, engine: SimEngine, tmp_path: Path) -> None:
        fps = tmp_path / "vendor.fps"
        fps.write_text('{"settings": 1}', encoding="utf-8")
        assert error_of(engine, "create_scene", {}, {"fps_file": str(fps)}).code == (
            "INVALID_FPS_FILE"
        )

    def test_an_fps_file_with_unknown_settings_is_refused(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        fps = tmp_path / "odd.fps"
        document = {
            "format": "preform-pipeline-simulated-fps",
            "version": 1,
            "scene_settings": {**FORM4, "material_code": "FLNOPE01"},
        }
        fps.write_text(json.dumps(document), encoding="utf-8")
        assert error_of(engine, "create_scene", {}, {"fps_file": str(fps)}).code == (
            "UNKNOWN_MATERIAL"
        )

    def test_save_fps_wants_the_fps_suffix(self, engine: SimEngine, tmp_path: Path) -> None:
        scene = engine.call("create_scene", {}, FORM4)
        body = {"file": str(tmp_path / "settings.json")}
        assert error_of(engine, "save_fps_file", {"scene_id": scene["id"]}, body).code == (
            "INVALID_BODY"
        )


class TestSceneLifecycle:
    """Scenes can be read, listed, updated and deleted; unknown ids are 400."""

    def test_an_unknown_scene_is_not_found(self, engine: SimEngine) -> None:
        error = error_of(engine, "get_scene", {"scene_id": "nope"}, None)
        assert (error.status, error.code) == (400, "SCENE_NOT_FOUND")

    def test_update_scene_changes_the_settings(self, engine: SimEngine) -> None:
        scene = engine.call("create_scene", {}, FORM4)
        body = {
            "machine_type": "FORM-4L-0",
            "material_code": "FLGPGR05",
            "layer_thickness_mm": 0.05,
        }
        updated = engine.call("update_scene", {"scene_id": scene["id"]}, body)
        assert updated["scene_settings"]["machine_type"] == "FORM-4L-0"
        again = engine.call("get_scene", {"scene_id": scene["id"]}, None)
        assert again["scene_settings"]["layer_thickness_mm"] == 0.05

    def test_update_scene_refuses_unknown_settings_and_keeps_the_old(
        self, engine: SimEngine
    ) -> None:
        scene = engine.call("create_scene", {}, FORM4)
        bad = {**FORM4, "layer_thickness_mm": 0.3}
        assert error_of(engine, "update_scene", {"scene_id": scene["id"]}, bad).code == (
            "UNSUPPORTED_LAYER_THICKNESS"
        )
        assert (
            engine.call("get_scene", {"scene_id": scene["id"]}, None)["scene_settings"][
                "layer_thickness_mm"
            ]
            == 0.1
        )

    def test_delete_scene_answers_the_scene_and_forgets_it(self, engine: SimEngine) -> None:
        scene = engine.call("create_scene", {}, FORM4)
        assert engine.call("delete_scene", {"scene_id": scene["id"]}, None)["id"] == scene["id"]
        assert error_of(engine, "get_scene", {"scene_id": scene["id"]}, None).code == (
            "SCENE_NOT_FOUND"
        )

    def test_get_all_scenes_lists_every_scene_in_creation_order(self, engine: SimEngine) -> None:
        ids = [engine.call("create_scene", {}, FORM4)["id"] for _ in range(3)]
        listed = engine.call("get_all_scenes", {}, None)["scenes"]
        assert [s["id"] for s in listed] == ids


class TestDefaultScene:
    """The "default" scene exists on demand and can be replaced or blanked."""

    def test_the_default_scene_exists_before_anyone_creates_it(self, engine: SimEngine) -> None:
        scene = engine.call("get_scene", {"scene_id": "default"}, None)
        assert scene["id"] == "default"
        assert scene["scene_settings"]["machine_type"] == "FORM-4-0"

    def test_create_default_scene_replaces_it(self, engine: SimEngine, cube: Path) -> None:
        engine.call("import_model", {"scene_id": "default"}, {"file": str(cube)})
        fuse = {"machine_type": "FS30-1-0", "material_code": "FLP11B01", "layer_thickness_mm": 0.11}
        scene = engine.call("create_default_scene", {}, fuse)
        assert scene["models"] == []
        assert (
            engine.call("get_scene", {"scene_id": "default"}, None)["scene_settings"][
                "machine_type"
            ]
            == "FS30-1-0"
        )

    def test_delete_default_scene_leaves_a_blank_default(
        self, engine: SimEngine, cube: Path
    ) -> None:
        engine.call("import_model", {"scene_id": "default"}, {"file": str(cube)})
        blank = engine.call("delete_default_scene", {}, None)
        assert blank["models"] == []
        assert engine.call("get_scene", {"scene_id": "default"}, None)["models"] == []


class TestSceneCache:
    """At most scene_cache_size scenes stay in memory; the rest wait on disk and come back."""

    def test_least_recently_used_scenes_are_evicted_to_the_work_dir(
        self, tmp_path: Path, cube: Path
    ) -> None:
        engine = SimEngine(scene_cache_size=2, work_dir=tmp_path / "work")
        ids = [engine.call("create_scene", {}, FORM4)["id"] for _ in range(4)]
        assert engine.scenes.in_memory() == ids[2:]
        assert engine.scenes.on_disk() == sorted(ids[:2])
        spilled = sorted(p.name for p in (tmp_path / "work").rglob("*.scene.pickle"))
        assert spilled == sorted(f"{i}.scene.pickle" for i in ids[:2])

    def test_an_evicted_scene_is_reloaded_with_its_models(self, tmp_path: Path, cube: Path) -> None:
        engine = SimEngine(scene_cache_size=1, work_dir=tmp_path / "work")
        first = engine.call("create_scene", {}, FORM4)["id"]
        model = engine.call("import_model", {"scene_id": first}, {"file": str(cube)})
        engine.call("create_scene", {}, FORM4)
        assert first in engine.scenes.on_disk()
        engine.call("update_model", {"scene_id": first, "id": model["id"]}, {"name": "back"})
        assert engine.scenes.in_memory() == [first]
        again = engine.call("get_model", {"scene_id": first, "id": model["id"]}, None)
        assert again["name"] == "back"
        assert again["raw_mesh_hash"] == model["raw_mesh_hash"]

    def test_listing_all_scenes_does_not_reload_evicted_ones(self, tmp_path: Path) -> None:
        engine = SimEngine(scene_cache_size=1, work_dir=tmp_path / "work")
        ids = [engine.call("create_scene", {}, FORM4)["id"] for _ in range(3)]
        listed = engine.call("get_all_scenes", {}, None)["scenes"]
        assert [s["id"] for s in listed] == ids
        assert engine.scenes.in_memory() == ids[-1:]

    def test_deleting_an_evicted_scene_removes_its_file(self, tmp_path: Path) -> None:
        engine = SimEngine(scene_cache_size=1, work_dir=tmp_path / "work")
        first = engine.call("create_scene", {}, FORM4)["id"]
        engine.call("create_scene", {}, FORM4)
        engine.scenes.remove(first)
        assert list((tmp_path / "work").rglob("*.scene.pickle")) == []

    def test_a_damaged_cache_file_is_a_server_error_not_a_crash(self, tmp_path: Path) -> None:
        engine = SimEngine(scene_cache_size=1, work_dir=tmp_path / "work")
        first = engine.call("create_scene", {}, FORM4)["id"]
        engine.call("create_scene", {}, FORM4)
        (spilled,) = (tmp_path / "work").rglob("*.scene.pickle")
        spilled.write_bytes(b"not a pickle")
        error = error_of(engine, "get_scene", {"scene_id": first}, None)
        assert (error.status, error.code) == (500, "SCENE_CACHE_CORRUPT")

    def test_a_cache_size_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            SimEngine(scene_cache_size=0)

    def test_threads_working_on_many_scenes_lose_nothing(self, tmp_path: Path, cube: Path) -> None:
        engine = SimEngine(scene_cache_size=2, work_dir=tmp_path / "work")
        ids = [engine.call("create_scene", {}, FORM4)["id"] for _ in range(4)]
        failures: list[BaseException] = []

        def work(scene_id: str) -> None:
            try:
                for _ in range(3):
                    engine.call("import_model", {"scene_id": scene_id}, {"file": str(cube)})
            except BaseException as exc:  # surfaced below: a thread's failure fails the test
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in ids * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert failures == []
        counts = [len(engine.call("get_scene", {"scene_id": i}, None)["models"]) for i in ids]
        assert counts == [6, 6, 6, 6]
