"""A binary STL must be exactly as long as its header declares: never shorter, never longer."""

from __future__ import annotations

from pathlib import Path

import pytest
from geometry_factories import box_triangles

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh, stl_completeness, write_stl

SHAPE = box_triangles(10.0, 4.0, 2.5)
DECLARED = len(SHAPE)
EXPECTED_BYTES = 84 + 50 * DECLARED


def _binary(tmp_path: Path, tail: bytes, *, name: str = "part.stl") -> Path:
    path = tmp_path / name
    write_stl(path, SHAPE)
    path.write_bytes(path.read_bytes() + tail)
    return path


class TestTrailingBytes:
    """Bytes after the declared triangles make the file unreadable, with both sizes named."""

    @pytest.mark.parametrize("extra", [1, 49, 50, 51, 4096])
    def test_a_longer_binary_file_is_refused_with_expected_and_actual_sizes(
        self, tmp_path: Path, extra: int
    ) -> None:
        path = _binary(tmp_path, b"\x00" * extra)
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        room = (EXPECTED_BYTES + extra - 84) // 50
        assert caught.value.reason == (
            f"binary STL is longer than its header says: it declares {DECLARED} "
            f"triangles, so expected {EXPECTED_BYTES} bytes, but the file has "
            f"{EXPECTED_BYTES + extra} bytes (room for {room})"
        )
        assert caught.value.path == path
        assert caught.value.hint

    def test_trailing_bytes_that_look_like_text_do_not_make_it_ascii(
        self, tmp_path: Path
    ) -> None:
        path = _binary(tmp_path, b"endsolid part\n")
        with pytest.raises(ModelFileError, match="longer than its header says"):
            read_mesh(path)

    def test_a_file_of_exactly_the_declared_size_reads_every_triangle(
        self, tmp_path: Path
    ) -> None:
        mesh = read_mesh(_binary(tmp_path, b""))
        assert mesh.triangles.shape == (DECLARED, 3, 3)

    def test_a_longer_binary_file_is_not_complete(self, tmp_path: Path) -> None:
        """A hot folder must not take a file that grows past its declared size."""
        assert stl_completeness(_binary(tmp_path, b"", name="whole.stl"))
        assert not stl_completeness(_binary(tmp_path, b"\x00" * 50, name="longer.stl"))
