"""A simulated model holds its mesh and at most one copy derived from it, whatever is asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from preform_pipeline.geometry import Mesh, write_stl
from preform_pipeline.geometry.analysis import support_volume_estimate
from preform_pipeline.geometry.mesh import transformed_triangles
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.scene import SimModel, mesh_hash, placed_triangles

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}


def held_copies(model: SimModel) -> int:
    """Distinct triangle arrays the model keeps: its mesh and any derived mesh it caches."""
    meshes = [model.mesh]
    for cache in (model._shape_cache, model._world_cache):
        if cache is not None and cache.mesh is not None:
            meshes.append(cache.mesh)
    return len({id(m.triangles) for m in meshes})


def turned_model() -> SimModel:
    rng = np.random.default_rng(4)
    triangles = (box_triangles((0, 0, 0), (30, 20, 10)) + rng.uniform(0, 1, 3)).astype(
        np.float32
    )
    return SimModel(model_id="m", name="part", mesh=Mesh(triangles, "part"),
                    original_file="/part.stl", orientation=(90.0, 0.0, 30.0), scale=1.5,
                    position=(10.0, -5.0, 0.0))


class TestCopiesHeld:
    """Every request leaves at most one derived copy beside the mesh."""

    def test_each_request_in_turn(self) -> None:
        model = turned_model()
        model.to_json((200.0, 125.0, 210.0))
        assert held_copies(model) <= 2
        model.shadow()
        model.world_mesh()
        assert held_copies(model) == 2
        model.shape_measure("volume", Mesh.volume)
        assert held_copies(model) == 2
        model.placed_measure("support", support_volume_estimate)
        assert held_copies(model) == 2
        model.position = (0.0, 0.0, 0.0)
        model.world_mesh()
        assert held_copies(model) == 2

    def test_a_model_imported_as_is_derives_its_shape_for_free(self) -> None:
        model = turned_model()
        model.orientation, model.scale = (0.0, 0.0, 0.0), 1.0
        model.shape_measure("volume", Mesh.volume)
        assert held_copies(model) == 1
        model.world_mesh()
        assert held_copies(model) == 2

    def test_the_placed_mesh_is_the_oriented_mesh_moved(self) -> None:
        model = turned_model()
        shaped = model.mesh.transformed(model.linear())
        low, high = shaped.bounds
        expected = shaped.translated(10.0 - (low[0] + high[0]) / 2, -5.0 - (low[1] + high[1]) / 2,
                                     -low[2])
        assert np.array_equal(model.world_mesh().triangles, expected.triangles)
        # Measures made after the oriented copy was let go equal measures of the copy.
        assert model.shape_measure("area", Mesh.surface_area) == shaped.surface_area()


class TestMeshHash:
    """The raw mesh's hash is the SHA-256 of its float32 bytes, taken without a copy."""

    def test_equals_hash_of_the_bytes(self) -> None:
        mesh = turned_model().mesh
        assert mesh_hash(mesh) == hashlib.sha256(mesh.triangles.tobytes()).hexdigest()

    def test_slices_place_as_the_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        model = turned_model()
        linear, offset = model.linear(), np.array([1.0, -2.0, 3.5])
        whole = placed_triangles(model.mesh.triangles, linear, offset)
        monkeypatch.setattr("preform_pipeline.geometry.mesh.CHUNK_TRIANGLES", 5)
        assert np.array_equal(placed_triangles(model.mesh.triangles, linear, offset), whole)
        shaped = transformed_triangles(model.mesh.triangles, linear, np.zeros(3))
        assert np.array_equal(whole, transformed_triangles(shaped, np.eye(3), offset))


class TestFormRoundTrip:
    """A .form streamed to disk loads back with the same meshes and hashes."""

    def test_save_and_load(self, tmp_path: Path) -> None:
        engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
        scene = engine.call("create_scene", {}, FORM4)["id"]
        part = tmp_path / "part.stl"
        write_stl(part, turned_model().mesh.triangles)
        engine.call("import_model", {"scene_id": scene},
                    {"file": str(part), "units": "MILLIMETERS", "repair_behavior": "REPAIR"})
        form = tmp_path / "out.form"
        engine.call("save_form_file", {"scene_id": scene}, {"file": str(form)})
        loaded = engine.call("load_form_file", {}, {"file": str(form)})
        assert len(loaded["models"]) == 1
        assert not list(tmp_path.glob(".out.form.*.tmp"))
