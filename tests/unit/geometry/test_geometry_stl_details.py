"""STL details a user meets: exact error texts, format detection at the edges, written bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh, stl_completeness, write_stl
from preform_pipeline.geometry.stl import BINARY_RECORD_DTYPE, read_stl_bytes

#: A closed solid (a tetrahedron): the reader refuses flat meshes, so size errors use this.
TETRA = np.array(
    [[[0, 0, 0], [2, 0, 0], [0, 3, 0]], [[0, 0, 0], [0, 3, 0], [0, 0, 4]],
     [[0, 0, 0], [0, 0, 4], [2, 0, 0]], [[2, 0, 0], [0, 0, 4], [0, 3, 0]]],
    dtype=np.float32,
)
TRIANGLE = TETRA[:1]
DAMAGED_HINT = "the ASCII STL is damaged; export it again, preferably as binary STL"
FACET = ("facet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
         "endloop\nendfacet\n")


def _error(tmp_path: Path, data: bytes | str, name: str = "part.stl") -> ModelFileError:
    path = tmp_path / name
    path.write_bytes(data.encode("ascii") if isinstance(data, str) else data)
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    return caught.value


def _parsed(path: Path) -> np.ndarray:
    """The triangles as parsed, before the reader's sanity checks (which refuse the single flat
    triangles these tests are about)."""
    return read_stl_bytes(path.read_bytes(), origin=path, name=path.stem, source=path).triangles


def _binary(tmp_path: Path, header: bytes = b"") -> bytes:
    path = tmp_path / "source.stl"
    write_stl(path, TETRA)
    data = path.read_bytes()
    return header.ljust(80, b" ")[:80] + data[80:] if header else data


class TestBinaryErrors:
    """Binary size errors say what was expected, what was found, and what to do."""

    def test_a_file_shorter_than_the_header(self, tmp_path: Path) -> None:
        error = _error(tmp_path, b"\x01" * 83)
        assert error.reason == "binary STL is 83 bytes, shorter than its 84-byte header"
        assert error.hint == "the file was cut short; copy or export it again"

    def test_a_truncated_file(self, tmp_path: Path) -> None:
        error = _error(tmp_path, _binary(tmp_path)[:-1])
        assert error.reason == (
            "binary STL is truncated: its header declares 4 triangles, so expected 284 bytes, "
            "but the file has 283 bytes (room for 3 triangles)"
        )
        assert error.hint == "the file was cut short; copy or export it again"

    def test_a_header_starting_with_solid_does_not_make_a_cut_binary_file_ascii(
        self, tmp_path: Path
    ) -> None:
        error = _error(tmp_path, _binary(tmp_path, b"solid exported by CAD")[:-10])
        assert error.reason.startswith("binary STL is truncated")

    def test_text_that_does_not_start_with_solid_is_not_read_as_ascii(
        self, tmp_path: Path
    ) -> None:
        error = _error(tmp_path, "hello\n" + FACET + "endsolid x\n")
        assert error.reason.startswith("this is a text file that is not an STL")

    def test_a_header_only_file_is_binary_with_no_triangles(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.stl"
        path.write_bytes(b"\x00" * 84)
        assert stl_completeness(path)
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert "shorter than" not in caught.value.reason
        assert "no triangles" in caught.value.reason


class TestAsciiDetails:
    """ASCII files: leading blanks, indented endsolid, exact error texts."""

    def test_leading_blanks_before_solid_are_fine(self, tmp_path: Path) -> None:
        path = tmp_path / "a.stl"
        path.write_text("\n   solid x\n" + FACET + "endsolid x\n", encoding="ascii")
        assert stl_completeness(path)
        assert _parsed(path).shape == (1, 3, 3)

    def test_an_indented_endsolid_line_ends_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "a.stl"
        path.write_text("solid x\n" + FACET + "    endsolid x\n", encoding="ascii")
        assert stl_completeness(path)
        assert _parsed(path).shape == (1, 3, 3)

    def test_text_that_is_not_an_stl_is_not_complete(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.stl"
        path.write_text("hello\nendsolid\n", encoding="ascii")
        assert not stl_completeness(path)

    def test_a_single_line_without_endsolid_is_reported(self, tmp_path: Path) -> None:
        error = _error(tmp_path, "solid x")
        assert error.reason == "ASCII STL ends without 'endsolid' (at line 1)"
        assert error.hint

    def test_the_line_named_is_the_last_line_with_text(self, tmp_path: Path) -> None:
        # Cut short after two of a facet's vertices: five lines of text, each ended by a newline,
        # then two blank lines. An editor shows the last text on line 5.
        cut = "solid x\n" + "".join(FACET.splitlines(keepends=True)[:4]) + "\n\n"
        assert cut.count("\n") == 7
        error = _error(tmp_path, cut)
        assert error.reason == "ASCII STL ends without 'endsolid' (at line 5)"

    def test_a_malformed_facet_after_a_good_one_is_named_by_its_line(
        self, tmp_path: Path
    ) -> None:
        broken = "facet normal 0 0 1\nouter loop\nvertex 0 0 0\nendloop\nendfacet\n"
        error = _error(tmp_path, "solid x\n" + FACET + broken + "endsolid x\n")
        assert error.reason == (
            "line 9: malformed facet (expected 'facet normal x y z', 'outer loop', three "
            "'vertex x y z' lines, 'endloop', 'endfacet')"
        )
        assert error.hint == DAMAGED_HINT

    def test_a_bad_number_in_the_normal_is_named_by_its_line(self, tmp_path: Path) -> None:
        error = _error(tmp_path, "solid x\n" + FACET.replace("normal 0 0 1", "normal 0,5 0 1")
                       + "endsolid x\n")
        assert error.reason == "line 2: '0,5' is not a number"
        assert error.hint == DAMAGED_HINT

    def test_ascii_values_are_read_as_float32(self, tmp_path: Path) -> None:
        path = tmp_path / "a.stl"
        path.write_text("solid x\n" + FACET.replace("vertex 1 0 0", "vertex 0.1 0 0")
                        + "endsolid x\n", encoding="ascii")
        triangles = _parsed(path)
        assert triangles.dtype == np.float32
        assert triangles[0, 1, 0] == np.float32(0.1)


class TestWriting:
    """Written files carry unit normals, float32 values and the name."""

    def test_binary_records_carry_unit_normals_and_zero_for_degenerate_triangles(
        self, tmp_path: Path
    ) -> None:
        flat = np.array([[[0, 0, 0], [1, 1, 1], [2, 2, 2]]], dtype=np.float32)
        path = tmp_path / "b.stl"
        write_stl(path, np.concatenate([TRIANGLE, flat]))
        records = np.frombuffer(path.read_bytes(), dtype=BINARY_RECORD_DTYPE, offset=84)
        assert records["normal"].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]

    def test_ascii_output_writes_float32_values_and_the_name(self, tmp_path: Path) -> None:
        path = tmp_path / "a.stl"
        write_stl(path, [[[0, 0, 0], [1 / 3, 0, 0], [0, 1, 0]]], ascii=True)
        lines = path.read_text(encoding="ascii").splitlines()
        assert lines[0] == "solid " and lines[-1] == "endsolid "
        assert "      vertex 0.333333343 0 0" in lines
        assert "  facet normal 0 0 1" in lines

    def test_binary_header_names_the_model(self, tmp_path: Path) -> None:
        path = tmp_path / "b.stl"
        write_stl(path, TRIANGLE)
        assert path.read_bytes()[:80] == b"binary STL ".ljust(80)
        write_stl(path, TRIANGLE, name="crown")
        assert path.read_bytes()[:80] == b"binary STL crown".ljust(80)

    def test_names_outside_ascii_and_line_breaks_are_written_safely(
        self, tmp_path: Path
    ) -> None:
        binary, text = tmp_path / "b.stl", tmp_path / "a.stl"
        write_stl(binary, TRIANGLE, name="cr\u00f4ne 12")
        assert binary.read_bytes()[:80] == b"binary STL cr?ne 12".ljust(80)
        write_stl(text, TRIANGLE, ascii=True, name="cr\u00f4ne\n12")
        lines = text.read_text(encoding="ascii").splitlines()
        assert (lines[0], lines[-1]) == ("solid cr?ne 12", "endsolid cr?ne 12")
        assert _parsed(text).shape == (1, 3, 3)
