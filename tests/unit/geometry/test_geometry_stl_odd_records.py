"""Binary STL files at the edges of what the reader decides: a header that starts like another
format, records that are no triangles (short normals, signalling NaNs), and a file that
shrank, grew or went away after its size was read (real files in tmp_path, bytes built by
hand; the size a listing gave is the reader's own argument)."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from preform_pipeline.errors import ModelFileError, NotAModelError
from preform_pipeline.geometry import DEFAULT_MAX_MODEL_FILE_BYTES, read_mesh, read_mesh_bytes
from preform_pipeline.geometry.completeness import format_completeness
from preform_pipeline.geometry.stl import (
    BINARY_HEADER_BYTES,
    EXPORT_HINT,
    STREAM_RECORDS,
    read_stl_file,
    write_stl,
)

#: The header's free text; BINARY_HEADER_BYTES (84) adds the triangle count.
HEADER_TEXT_BYTES = 80
NOT_A_MESH = "this is not a mesh: neither ASCII STL text nor binary STL triangles"


def _binary_stl(triangles: npt.NDArray[np.float32], header: bytes, tmp_path: Path) -> bytes:
    """An exact binary STL of ``triangles`` whose 80-byte header is ``header``."""
    written = tmp_path / "written.stl"
    write_stl(written, triangles)
    return header.ljust(HEADER_TEXT_BYTES, b" ") + written.read_bytes()[HEADER_TEXT_BYTES:]


def _record(normal: tuple[float, float, float], corner: float) -> bytes:
    vertices = (corner, 0.0, 0.0, 0.0, corner, 0.0, 0.0, 0.0, corner)
    return struct.pack("<12fH", *normal, *vertices, 0)


class TestAHeaderThatStartsLikeAnotherFormat:
    """A binary STL whose free-text header happens to start like a PLY file is still an STL:
    its size matches its triangle count, so the header is not judged as a signature."""

    HEADER = b"ply2stl 1.4 converted from scan.ply"

    def test_reading_the_bytes_gives_its_triangles(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        data = _binary_stl(tetrahedron, self.HEADER, tmp_path)
        mesh = read_mesh_bytes(data, ".stl", name="scan")
        assert mesh.triangle_count == 4
        np.testing.assert_array_equal(mesh.triangles, tetrahedron)

    def test_reading_the_file_gives_the_same(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        path = tmp_path / "scan.stl"
        path.write_bytes(_binary_stl(tetrahedron, self.HEADER, tmp_path))
        np.testing.assert_array_equal(read_mesh(path).triangles, tetrahedron)


#: A real binary STL of the shipped samples (1,084 bytes: 20 triangles).
SAMPLE_STL = Path(__file__).parents[3] / "sample_models" / "parts" / "l_bracket.stl"


class TestAHeaderThatStartsLikeAnotherFormatCutShortOrPadded:
    """A real binary STL whose free-text header starts like an image, an archive, a document
    or a program, cut short or with bytes added, is a damaged STL, not "no model": its
    triangles follow the header (session 42's review: it was "a PNG image, not an STL", and a
    hot folder told to keep the file out of the inbox instead of copying it again)."""

    HEADERS = (b"\x89PNG\r\n\x1a\n exported", b"PK\x03\x04 exported", b"%PDF-1.4 exported",
               b"BMW bracket rev 2", b"MZ-100 housing", b"Plywood jig", b"<?xml-ish name",
               b"ISO-10303-21 converted", b"#!part", b"glTF converted")

    @pytest.mark.parametrize("header", HEADERS)
    @pytest.mark.parametrize(("damage", "said"), [
        (lambda data: data[:-10], "binary STL is truncated"),
        (lambda data: data + b"\r\n", "binary STL is longer than its header says"),
    ], ids=["cut", "padded"])
    def test_it_is_said_damaged_when_read_as_bytes_or_as_a_file(
        self, header: bytes, damage: Callable[[bytes], bytes], said: str, tmp_path: Path
    ) -> None:
        real = SAMPLE_STL.read_bytes()
        data = damage(header.ljust(HEADER_TEXT_BYTES, b" ") + real[HEADER_TEXT_BYTES:])
        path = tmp_path / "part.stl"
        path.write_bytes(data)
        for read in (lambda: read_mesh_bytes(data, ".stl", name="part"), lambda: read_mesh(path)):
            with pytest.raises(ModelFileError) as caught:
                read()
            assert not isinstance(caught.value, NotAModelError)
            assert caught.value.reason.startswith(said)


class TestAHeaderThatStartsLikeAnImageWhileBeingCopied:
    """A binary STL whose header starts like a PNG, or a PLY, keeps the STL's rule for
    whether it is whole while being copied (it waits), and passes once whole; a real PNG
    named ``.stl`` has no rule (only time tells), as before."""

    @pytest.mark.parametrize("header", [b"\x89PNG\r\n\x1a\n exported", b"Plywood jig",
                                        b"BMW bracket rev 2"])
    def test_it_waits_while_cut_and_is_whole_when_whole(self, header: bytes,
                                                        tmp_path: Path) -> None:
        whole = header.ljust(HEADER_TEXT_BYTES, b" ") + SAMPLE_STL.read_bytes()[HEADER_TEXT_BYTES:]
        path = tmp_path / "part.stl"
        path.write_bytes(whole[:-500])
        assert format_completeness(path, path.stat().st_size) is False
        path.write_bytes(whole)
        assert format_completeness(path, path.stat().st_size) is True

    def test_a_real_png_named_stl_has_no_rule(self, tmp_path: Path) -> None:
        path = tmp_path / "photo.stl"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(7).bytes(4000))
        assert format_completeness(path, path.stat().st_size) is None


class TestRecordsWithShortNormals:
    """Records of small, finite numbers whose normals are neither unit length nor zero are not
    triangles: a file of them is no mesh, not a binary STL cut short."""

    def test_reading_it_says_it_is_not_a_mesh(self, tmp_path: Path) -> None:
        # Normals of length 0.5; the header declares 1,000 triangles, the file holds 10.
        records = b"".join(_record((0.3, 0.4, 0.0), 2.0) for _ in range(10))
        path = tmp_path / "part.stl"
        path.write_bytes(b"\x00" * HEADER_TEXT_BYTES + struct.pack("<I", 1000) + records)
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason == NOT_A_MESH
        assert caught.value.hint == EXPORT_HINT


class TestSignallingNaNs:
    """Bytes that read as signalling NaNs are judged no mesh without a numpy warning
    reaching the user's terminal."""

    def test_the_error_comes_alone(self, tmp_path: Path) -> None:
        # 0x7f800001: a float32 signalling NaN; widening it to float64 raises numpy's
        # "invalid value" flag, which the reader's check keeps to itself.
        path = tmp_path / "document.stl"
        path.write_bytes(b"\x01\x00\x80\x7f" * 250)
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            with pytest.raises(ModelFileError) as caught:
                read_mesh(path)
        assert caught.value.reason == NOT_A_MESH
        assert [str(w.message) for w in shown] == []


class TestAFileThatShrankAfterItsSizeWasRead:
    """A binary STL that is shorter when read than its size said is truncated, and the error
    names the file."""

    def test_the_error_names_the_file_and_what_is_left(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        path, size_when_listed = _listed(tmp_path, tetrahedron)
        with path.open("r+b") as handle:  # cut to the header and one triangle
            handle.truncate(BINARY_HEADER_BYTES + 50)
        with pytest.raises(ModelFileError) as caught:
            read_stl_file(path, size_when_listed, max_bytes=DEFAULT_MAX_MODEL_FILE_BYTES,
                          name="part", source=path)
        assert caught.value.path == path
        assert str(caught.value).startswith(
            f"{path}: binary STL is truncated: its header declares 4 triangles, so expected "
            f"{size_when_listed} bytes, but the file has {BINARY_HEADER_BYTES + 50} bytes")
        assert caught.value.hint == "the file was cut short; copy or export it again"


def _listed(tmp_path: Path, triangles: npt.NDArray[np.float32]) -> tuple[Path, int]:
    """``part.stl`` written with ``triangles``, and its size as a listing gives it."""
    path = tmp_path / "part.stl"
    write_stl(path, triangles)
    return path, path.stat().st_size


def _read_listed(path: Path, size_when_listed: int) -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        read_stl_file(path, size_when_listed, max_bytes=DEFAULT_MAX_MODEL_FILE_BYTES,
                      name="part", source=path)
    return caught.value


class TestAFileThatShrankAfterItsFirstStretch:
    """A file that is cut after the reader's first stretch of records says how many bytes
    it really has, counting the stretches already read."""

    def test_the_error_counts_every_byte_read(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        count = STREAM_RECORDS + 10
        path, size_when_listed = _listed(tmp_path, np.resize(tetrahedron, (count, 3, 3)))
        left = BINARY_HEADER_BYTES + 50 * (STREAM_RECORDS + 3) + 20
        with path.open("r+b") as handle:
            handle.truncate(left)
        error = _read_listed(path, size_when_listed)
        assert error.reason == (
            f"binary STL is truncated: its header declares {count} triangles, so expected "
            f"{size_when_listed} bytes, but the file has {left} bytes "
            f"(room for {STREAM_RECORDS + 3} triangles)")


class TestAFileThatGrewAfterItsSizeWasRead:
    """A file with more bytes when read than its size and header said is longer than its
    header says, and the error names the file."""

    def test_the_error_says_how_long_it_is_now(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        path, size_when_listed = _listed(tmp_path, tetrahedron)
        with path.open("ab") as handle:  # one more record, the header's count unchanged
            handle.write(b"\x00" * 50)
        error = _read_listed(path, size_when_listed)
        assert error.path == path
        assert error.reason == (
            "binary STL is longer than its header says: it declares 4 triangles, so "
            f"expected {size_when_listed} bytes, but the file has {size_when_listed + 50} "
            "bytes (room for 5)")
        assert error.hint == "the header's triangle count is wrong; export the model again"


class TestAFileThatGrewAfterItsFirstStretch:
    """A file of more than one stretch of records that grew after it was listed says how
    long it is now in full, not how far the last stretch's read reached."""

    def test_the_error_counts_every_byte_added(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        count = STREAM_RECORDS + 10
        path, size_when_listed = _listed(tmp_path, np.resize(tetrahedron, (count, 3, 3)))
        with path.open("ab") as handle:  # twenty more records, the header's count unchanged
            handle.write(b"\x00" * 50 * 20)
        error = _read_listed(path, size_when_listed)
        assert error.reason == (
            f"binary STL is longer than its header says: it declares {count} triangles, so "
            f"expected {size_when_listed} bytes, but the file has {size_when_listed + 1000} "
            f"bytes (room for {count + 20})")


class TestAFileGoneAfterItsSizeWasRead:
    """A file removed between its listing and its read cannot be read, and the error says
    what to check."""

    def test_the_error_says_why_and_what_to_check(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        path, size_when_listed = _listed(tmp_path, tetrahedron)
        path.unlink()
        error = _read_listed(path, size_when_listed)
        assert (error.path, error.reason) == (path, "cannot be read (No such file or directory)")
        assert error.hint == "check file permissions"
