"""SimEngine models: import (formats, units, repair, transforms) and per-model operations."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sim_server_support import WAIT_S
from structlog.testing import capture_logs

from preform_pipeline.geometry import read_mesh, write_3mf, write_obj, write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.server import SimulatorServer

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


@pytest.fixture
def scene(engine: SimEngine) -> dict[str, str]:
    return {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}


def box_file(folder: Path, name: str, size: tuple[float, float, float], **kw: Any) -> Path:
    path = folder / name
    triangles = box_triangles((0, 0, 0), size)
    if name.endswith(".obj"):
        write_obj(path, triangles)
    elif name.endswith(".3mf"):
        write_3mf(path, triangles)
    else:
        write_stl(path, triangles, **kw)
    return path


@pytest.fixture
def cube(tmp_path: Path) -> Path:
    return box_file(tmp_path, "cube.stl", (20, 20, 20))


def error_of(engine: SimEngine, op: str, params: dict[str, str], body: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value


def size_of(model: dict[str, Any]) -> tuple[float, float, float]:
    low, high = model["bounding_box"]["min_corner"], model["bounding_box"]["max_corner"]
    return (high["x"] - low["x"], high["y"] - low["y"], high["z"] - low["z"])


class TestImportFormats:
    """Binary and ASCII STL, OBJ and 3MF import with their real geometry."""

    @pytest.mark.parametrize("name", ["part.stl", "part.obj", "part.3mf"])
    def test_each_format_imports_with_its_bounding_box(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path, name: str
    ) -> None:
        path = box_file(tmp_path, name, (30, 20, 10))
        model = engine.call("import_model", scene, {"file": str(path)})
        assert uuid.UUID(model["id"])
        assert model["name"] == "part"
        assert size_of(model) == pytest.approx((30, 20, 10))
        assert model["original_file"] == str(path)
        assert model["in_bounds"] is True

    def test_ascii_stl_imports(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = box_file(tmp_path, "ascii.stl", (12, 12, 12), ascii=True)
        assert size_of(engine.call("import_model", scene, {"file": str(path)})) == pytest.approx(
            (12, 12, 12)
        )

    def test_a_model_stands_centred_on_the_platform_by_default(
        self, engine: SimEngine, scene: dict[str, str], cube: Path
    ) -> None:
        model = engine.call("import_model", scene, {"file": str(cube)})
        assert model["position"] == {"x": 0.0, "y": 0.0, "z": 0.0}
        assert model["bounding_box"]["min_corner"] == {"x": -10.0, "y": -10.0, "z": 0.0}

    def test_raw_mesh_hash_is_the_sha256_of_the_triangles(
        self, engine: SimEngine, scene: dict[str, str], cube: Path
    ) -> None:
        model = engine.call("import_model", scene, {"file": str(cube)})
        expected = hashlib.sha256(read_mesh(cube).triangles.tobytes()).hexdigest()
        assert model["raw_mesh_hash"] == expected


class TestImportErrors:
    """Bad paths and bad files are 400 answers with a code naming the problem."""

    def test_a_relative_path_is_invalid(self, engine: SimEngine, scene: dict[str, str]) -> None:
        error = error_of(engine, "import_model", scene, {"file": "cube.stl"})
        assert (error.status, error.code) == (400, "INVALID_PATH")

    def test_a_missing_file_is_not_found(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        error = error_of(engine, "import_model", scene, {"file": str(tmp_path / "gone.stl")})
        assert (error.status, error.code) == (400, "FILE_NOT_FOUND")

    def test_a_malformed_file_is_invalid_with_the_reader_reason(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "broken.stl"
        path.write_bytes(b"solid x\n  facet normal 0 0 1\n    outer loop\n      vertex 1 2\n")
        error = error_of(engine, "import_model", scene, {"file": str(path)})
        assert (error.status, error.code) == (400, "INVALID_MODEL_FILE")
        assert "broken.stl" in error.error_message

    def test_an_unsupported_suffix_is_an_invalid_model_file(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = tmp_path / "part.step"
        path.write_text("ISO-10303-21;", encoding="ascii")
        assert error_of(engine, "import_model", scene, {"file": str(path)}).code == (
            "INVALID_MODEL_FILE"
        )

    def test_a_missing_file_field_is_an_invalid_body(
        self, engine: SimEngine, scene: dict[str, str]
    ) -> None:
        assert error_of(engine, "import_model", scene, {"name": "x"}).code == "INVALID_BODY"

    def test_import_into_an_unknown_scene_is_not_found(self, engine: SimEngine, cube: Path) -> None:
        error = error_of(engine, "import_model", {"scene_id": "nope"}, {"file": str(cube)})
        assert (error.status, error.code) == (400, "SCENE_NOT_FOUND")

    @pytest.mark.parametrize(
        "extra",
        [
            {"scale": 0},
            {"scale": "big"},
            {"units": "FEET"},
            {"lock": "GLUED"},
            {"repair_behavior": "PRAY"},
            {"position": {"x": 1, "y": 2}},
            {"orientation": {"x": 1, "y": 2, "z": "3"}},
        ],
    )
    def test_bad_options_are_invalid(
        self, engine: SimEngine, scene: dict[str, str], cube: Path, extra: dict[str, Any]
    ) -> None:
        error = error_of(engine, "import_model", scene, {"file": str(cube), **extra})
        assert (error.status, error.code) == (400, "INVALID_BODY")
        assert engine.call("get_scene", scene, None)["models"] == []


class TestRepair:
    """repair_behavior decides what happens to an open mesh: refuse, close, or keep it."""

    @pytest.fixture
    def open_box(self, tmp_path: Path) -> Path:
        path = tmp_path / "open.stl"
        write_stl(path, box_triangles((0, 0, 0), (10, 10, 10))[2:])  # bottom face removed
        return path

    def test_error_refuses_an_open_mesh(
        self, engine: SimEngine, scene: dict[str, str], open_box: Path
    ) -> None:
        error = error_of(engine, "import_model", scene, {"file": str(open_box)})
        assert (error.status, error.code) == (400, "MODEL_NOT_WATERTIGHT")
        assert "REPAIR" in error.error_message

    def test_repair_closes_the_holes(
        self, engine: SimEngine, scene: dict[str, str], open_box: Path
    ) -> None:
        model = engine.call(
            "import_model", scene, {"file": str(open_box), "repair_behavior": "REPAIR"}
        )
        with engine.scenes.use(scene["scene_id"]) as state:
            mesh = state.models[model["id"]].mesh
        assert mesh.is_closed()
        assert mesh.volume() == pytest.approx(1000.0)

    def test_ignore_imports_the_open_mesh_as_it_is(
        self, engine: SimEngine, scene: dict[str, str], open_box: Path
    ) -> None:
        model = engine.call(
            "import_model", scene, {"file": str(open_box), "repair_behavior": "IGNORE"}
        )
        with engine.scenes.use(scene["scene_id"]) as state:
            assert not state.models[model["id"]].mesh.is_closed()


class TestUnitsAndTransforms:
    """Units, scale, position and the three orientation forms shape the placed model."""

    def test_a_tiny_model_is_detected_as_inches(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = box_file(tmp_path, "inch.stl", (2, 1, 1))
        model = engine.call("import_model", scene, {"file": str(path)})
        assert model["units"] == "INCHES"
        assert size_of(model) == pytest.approx((50.8, 25.4, 25.4))

    def test_explicit_millimetres_are_kept(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = box_file(tmp_path, "bead.stl", (2, 1, 1))
        model = engine.call("import_model", scene, {"file": str(path), "units": "MILLIMETERS"})
        assert size_of(model) == pytest.approx((2, 1, 1))

    def test_explicit_inches_scale_by_25_4(
        self, engine: SimEngine, scene: dict[str, str], cube: Path
    ) -> None:
        model = engine.call("import_model", scene, {"file": str(cube), "units": "INCHES"})
        assert size_of(model) == pytest.approx((508, 508, 508))
        assert model["in_bounds"] is False

    def test_scale_position_and_euler_orientation_apply(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = box_file(tmp_path, "bar.stl", (40, 10, 10))
        body = {
            "file": str(path),
            "scale": 0.5,
            "position": {"x": 10, "y": -5, "z": 2},
            "orientation": {"x": 0, "y": 0, "z": 90},
            "name": "Bar",
        }
        model = engine.call("import_model", scene, body)
        assert model["name"] == "Bar"
        assert size_of(model) == pytest.approx((5, 20, 5))
        assert model["position"] == {"x": 10.0, "y": -5.0, "z": 2.0}
        assert model["orientation"]["z"] == pytest.approx(90)
        assert model["bounding_box"]["min_corner"]["z"] == pytest.approx(2)

    def test_a_matrix_orientation_is_reported_as_euler_angles(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = box_file(tmp_path, "bar.stl", (40, 10, 10))
        quarter_about_x = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
        model = engine.call(
            "import_model", scene, {"file": str(path), "orientation": {"linear": quarter_about_x}}
        )
        assert model["orientation"]["x"] == pytest.approx(90)
        assert size_of(model) == pytest.approx((40, 10, 10))

    def test_direction_vectors_turn_the_named_axis_up(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        path = box_file(tmp_path, "bar.stl", (40, 10, 10))
        body = {
            "file": str(path),
            "orientation": {"z_direction": [1, 0, 0], "x_direction": [0, 1, 0]},
        }
        assert size_of(engine.call("import_model", scene, body)) == pytest.approx((10, 10, 40))

    @pytest.mark.parametrize(
        "orientation",
        [
            {"linear": [[2, 0, 0], [0, 1, 0], [0, 0, 1]]},
            {"linear": [[1, 0, 0], [0, 1, 0], [0, 0, -1]]},
            {"z_direction": [0, 0, 1], "x_direction": [0, 0.5, 1]},
            {"z_direction": [0, 0, 0], "x_direction": [1, 0, 0]},
        ],
    )
    def test_orientations_that_are_not_rotations_are_refused(
        self,
        engine: SimEngine,
        scene: dict[str, str],
        cube: Path,
        orientation: dict[str, Any],
    ) -> None:
        error = error_of(
            engine, "import_model", scene, {"file": str(cube), "orientation": orientation}
        )
        assert error.code == "INVALID_ORIENTATION"

    def test_the_canonical_hash_follows_the_transform(
        self, engine: SimEngine, scene: dict[str, str], cube: Path
    ) -> None:
        first = engine.call("import_model", scene, {"file": str(cube)})
        second = engine.call("import_model", scene, {"file": str(cube)})
        assert first["canonical_model_hash"] == second["canonical_model_hash"]
        params = {**scene, "id": second["id"]}
        engine.call("update_model", params, {"position": {"x": 5, "y": 0, "z": 0}})
        moved = engine.call("get_model", params, None)
        assert moved["canonical_model_hash"] != first["canonical_model_hash"]
        assert moved["raw_mesh_hash"] == first["raw_mesh_hash"]


class TestModelOperations:
    """get, update, delete, duplicate and replace act on one model; unknown ids are 400."""

    @pytest.fixture
    def model(self, engine: SimEngine, scene: dict[str, str], cube: Path) -> dict[str, str]:
        created = engine.call("import_model", scene, {"file": str(cube)})
        return {**scene, "id": created["id"]}

    @pytest.mark.parametrize(
        ("op", "body"),
        [
            ("get_model", None),
            ("update_model", {"name": "x"}),
            ("delete_model", None),
            ("duplicate_model", {"count": 1}),
        ],
    )
    def test_an_unknown_model_is_not_found(
        self, engine: SimEngine, scene: dict[str, str], op: str, body: Any
    ) -> None:
        error = error_of(engine, op, {**scene, "id": "nope"}, body)
        assert (error.status, error.code) == (400, "MODEL_NOT_FOUND")

    def test_update_moves_renames_and_locks(self, engine: SimEngine, model: dict[str, str]) -> None:
        body = {"name": "moved", "position": {"x": 300, "y": 0, "z": 0}, "lock": "FULLY_LOCKED"}
        assert engine.call("update_model", model, body) == {}
        updated = engine.call("get_model", model, None)
        assert (updated["name"], updated["lock"], updated["in_bounds"]) == (
            "moved",
            "FULLY_LOCKED",
            False,
        )

    def test_update_units_rescales(self, engine: SimEngine, model: dict[str, str]) -> None:
        engine.call("update_model", model, {"units": "INCHES", "scale": 0.1})
        assert size_of(engine.call("get_model", model, None)) == pytest.approx((50.8,) * 3)

    def test_update_ignores_unknown_fields_its_open_schema_allows(
        self, engine: SimEngine, model: dict[str, str]
    ) -> None:
        engine.call("update_model", model, {"name": "x", "colour": "red"})
        assert engine.call("get_model", model, None)["name"] == "x"

    def test_an_update_with_one_bad_field_changes_nothing(
        self, engine: SimEngine, model: dict[str, str]
    ) -> None:
        error = error_of(engine, "update_model", model, {"name": "x", "scale": -1})
        assert error.code == "INVALID_BODY"
        assert engine.call("get_model", model, None)["name"] == "cube"

    def test_tilting_drops_the_supports(self, engine: SimEngine, model: dict[str, str]) -> None:
        engine.call("auto_support", {"scene_id": model["scene_id"]}, {})
        assert engine.call("get_model", model, None)["has_supports"] is True
        engine.call("update_model", model, {"orientation": {"x": 30, "y": 0, "z": 45}})
        updated = engine.call("get_model", model, None)
        assert updated["has_supports"] is False
        assert updated["position"]["z"] == 0.0

    def test_a_turn_about_z_moves_the_supports_with_the_model(
        self, engine: SimEngine, model: dict[str, str]
    ) -> None:
        engine.call("update_model", model, {"orientation": {"x": 30, "y": 0, "z": 0}})
        engine.call("auto_support", {"scene_id": model["scene_id"]}, {})
        supported = engine.call("get_model", model, None)
        # The same tilt, turned 45 degrees about the platform's z axis and moved: as the
        # server's own auto-layout moves a supported model.
        turned = {"linear": [[0.7071067811865476, -0.6123724356957945, 0.3535533905932737],
                             [0.7071067811865475, 0.6123724356957946, -0.35355339059327373],
                             [0.0, 0.5, 0.8660254037844387]]}
        at = {"x": 20.0, "y": -10.0, "z": supported["position"]["z"]}
        engine.call("update_model", model, {"orientation": turned, "position": at})
        updated = engine.call("get_model", model, None)
        assert updated["has_supports"] is True
        assert updated["position"] == at

    def test_delete_removes_the_model(self, engine: SimEngine, model: dict[str, str]) -> None:
        engine.call("delete_model", model, None)
        assert engine.call("get_scene", {"scene_id": model["scene_id"]}, None)["models"] == []

    def test_duplicate_adds_copies_beside_the_original(
        self, engine: SimEngine, model: dict[str, str]
    ) -> None:
        scene = engine.call("duplicate_model", model, {"count": 2})
        assert len(scene["models"]) == 3
        assert len({m["id"] for m in scene["models"]}) == 3
        xs = sorted(m["position"]["x"] for m in scene["models"])
        assert xs == pytest.approx([0.0, 22.0, 44.0])
        assert len({m["raw_mesh_hash"] for m in scene["models"]}) == 1

    def test_copies_are_edited_independently(
        self, engine: SimEngine, model: dict[str, str]
    ) -> None:
        scene = engine.call("duplicate_model", model, {"count": 1})
        twin = next(m["id"] for m in scene["models"] if m["id"] != model["id"])
        engine.call("auto_support", {"scene_id": model["scene_id"]}, {"models": [twin]})
        engine.call("update_model", {**model, "id": twin}, {"units": "INCHES"})
        original = engine.call("get_model", model, None)
        assert (original["units"], original["has_supports"]) == ("MILLIMETERS", False)
        assert size_of(original) == pytest.approx((20, 20, 20))

    @pytest.mark.parametrize("count", [0, -1, 1.5, "2", 10_000])
    def test_duplicate_refuses_bad_counts(
        self, engine: SimEngine, model: dict[str, str], count: Any
    ) -> None:
        assert error_of(engine, "duplicate_model", model, {"count": count}).code == "INVALID_BODY"

    def test_replace_swaps_the_mesh_and_keeps_the_setup(
        self, engine: SimEngine, model: dict[str, str], tmp_path: Path
    ) -> None:
        engine.call("update_model", model, {"position": {"x": 5, "y": 6, "z": 0}, "name": "keep"})
        engine.call("auto_support", {"scene_id": model["scene_id"]}, {})
        bigger = box_file(tmp_path, "bigger.stl", (30, 30, 30))
        answer = engine.call("replace_model", model, {"file": str(bigger)})
        props = answer["model_properties"]
        assert answer["warnings"] == []
        assert (props["id"], props["name"], props["has_supports"]) == (model["id"], "keep", True)
        assert props["position"]["x"] == 5.0
        assert size_of(props) == pytest.approx((30, 30, 30))
        assert props["original_file"] == str(bigger)

    def test_replace_with_a_missing_file_changes_nothing(
        self, engine: SimEngine, model: dict[str, str], tmp_path: Path
    ) -> None:
        before = engine.call("get_model", model, None)
        error = error_of(engine, "replace_model", model, {"file": str(tmp_path / "none.stl")})
        assert error.code == "FILE_NOT_FOUND"
        assert engine.call("get_model", model, None) == before


def test_size_helper_matches_a_known_box() -> None:
    """The test helper measures what it claims (guards the other tests' arithmetic)."""
    box = {
        "bounding_box": {
            "min_corner": {"x": -1, "y": 0, "z": 0},
            "max_corner": {"x": 2, "y": 4, "z": 1},
        }
    }
    assert size_of(box) == (3, 4, 1)
    assert math.isclose(float(np.prod(size_of(box))), 12.0)


def _open_box(folder: Path) -> Path:
    """A 20 mm box with one face missing (two triangles): not watertight."""
    path = folder / "open.stl"
    write_stl(path, box_triangles((0, 0, 0), (20, 20, 20))[2:])
    return path


class TestAnAsyncImportsProgress:
    """An import run with ``?async=true`` reports its progress as a client polls it: half
    once the file is read, all of it when done; a failure keeps the progress it reached."""

    @pytest.fixture
    def http(self, engine: SimEngine) -> Iterator[httpx.Client]:
        with SimulatorServer(engine, port=0, poll_interval=0.005) as server, httpx.Client(
            base_url=server.url, timeout=WAIT_S
        ) as client:
            yield client
            server.check()

    def finished(self, http: httpx.Client, scene: dict[str, str], body: Any) -> dict[str, Any]:
        accepted = http.post(f"/scene/{scene['scene_id']}/import-model/?async=true", json=body)
        assert accepted.status_code == 202, accepted.text
        operation = accepted.json()["operationId"]
        deadline = time.monotonic() + WAIT_S
        while True:
            detail: dict[str, Any] = http.get(f"/operations/{operation}/").json()
            if detail["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
                return detail
            time.sleep(0.01)  # polled as a client polls; the operation runs in its own thread

    def test_a_successful_import_ends_at_all_of_it(
        self, http: httpx.Client, scene: dict[str, str], cube: Path
    ) -> None:
        detail = self.finished(http, scene, {"file": str(cube)})
        assert (detail["status"], detail["progress"]) == ("SUCCEEDED", 1.0)
        assert http.get(f"/scene/{scene['scene_id']}/").json()["models"][0]["name"] == "cube"

    def test_a_file_that_fails_its_read_stops_at_nothing_done(
        self, http: httpx.Client, scene: dict[str, str], tmp_path: Path
    ) -> None:
        detail = self.finished(http, scene, {"file": str(_open_box(tmp_path))})
        assert (detail["status"], detail["progress"]) == ("FAILED", 0.0)
        assert detail["result"]["error"]["code"] == "MODEL_NOT_WATERTIGHT"

    def test_a_model_read_but_refused_its_place_stops_at_half(
        self, http: httpx.Client, scene: dict[str, str], cube: Path
    ) -> None:
        detail = self.finished(http, scene, {"file": str(cube), "scale": 1e6})
        assert (detail["status"], detail["progress"]) == ("FAILED", 0.5)
        assert detail["result"]["error"]["code"] == "INVALID_BODY"


class TestTheImportsProgressAtTheServersSeam:
    """The engine reports an import's progress to the server as it goes: none of it before the
    file is read, half once it is read, all of it once the model is in the scene.

    Over HTTP the server marks the operation ``SUCCEEDED`` at 1.0 microseconds after the
    engine's last report, so a client cannot tell that report apart; the server's callback
    (the :class:`SceneEngine` seam) is where the engine's own progress is seen whole.
    """

    def test_a_successful_import_reports_none_half_and_all_of_it(
        self, engine: SimEngine, scene: dict[str, str], cube: Path
    ) -> None:
        reports: list[float] = []
        engine.call("import_model", scene, {"file": str(cube)}, progress=reports.append)
        assert reports == [0.0, 0.5, 1.0]

    def test_an_import_refused_its_place_reports_no_more_than_half(
        self, engine: SimEngine, scene: dict[str, str], cube: Path
    ) -> None:
        reports: list[float] = []
        with pytest.raises(SimError):
            engine.call(
                "import_model", scene, {"file": str(cube), "scale": 1e6}, progress=reports.append
            )
        assert reports == [0.0, 0.5]


class TestTheImportIsLogged:
    """Each import logs ``model_imported`` once: scene, model, triangles and the warnings."""

    def test_the_event_names_what_was_imported(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        with capture_logs() as logs:
            model = engine.call(
                "import_model", scene,
                {"file": str(_open_box(tmp_path)), "repair_behavior": "REPAIR"},
            )
        imported = [e for e in logs if e["event"] == "model_imported"]
        assert imported == [{
            "event": "model_imported",
            "log_level": "info",
            "scene_id": scene["scene_id"],
            "model_id": model["id"],
            "triangles": 14,  # ten left, four closing the hole
            "warnings": ["Closed 1 hole in open.stl"],
        }]


class TestAnInchModelMoved:
    """A model imported in inches is checked in inches when it is moved without ``units``."""

    def test_a_move_past_the_reach_in_inches_is_refused(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path
    ) -> None:
        small = box_file(tmp_path, "small.stl", (10, 10, 10))  # 254 mm in inches, 10 in mm
        model = engine.call("import_model", scene, {"file": str(small), "units": "INCHES"})
        ids = {**scene, "id": model["id"]}
        near_the_edge = {"position": {"x": 999_900.0, "y": 0.0, "z": 0.0}}

        error = error_of(engine, "update_model", ids, near_the_edge)

        assert (error.status, error.code) == (400, "INVALID_BODY")
        assert engine.call("get_model", ids, None)["position"] == model["position"]
