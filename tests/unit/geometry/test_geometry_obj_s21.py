"""OBJ files that are binary or end in an empty face line are refused, not read in part.

Session 21's whole run of ``geometry/obj.py``: the binary refusal's wording, and the face
count of a last face line without vertices (``f`` and blanks, or ``f`` and a comment).
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
    """An .obj whose first kilobyte holds a NUL byte is named a binary file, not an OBJ."""

    def test_a_nul_after_valid_lines_is_refused_as_binary(self, tmp_path: Path) -> None:
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
