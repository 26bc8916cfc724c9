"""The readers' and the planner's counts read as English for one and for several: a binary
STL's declared triangles, an OBJ's vertices, the triangles re-oriented before planning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geometry_factories import refusal

from preform_pipeline.geometry import write_stl
from preform_pipeline.plan.builds import read_model
from preform_pipeline.recipes.model import ImportSpec
from preform_pipeline.simulator.meshops import box_triangles


def _binary(tmp_path: Path, triangles: int) -> Path:
    path = tmp_path / "part.stl"
    write_stl(path, np.asarray(box_triangles((0, 0, 0), (1, 1, 1)))[:triangles])
    return path


class TestDeclaredTriangles:
    """A binary STL of the wrong length counts what its header declares and what fits."""

    def test_one_declared_triangle(self, tmp_path: Path) -> None:
        path = _binary(tmp_path, 1)
        path.write_bytes(path.read_bytes() + b"\0")
        assert refusal(path).reason == (
            "binary STL is longer than its header says: it declares 1 triangle, so expected "
            "134 bytes, but the file has 135 bytes (room for 1)")
        assert refusal(path).hint == "the header's triangle count is wrong; export the model again"

    def test_a_header_alone_that_declares_one(self, tmp_path: Path) -> None:
        path = _binary(tmp_path, 1)
        path.write_bytes(path.read_bytes()[:84])  # exactly the header: no record at all
        error = refusal(path)
        assert error.reason == (
            "binary STL is truncated: its header declares 1 triangle, so expected 134 bytes, "
            "but the file has 84 bytes (room for 0 triangles)")
        assert error.hint == "the file was cut short; copy or export it again"

    def test_one_declared_triangle_cut_short_is_not_a_mesh(self, tmp_path: Path) -> None:
        # Too few bytes for the record to be read as triangles at all.
        path = _binary(tmp_path, 1)
        path.write_bytes(path.read_bytes()[:-1])
        assert refusal(path).reason == (
            "this is not a mesh: neither ASCII STL text nor binary STL triangles")

    def test_two_declared_and_room_for_one(self, tmp_path: Path) -> None:
        path = _binary(tmp_path, 2)
        path.write_bytes(path.read_bytes()[:-1])
        assert refusal(path).reason == (
            "binary STL is truncated: its header declares 2 triangles, so expected 184 bytes, "
            "but the file has 183 bytes (room for 1 triangle)")


class TestDefinedVertices:
    """An index out of range counts the vertices the OBJ file defines."""

    @pytest.mark.parametrize(("vertices", "said"), [
        ("v 0 0 0\n", "(the file defines 1 vertex)"),
        ("v 0 0 0\nv 1 0 0\n", "(the file defines 2 vertices)"),
    ])
    def test_one_and_several(self, tmp_path: Path, vertices: str, said: str) -> None:
        path = tmp_path / "part.obj"
        path.write_text(vertices + "f 1 2 3\n", encoding="ascii")
        assert refusal(path).reason.endswith(said)


class TestTrianglesReOriented:
    """The planner's warning counts the triangles REPAIR turned."""

    @pytest.mark.parametrize(("flipped", "said"), [
        ([5], "; 1 triangle re-oriented on import"),
        ([5, 8], "; 2 triangles re-oriented on import"),
    ])
    def test_one_and_several(self, tmp_path: Path, flipped: list[int], said: str) -> None:
        triangles = np.asarray(box_triangles((0, 0, 0), (10, 20, 30)), dtype=np.float32)
        triangles[flipped] = triangles[flipped][:, ::-1]
        path = tmp_path / "part.stl"
        write_stl(path, triangles)
        model = read_model(
            path, import_spec=ImportSpec(units="MILLIMETERS", repair_behavior="REPAIR"))
        assert model.normals_warning is not None and said in model.normals_warning
