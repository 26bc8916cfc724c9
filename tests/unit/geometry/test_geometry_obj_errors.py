"""OBJ faces that cannot be used are named by their line, token and the vertices defined."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.obj import read_obj_bytes

VERTICES = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"


def _error(tmp_path: Path, text: str) -> ModelFileError:
    path = tmp_path / "part.obj"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    assert caught.value.path == path
    assert caught.value.hint
    return caught.value


def _parsed(path: Path) -> list[object]:
    """The triangles as parsed, before the reader's sanity checks (which refuse the single flat
    triangles these tests are about)."""
    mesh = read_obj_bytes(path.read_bytes(), origin=path, name=path.stem, source=path)
    return mesh.triangles.tolist()  # type: ignore[no-any-return]


class TestFaceIndexErrors:
    """A face token that is no index, or points outside the vertices, is reported exactly."""

    def test_a_token_that_is_not_an_index_is_named_with_its_line(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES + "f 1 2 3\nf 1 2 3 4\nf 2 x\u00e9 4\n")
        # The file is Latin-1: its e-acute (one byte, 0xE9) is no UTF-8, so it is escaped.
        assert error.reason == "line 7: 'x\\xe9' is not a vertex index"

    def test_a_bad_token_in_the_first_face_names_that_line(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES + "f 1.5 2 3\nf 1 2 3\n")
        assert error.reason == "line 5: '1.5' is not a vertex index"

    def test_an_index_one_past_the_last_vertex_is_out_of_range(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES + "f 1 2 3\nf 2 3 5\n")
        assert error.reason == (
            "line 6: vertex index 5 is out of range (the file defines 4 vertices)"
        )

    def test_the_last_vertex_by_its_number_is_fine(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_text(VERTICES + "f 2 3 4\n", encoding="ascii")
        assert _parsed(path) == [[[1, 0, 0], [0, 1, 0], [0, 0, 1]]]

    def test_minus_one_is_the_last_vertex_defined_so_far(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_text(VERTICES + "f -3 -2 -1\nv 5 5 5\nf 1 2 -1\n", encoding="ascii")
        assert read_mesh(path).triangles.tolist() == [
            [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            [[0, 0, 0], [1, 0, 0], [5, 5, 5]],
        ]

    def test_a_face_of_exactly_three_vertices_is_enough(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_text(VERTICES + "f 1 2 3\n", encoding="ascii")
        assert len(_parsed(path)) == 1

    def test_a_file_without_faces_names_itself(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES)
        assert "no triangles" in error.reason


class TestFaceAndVertexEdges:
    """The face or vertex at fault is the one reported, even at line and face boundaries."""

    def test_the_short_face_is_reported_not_an_earlier_triangle(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES + "f 1 2 3\nf 1 2\n")
        assert error.reason == "line 6: a face needs at least 3 vertices, found 2"

    def test_a_bad_first_token_of_a_face_names_that_face(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES + "f 1 2 3\nf x 2 3\n")
        assert error.reason == "line 6: 'x' is not a vertex index"

    def test_an_out_of_range_first_index_of_a_face_names_that_face(
        self, tmp_path: Path
    ) -> None:
        error = _error(tmp_path, VERTICES + "f 1 2 3\nf 9 2 3\n")
        assert error.reason == (
            "line 6: vertex index 9 is out of range (the file defines 4 vertices)"
        )

    def test_a_punctuation_token_counts_as_a_vertex_token(self, tmp_path: Path) -> None:
        error = _error(tmp_path, VERTICES + "f 1 2 !\n")
        assert error.reason == "line 5: '!' is not a vertex index"

    def test_faces_without_any_vertex_lines_are_out_of_range(self, tmp_path: Path) -> None:
        error = _error(tmp_path, "f 1 2 3\n")
        assert error.reason == (
            "line 1: vertex index 1 is out of range (the file defines 0 vertices)"
        )

    def test_a_bad_x_coordinate_is_named(self, tmp_path: Path) -> None:
        error = _error(tmp_path, "v x 0 0\n" + VERTICES + "f 2 3 4\n")
        assert error.reason == "line 1: 'x' is not a number"

    def test_a_mesh_that_fails_its_checks_names_the_file(self, tmp_path: Path) -> None:
        error = _error(tmp_path, "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
        assert "NaN or infinite" in error.reason
