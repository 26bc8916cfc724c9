"""STL files at the edges the whole mutation run of the reader found untested (session 19):
models read from memory, empty and miscounted binaries, records on the plausibility limits,
text with leading blanks, refusals decided from the head alone, a limit a file grew past,
and the writer's header and normals (real files in tmp_path, bytes built by hand)."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh, read_mesh_bytes
from preform_pipeline.geometry.sniff import EXPORT_HINT
from preform_pipeline.geometry.stl import read_stl_bytes, read_stl_file, write_binary_stl, write_stl

#: The header's free text; the triangle count follows it.
HEADER_TEXT_BYTES = 80
NOT_A_MESH = "this is not a mesh: neither ASCII STL text nor binary STL triangles"
CUT_SHORT = "the file was cut short; copy or export it again"
ASCII_CUBE_FACET = (
    "  facet normal 0 0 1\n    outer loop\n      vertex 0 0 0\n      vertex 1 0 0\n"
    "      vertex 0 1 0\n    endloop\n  endfacet\n"
)


def _record(normal: tuple[float, float, float], corner: float) -> bytes:
    vertices = (corner, 0.0, 0.0, 0.0, corner, 0.0, 0.0, 0.0, corner)
    return struct.pack("<12fH", *normal, *vertices, 0)


def _binary(header: bytes, count: int, records: bytes) -> bytes:
    return header.ljust(HEADER_TEXT_BYTES, b" ") + struct.pack("<I", count) + records


class TestAnImageReadFromMemory:
    """A PNG handed over as STL bytes is named for what it is, with the name it came under."""

    def test_the_error_says_it_is_a_png_image(self) -> None:
        png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 2
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(png, ".stl", name="bracket")
        assert caught.value.path == Path("bracket.stl")
        assert caught.value.reason == "this is a PNG image, not an STL"
        assert caught.value.hint == EXPORT_HINT


class TestAnEmptyBinarySTL:
    """An exporter's empty binary STL (84 bytes) holds no triangles, whatever its header says."""

    @pytest.mark.parametrize("header", [b"", b"ply2stl 1.4 converted from scan.ply"])
    def test_from_memory_and_from_a_file_it_holds_no_triangles(
        self, header: bytes, tmp_path: Path
    ) -> None:
        data = _binary(header, 0, b"")
        path = tmp_path / "empty.stl"
        path.write_bytes(data)
        for read in (lambda: read_mesh_bytes(data, ".stl", name="empty"), lambda: read_mesh(path)):
            with pytest.raises(ModelFileError) as caught:
                read()
            assert caught.value.reason == "the file contains no triangles"
            assert caught.value.path.name == "empty.stl"


class TestAHeaderThatCountsNoTriangles:
    """Triangles after a header whose count is 0: the file is longer than its header says."""

    def test_reading_the_bytes_says_how_much_longer(self) -> None:
        records = b"".join(_record((0.0, 0.0, 1.0), 2.0) for _ in range(3))
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(_binary(b"", 0, records), ".stl", name="part")
        assert caught.value.reason == (
            "binary STL is longer than its header says: it declares 0 triangles, so expected "
            "84 bytes, but the file has 234 bytes (room for 3)"
        )
        assert caught.value.hint == "the header's triangle count is wrong; export the model again"


class TestTheSourceOfAModelReadFromBytes:
    """The source a caller names is the one the model carries."""

    def test_a_binary_model_keeps_its_source(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        path = tmp_path / "tetra.stl"
        write_stl(path, tetrahedron)
        source = Path("/jobs/incoming/tetra.stl")
        mesh = read_stl_bytes(path.read_bytes(), origin=path, name="tetra", source=source)
        assert mesh.source == source
        np.testing.assert_array_equal(mesh.triangles, tetrahedron)


class TestRecordsOnThePlausibilityLimits:
    """Records say cut short, not no mesh: coordinates under 1e7, nine in ten normals unit or 0."""

    @pytest.mark.parametrize("corner", [1e7, 1e8])
    def test_coordinates_of_ten_million_or_more_are_not_a_mesh(
        self, corner: float, tmp_path: Path
    ) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(_binary(b"", 1000, _record((0.0, 0.0, 1.0), corner) * 10))
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason == NOT_A_MESH

    def test_one_record_in_ten_without_a_unit_normal_is_still_a_cut_short_stl(
        self, tmp_path: Path
    ) -> None:
        records = _record((0.0, 0.0, 1.0), 2.0) * 9 + _record((0.3, 0.4, 0.0), 2.0)
        path = tmp_path / "part.stl"
        path.write_bytes(_binary(b"", 1000, records))
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason.startswith("binary STL is truncated: its header declares")
        assert caught.value.hint == CUT_SHORT


    def test_a_normal_one_millionth_long_is_neither_zero_nor_unit(self, tmp_path: Path) -> None:
        # float32 components whose length, as the reader computes it in float64, is exactly
        # 1e-6: the limit below which a normal counts as zero. With eight unit normals and one
        # short one, that record decides: 8 in 10 is not enough.
        limit = (9.9389320e-07, 1.1034271e-07, 8.9580809e-10)
        assert float(np.linalg.norm(np.array(limit, np.float32).astype(np.float64))) == 1e-6
        records = (
            _record((0.0, 0.0, 1.0), 2.0) * 8 + _record(limit, 2.0) + _record((0.3, 0.4, 0.0), 2.0)
        )
        path = tmp_path / "part.stl"
        path.write_bytes(_binary(b"", 1000, records))
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason == NOT_A_MESH


class TestAnASCIISTLCutShort:
    """Text that stops before 'endsolid' is reported as cut short, with what to do."""

    def test_the_error_says_it_was_cut_short(self, tmp_path: Path) -> None:
        path = tmp_path / "part.stl"
        path.write_text("solid part\n" + ASCII_CUBE_FACET * 3, encoding="ascii")
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason.startswith("ASCII STL ends without 'endsolid'")
        assert caught.value.hint == CUT_SHORT


class TestAnASCIISTLWithLeadingBlanks:
    """Blank lines and spaces before 'solid' do not stop a text STL being read from a file."""

    def test_its_triangles_are_read(
        self, tetrahedron: npt.NDArray[np.float32], tmp_path: Path
    ) -> None:
        written = tmp_path / "written.stl"
        write_stl(written, tetrahedron, ascii=True, name="part")
        path = tmp_path / "part.stl"
        path.write_bytes(b"\n\n   " + written.read_bytes())
        mesh = read_mesh(path)
        np.testing.assert_array_equal(mesh.triangles, tetrahedron)


class TestRefusalsFromTheHead:
    """A file that is not a readable STL is refused from its head, never read whole."""

    # The module's promise; tracemalloc sees every allocation, numpy's included.

    SIZE = 8 * 1024 * 1024

    def _peak_of_refusal(self, path: Path) -> tuple[ModelFileError, int]:
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError) as caught:
                read_mesh(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return caught.value, peak

    def test_a_cut_short_binary_whose_header_says_solid(self, tmp_path: Path) -> None:
        # Many exporters start the binary header with "solid"; the records are not text.
        records = _record((0.0, 0.0, 1.0), 2.0) * (self.SIZE // 50)
        path = tmp_path / "large.stl"
        path.write_bytes(_binary(b"solid exported by CAD", len(records) // 50 + 10, records))
        error, peak = self._peak_of_refusal(path)
        assert error.reason.startswith("binary STL is truncated")
        assert peak < self.SIZE // 4

    @pytest.mark.parametrize("word", [b"abcde", b"abcdef"])
    def test_blanks_that_fill_the_head_but_for_a_few_bytes(
        self, word: bytes, tmp_path: Path
    ) -> None:
        # The reader looks at its first 3,284 bytes; here only their last few are not blank.
        head = b" " * (84 + 50 * 64 - len(word)) + word
        path = tmp_path / "large.stl"
        path.write_bytes(head + b"\x00" * self.SIZE)
        error, peak = self._peak_of_refusal(path)
        assert error.reason == (
            "this is a text file that is not an STL (an ASCII STL starts with 'solid')"
        )
        assert peak < self.SIZE // 4


    def test_a_few_bytes_then_blanks_that_fill_the_head(self, tmp_path: Path) -> None:
        # Blanks after the text, not before: still no ASCII STL, still refused from the head.
        path = tmp_path / "large.stl"
        path.write_bytes(b"abcd" + b" " * (84 + 50 * 64) + b"\x00" * self.SIZE)
        error, peak = self._peak_of_refusal(path)
        assert error.reason == (
            "this is a text file that is not an STL (an ASCII STL starts with 'solid')"
        )
        assert peak < self.SIZE // 4


class TestAnASCIISTLThatGrewPastTheLimit:
    """Text that grew past the reader's limit after its listing is refused, not read."""

    def test_the_limit_given_is_the_one_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "part.stl"
        path.write_text("solid part\n" + ASCII_CUBE_FACET + "endsolid part\n", encoding="ascii")
        listed = path.stat().st_size
        with path.open("a", encoding="ascii") as handle:  # it grows after the listing
            handle.write("solid more\n" + ASCII_CUBE_FACET * 50 + "endsolid more\n")
        with pytest.raises(ModelFileError) as caught:
            read_stl_file(path, listed, max_bytes=2048, name="part", source=path)
        assert caught.value.path == path
        assert "limit for model files" in caught.value.reason


class TestTheWrittenBinarySTL:
    """The binary header names the model or only the format; normals are the stored float32's."""

    def test_a_model_without_a_name_has_a_plain_header(
        self, tetrahedron: npt.NDArray[np.float32]
    ) -> None:
        stream = io.BytesIO()
        write_binary_stl(stream, tetrahedron)
        assert stream.getvalue()[:HEADER_TEXT_BYTES] == b"binary STL".ljust(HEADER_TEXT_BYTES)

    def test_float64_coordinates_write_the_bytes_of_their_float32_values(self) -> None:
        wide = np.random.default_rng(19).uniform(-50.0, 50.0, (2000, 3, 3))
        written = {}
        for triangles in (wide, wide.astype(np.float32)):
            stream = io.BytesIO()
            write_binary_stl(stream, triangles, name="part")
            written[triangles.dtype.name] = stream.getvalue()
        assert written["float64"] == written["float32"]
