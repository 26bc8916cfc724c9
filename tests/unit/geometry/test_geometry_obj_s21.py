"""OBJ files that are binary, end in an empty face, or hold huge indices are refused plainly.

Session 21's whole run of ``geometry/obj.py``: the binary refusal's wording, the face count
of a last face line without vertices (``f`` and blanks, or ``f`` and a comment), and a face
index too large for 64 bits, which crashed the reader with numpy's OverflowError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.sniff import EXPORT_HINT

VERTICES = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"
DAMAGED_HINT = "the OBJ file is damaged; export it again"


def _refusal(tmp_path: Path, data: bytes) -> ModelFileError:
    path = tmp_path / "part.obj"
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    assert caught.value.path == path
    return caught.value


class TestBinaryContent:
    """An .obj whose first kilobyte is binary data (control bytes throughout, not a stray
    one) is named a binary file, not an OBJ."""

    def test_binary_bytes_after_valid_lines_are_refused_as_binary(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 2 3 4\n\x00\x00\x01\x02 leftovers")
        assert error.reason == "this is a binary file, not an OBJ (an OBJ is text)"
        assert error.hint == EXPORT_HINT
        assert str(error).startswith(f"{tmp_path / 'part.obj'}: this is a binary file")


class TestEmptyLastFace:
    """A face line without vertices is refused even when it is the file's last face."""

    def test_a_last_face_of_only_a_blank_is_found_with_no_vertices(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 1 2 3\nf 1 3 4\nf \n")
        assert error.reason == "line 7: a face needs at least 3 vertices, found 0"
        assert error.hint == DAMAGED_HINT

    def test_a_sole_face_of_only_a_comment_is_found_with_no_vertices(
        self, tmp_path: Path
    ) -> None:
        error = _refusal(tmp_path, VERTICES + b"f # the exporter stopped here\n")
        assert error.reason == "line 5: a face needs at least 3 vertices, found 0"
        assert error.hint == DAMAGED_HINT

    def test_an_empty_last_face_after_negative_indices_is_named(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f -4 -3 -2\nf\t\n")
        assert error.reason == "line 6: a face needs at least 3 vertices, found 0"
        assert error.hint == DAMAGED_HINT


class TestIndicesBeyondSixtyFourBits:
    """A face index no 64-bit integer holds is out of range, named with its line, not a crash."""

    def test_a_huge_positive_index_is_out_of_range(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 1 2 3\nf 99999999999999999999 2 3\n")
        assert error.reason == (
            "line 6: vertex index 99999999999999999999 is out of range "
            "(the file defines 4 vertices)"
        )
        assert error.hint == DAMAGED_HINT

    def test_a_file_of_one_vertex_says_so_in_the_singular(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, b"v 0 0 0\nf 1 1 99999999999999999999\n")
        assert error.reason == (
            "line 2: vertex index 99999999999999999999 is out of range "
            "(the file defines 1 vertex)"
        )

    def test_a_huge_negative_index_is_out_of_range(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 1 2 -99999999999999999999\n")
        assert error.reason == (
            "line 5: vertex index -99999999999999999999 is out of range "
            "(the file defines 4 vertices)"
        )

    def test_the_first_index_past_int64_is_out_of_range(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 2 3 4\nf 1 9223372036854775808 2\n")
        assert error.reason == (
            "line 6: vertex index 9223372036854775808 is out of range "
            "(the file defines 4 vertices)"
        )

    def test_a_word_before_a_huge_index_is_the_one_named(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 1 corner 3\nf 99999999999999999999 1 2\n")
        assert error.reason == "line 5: 'corner' is not a vertex index"

    def test_a_huge_index_before_a_word_is_the_one_named(self, tmp_path: Path) -> None:
        error = _refusal(tmp_path, VERTICES + b"f 99999999999999999999 1 2\nf 1 corner 3\n")
        assert error.reason == (
            "line 5: vertex index 99999999999999999999 is out of range "
            "(the file defines 4 vertices)"
        )

    @pytest.mark.parametrize("index", [b"5", b"9223372036854775807"])
    def test_a_word_is_named_before_an_index_that_fits_but_is_out_of_range(
        self, tmp_path: Path, index: bytes
    ) -> None:
        # Every token is read as an integer before any is checked against the vertices.
        error = _refusal(tmp_path, VERTICES + b"f " + index + b" 1 2\nf 1 corner 3\n")
        assert error.reason == "line 6: 'corner' is not a vertex index"
