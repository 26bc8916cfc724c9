"""What a binary STL with nothing usable after its header is said to be: a file cut right
after the header is truncated, and bytes that are neither text nor triangles are not a mesh,
from a file and from bytes alike (real files in tmp_path)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.stl import BINARY_HEADER_BYTES, EXPORT_HINT, read_stl_bytes

DECLARED = 12
#: A CAD export's header (text, not "solid ...") and its triangle count, then nothing.
CUT_AFTER_HEADER = b"binary STL written by a CAD program".ljust(80) + struct.pack("<I", DECLARED)
#: Neither text nor 50-byte records of triangles: every float is NaN.
NOT_A_MESH = b"\xff" * 1000


def _reason(path: Path, data: bytes) -> ModelFileError:
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    return caught.value


class TestAFileCutRightAfterItsHeader:
    """An 84-byte binary STL declaring triangles is truncated, not 'not a mesh'."""

    def test_the_file_is_exactly_a_header(self) -> None:
        assert len(CUT_AFTER_HEADER) == BINARY_HEADER_BYTES

    def test_reading_it_says_how_many_triangles_are_missing(self, tmp_path: Path) -> None:
        error = _reason(tmp_path / "part.stl", CUT_AFTER_HEADER)
        expected = BINARY_HEADER_BYTES + 50 * DECLARED
        assert error.reason == (
            f"binary STL is truncated: its header declares {DECLARED} triangles, so expected "
            f"{expected} bytes, but the file has {BINARY_HEADER_BYTES} bytes "
            "(room for 0 triangles)")
        assert error.hint == "the file was cut short; copy or export it again"

    def test_reading_the_bytes_says_the_same(self, tmp_path: Path) -> None:
        origin = tmp_path / "part.stl"
        with pytest.raises(ModelFileError) as caught:
            read_stl_bytes(CUT_AFTER_HEADER, origin=origin, name="part", source=None)
        assert caught.value.reason.startswith("binary STL is truncated")


class TestBytesThatAreNoMesh:
    """A file of neither text nor triangles is said to be no mesh, with the export hint."""

    def test_reading_it_says_it_is_not_a_mesh(self, tmp_path: Path) -> None:
        error = _reason(tmp_path / "photo.stl", NOT_A_MESH)
        assert error.reason == (
            "this is not a mesh: neither ASCII STL text nor binary STL triangles")
        assert error.hint == EXPORT_HINT
        assert str(error).startswith(f"{tmp_path / 'photo.stl'}: this is not a mesh")
