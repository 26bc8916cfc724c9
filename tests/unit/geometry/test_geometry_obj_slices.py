"""An OBJ parsed in many slices reads as it does in one: the same mesh, the same errors.

The OBJ reader parses ``SLICE_BYTES`` at a time (cut at line ends) to bound its memory on large
files; these tests lower the slice to a few dozen bytes, so that ordinary files span many
slices, and hold the result to what one slice gives and to the file's own rules.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from geometry_factories import box_triangles

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import obj as obj_module
from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.obj import read_obj_bytes, write_obj

#: Smaller than most lines below, so nearly every line is a slice of its own.
SMALL_SLICE = 24
DAMAGED_HINT = "the OBJ file is damaged; export it again"
CUBES = 6
# The six sides of a unit cube as quads over corners numbered x + 2y + 4z, facing out.
QUADS = ((0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5))


def _corners(cube: int) -> list[str]:
    # Long decimals make some vertex lines longer than a slice, which must then be whole.
    return [
        f"v {cube * 2 + (i & 1)}.000000000000 {(i >> 1) & 1} {(i >> 2) & 1}\n" for i in range(8)
    ]


def _plain_obj() -> str:
    """The cubes with every vertex first and every face by its absolute 1-based index."""
    vertices = [line for cube in range(CUBES) for line in _corners(cube)]
    faces = [
        "f " + " ".join(str(cube * 8 + c + 1) for c in quad) + "\n"
        for cube in range(CUBES)
        for quad in QUADS
    ]
    return "".join(vertices + faces)


def _mixed_obj() -> str:
    """The same cubes, in the same face order, written every way the format allows.

    Even cubes: vertices, then faces by negative ``v/vt/vn`` indices. Odd cubes: faces first,
    by positive ``v//vn`` indices to vertices defined later, then the vertices. Comments and a
    line longer than any slice sit between them.
    """
    out = ["# " + "a comment longer than a slice " * 4 + "\n"]
    for cube in range(CUBES):
        if cube % 2 == 0:
            out += _corners(cube)
            out += ["f " + " ".join(f"{c - 8}/1/1" for c in quad) + "\n" for quad in QUADS]
        else:
            forward = (" ".join(f"{cube * 8 + c + 1}//1" for c in quad) for quad in QUADS)
            out += [f"f {face}\n" for face in forward]
            out += _corners(cube)
        out.append("vn 0 0 1\nvt 0 0\ng part\n")
    return "".join(out)


def _write(tmp_path: Path, text: str, name: str = "part.obj") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("ascii"))
    return path


def _refusal(path: Path) -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    assert caught.value.path == path
    assert caught.value.hint == DAMAGED_HINT
    return caught.value


def _reasons(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The refusal's reason read in one slice, then in slices of ``SMALL_SLICE`` bytes."""
    whole = _refusal(path).reason
    monkeypatch.setattr(obj_module, "SLICE_BYTES", SMALL_SLICE)
    return whole, _refusal(path).reason


class TestTheSameMeshInManySlices:
    """Cubes written with every index form read alike in one slice and in dozens."""

    def test_mixed_forms_in_many_slices_read_the_plain_files_mesh(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        plain = read_mesh(_write(tmp_path, _plain_obj(), "plain.obj"))
        mixed = _write(tmp_path, _mixed_obj(), "mixed.obj")
        one_slice = read_mesh(mixed)
        monkeypatch.setattr(obj_module, "SLICE_BYTES", SMALL_SLICE)
        many_slices = read_mesh(mixed)

        assert plain.triangle_count == CUBES * 12
        np.testing.assert_array_equal(one_slice.triangles, plain.triangles)
        np.testing.assert_array_equal(many_slices.triangles, plain.triangles)

    def test_a_last_line_without_a_newline_is_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, _plain_obj().rstrip("\n"))
        monkeypatch.setattr(obj_module, "SLICE_BYTES", SMALL_SLICE)
        assert read_mesh(path).triangle_count == CUBES * 12


class TestMemoryOfALargeFile:
    """Parsing holds one slice's Python objects at a time, not the whole file's."""

    #: 64 KiB slices of a 0.8 MB file: parsed at once, it peaked about 7 MB above twice its
    #: mesh; in slices under 1 MB above (the bytes, read before tracing starts, not counted).
    SLICE = 64 * 1024
    ALLOWANCE_BYTES = 2 * 1024 * 1024

    def test_the_peak_is_twice_the_mesh_and_about_a_slice_more(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        corners = ((i % 100 * 0.6, i // 100 * 0.6, 0.0) for i in range(2000))
        boxes = [box_triangles(0.5, 0.5, 0.5, corner) for corner in corners]
        path = tmp_path / "large.obj"
        write_obj(path, np.concatenate(boxes))
        # A first line longer than a slice must not make the rest of the file one slice.
        data = b"# " + b"x" * 2 * self.SLICE + b"\n" + path.read_bytes()
        monkeypatch.setattr(obj_module, "SLICE_BYTES", self.SLICE)
        tracemalloc.start()
        try:
            mesh = read_obj_bytes(data, origin=path, name="large", source=path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert mesh.triangles.shape == (2000 * 12, 3, 3)
        assert peak < 2 * mesh.triangles.nbytes + self.ALLOWANCE_BYTES


class TestErrorsInALaterSlice:
    """An error far into the file names its own line and the whole file's vertex count."""

    def test_a_negative_index_past_the_first_vertex_names_its_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Line 85 follows the 48 vertices, so -49 reaches back before the first.
        path = _write(tmp_path, _plain_obj() + "f -1 -2 -49\n")
        assert _reasons(path, monkeypatch) == (
            "line 85: vertex index -49 is out of range (the file defines 48 vertices)",
        ) * 2

    def test_a_negative_index_counts_only_the_vertices_before_its_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # 8 vertices precede line 9; the 40 after it are not reachable backwards.
        text = _plain_obj()
        lines = text.splitlines(keepends=True)
        bad = "".join(lines[:8]) + "f -1 -2 -9\n" + "".join(lines[8:])
        path = _write(tmp_path, bad)
        assert _reasons(path, monkeypatch) == (
            "line 9: vertex index -9 is out of range (the file defines 48 vertices)",
        ) * 2

    def test_a_forward_index_past_the_last_vertex_names_its_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "f 1 2 49\n" + _plain_obj())
        assert _reasons(path, monkeypatch) == (
            "line 1: vertex index 49 is out of range (the file defines 48 vertices)",
        ) * 2

    def test_a_token_that_is_no_index_names_its_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, _plain_obj() + "f 1 2 3\nf 1 two 3\n")
        assert _reasons(path, monkeypatch) == ("line 86: 'two' is not a vertex index",) * 2

    def test_a_short_face_names_its_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, _plain_obj() + "f 1 2 3\nf 1 2\n")
        assert _reasons(path, monkeypatch) == (
            "line 86: a face needs at least 3 vertices, found 2",
        ) * 2

    def test_a_bad_coordinate_names_its_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, _plain_obj() + "v 1 2 x3\n")
        assert _reasons(path, monkeypatch) == ("line 85: 'x3' is not a number",) * 2


class TestTheWholeFilesOrderOfErrors:
    """Across slices the kinds of error keep the one-slice order, not the order of the file."""

    def test_a_later_short_face_comes_before_an_earlier_bad_token(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "f 1 x 3\n" + _plain_obj() + "f 1 2\n")
        assert _reasons(path, monkeypatch) == (
            "line 86: a face needs at least 3 vertices, found 2",
        ) * 2

    def test_a_later_bad_token_comes_before_an_earlier_index_out_of_range(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "f 1 2 99\n" + _plain_obj() + "f 1 2 3\nf 1 2 y\n")
        assert _reasons(path, monkeypatch) == ("line 87: 'y' is not a vertex index",) * 2

    def test_of_two_indices_out_of_range_the_first_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "f 1 2 99\n" + _plain_obj() + "f 1 2 77\n")
        assert _reasons(path, monkeypatch) == (
            "line 1: vertex index 99 is out of range (the file defines 48 vertices)",
        ) * 2

    def test_a_later_vertex_without_xyz_comes_before_an_earlier_bad_number(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "v 1 2 nan?\n" + _plain_obj() + "v 1 2\n")
        assert _reasons(path, monkeypatch) == ("line 86: a vertex needs x y z",) * 2

    def test_a_later_bad_vertex_comes_before_an_earlier_bad_face(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "f 1 2\n" + _plain_obj() + "v 1 2 zz\n")
        assert _reasons(path, monkeypatch) == ("line 86: 'zz' is not a number",) * 2

    def test_of_two_bad_coordinates_the_first_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "v 1 2 first\n" + _plain_obj() + "v 1 2 second\n")
        assert _reasons(path, monkeypatch) == ("line 1: 'first' is not a number",) * 2

    def test_of_two_bad_tokens_the_first_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = _write(tmp_path, "f 1 2 first\n" + _plain_obj() + "f 1 2 second\n")
        assert _reasons(path, monkeypatch) == ("line 1: 'first' is not a vertex index",) * 2
