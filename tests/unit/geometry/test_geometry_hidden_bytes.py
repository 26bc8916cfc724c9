"""A number of an ASCII STL or OBJ holding a byte no number has is refused with its line.

Before: numpy drops a token's trailing NULs (it pads its byte arrays with them), so ``10\\x00``
was read as 10; a control byte after an OBJ face's indices failed the reader with
StopIteration (its tokens were counted apart from the conversion's); and an ASCII STL whose
first 512 bytes held a byte over 127 (an Arabic-Indic digit, a zero-width space, a solid's
name in UTF-8) was "not a mesh: neither ASCII STL text nor binary STL triangles", without
its line. A token is shown as UTF-8 where it is, escaped where not (``'10\\x00'``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from geometry_factories import refusal

from preform_pipeline.geometry import read_mesh, write_stl
from preform_pipeline.geometry.stl import stl_completeness

# The corner tetrahedron, 10 mm, as write_stl writes it: facet k's "facet normal" line is
# line 2 + 7k; its vertices follow on the three lines after "outer loop".
_CORNERS = {"a": "0 0 0", "b": "10 0 0", "c": "0 10 0", "d": "0 0 10"}
_FACETS = ("acb", "abd", "adc", "bcd")


def _ascii_stl(name: str = "tetra") -> str:
    facets = "".join(
        "  facet normal 0 0 0\n    outer loop\n"
        + "".join(f"      vertex {_CORNERS[corner]}\n" for corner in corners)
        + "    endloop\n  endfacet\n"
        for corners in _FACETS)
    return f"solid {name}\n{facets}endsolid {name}\n"


#: A solid name that puts every facet past the 512 bytes the reader judges "text?" by.
LONG_NAME = "n" * 600
#: The first "vertex 10 0 0": facet 1's third vertex (b), on line 6.
B_LINE = "      vertex 10 0 0\n"
# An OBJ whose first line (a comment) fills the kilobyte the reader judges binary or text
# by: its vertices are lines 2 to 5, its faces 6 to 9.
OBJ = ("#" + "c" * 1100 + "\nv 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\n"
       "f 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


class TestAsciiStlNumbers:
    """A facet number with a NUL, a hidden character or another script's digit is named."""

    # Past the 512 bytes whose text is judged, and (TestWhatFollowsTheNameDecidesAsciiStl)
    # in them: the NULs past them here, the others in the first facet too.
    @pytest.mark.parametrize(("solid", "number"), [
        (LONG_NAME, "10\x00"), (LONG_NAME, "1\x000"), (LONG_NAME, "10\x00\x00"),
        *((solid, number) for solid in ("tetra", LONG_NAME)
          for number in ("\u0661\u0660", "10\u200b", "10\u00ad")),
    ])
    def test_is_refused_with_its_line(self, tmp_path: Path, solid: str, number: str) -> None:
        text = _ascii_stl(solid).replace(B_LINE, B_LINE.replace("10", number, 1), 1)
        assert refusal(_write(tmp_path, "part.stl", text)).reason == (
            f"line 6: {number!r} is not a number")

    def test_a_nul_outside_the_numbers_leaves_them_read(self, tmp_path: Path) -> None:
        # Between two facets, past the text probe: no number holds it, the file is read.
        text = _ascii_stl(LONG_NAME).replace("  endfacet\n", "  endfacet\n\x00", 1)
        mesh = read_mesh(_write(tmp_path, "part.stl", text))
        assert (mesh.triangle_count, mesh.size) == (4, pytest.approx((10.0, 10.0, 10.0)))

    # The last: two-byte characters from byte 7, so byte 512 (where the probe ends) cuts one.
    @pytest.mark.parametrize("name", ["Zahnkrone \u00fc", "\u0661\u0662 \u6b6f",
                                      "x" + "\u00fc" * 300])
    def test_a_solids_name_in_utf8_is_text(self, tmp_path: Path, name: str) -> None:
        path = _write(tmp_path, "part.stl", _ascii_stl(name))
        assert read_mesh(path).triangle_count == 4
        assert stl_completeness(path) is True

    def test_utf8_text_that_is_no_stl_is_said_to_be_text(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "part.stl", "\u0661\u0662 " * 200)
        assert refusal(path).reason == (
            "this is a text file that is not an STL (an ASCII STL starts with 'solid')")


class TestObjNumbers:
    """An OBJ coordinate or index with a NUL or a control byte is named with its line."""

    @pytest.mark.parametrize(("line", "changed", "reason"), [
        ("v 10 0 0", "v 10\x00 0 0", "line 3: '10\\x00' is not a number"),
        ("v 10 0 0", "v 1\x000 0 0", "line 3: '1\\x000' is not a number"),
        ("v 10 0 0", "v 10\u200b 0 0", "line 3: '10\\u200b' is not a number"),
        ("f 1 3 2", "f 1 3 2\x00", "line 6: '2\\x00' is not a vertex index"),
        ("f 1 3 2", "f 1 3\x00 2", "line 6: '3\\x00' is not a vertex index"),
        ("f 1 3 2", "f 1 3 2 \x01", "line 6: '\\x01' is not a vertex index"),
        ("f 2 3 4", "f 2 3 4 \x01", "line 9: '\\x01' is not a vertex index"),
        ("f 2 3 4", "f 2 3 4 \x00", "line 9: '\\x00' is not a vertex index"),
        ("f 2 3 4", "f 2 3 4 \x0e", "line 9: '\\x0e' is not a vertex index"),
        ("f 2 3 4", "f 2 3 4 \x1f", "line 9: '\\x1f' is not a vertex index"),
        # Bytes the guard passes and the conversion refuses: named by the patterns too.
        ("v 10 0 0", "v 1e 0 0", "line 3: '1e' is not a number"),
        ("v 10 0 0", "v 1-2 0 0", "line 3: '1-2' is not a number"),
    ])
    def test_is_refused_with_its_line(
        self, tmp_path: Path, line: str, changed: str, reason: str
    ) -> None:
        path = _write(tmp_path, "part.obj", OBJ.replace(line + "\n", changed + "\n", 1))
        assert refusal(path).reason == reason

    def test_tabs_and_other_blanks_between_indices_separate_them(self, tmp_path: Path) -> None:
        # TAB, VT and FF are blanks to the tokens' count as to their conversion.
        text = OBJ.replace("f 1 3 2\n", "f 1\t3\x0b2\x0c\n").replace("f 2 3 4\n", "f\t2\t3\t4\n")
        mesh = read_mesh(_write(tmp_path, "part.obj", text))
        assert (mesh.triangle_count, mesh.size) == (4, pytest.approx((10.0, 10.0, 10.0)))

    def test_a_nul_in_a_comment_leaves_the_numbers_read(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "part.obj", OBJ.replace("v 0 0 10\n", "v 0 0 10\n# a\x00b\n"))
        mesh = read_mesh(path)
        assert (mesh.triangle_count, mesh.size) == (4, pytest.approx((10.0, 10.0, 10.0)))


class TestWhatFollowsTheNameDecidesAsciiStl:
    """An ASCII STL is one whose ``solid`` line is followed by facets, whatever bytes its name
    holds: a Latin-1 name, or a NUL in the first 512 bytes, no longer makes it "not a mesh"
    or binary. A binary STL whose header starts ``solid`` stays binary, whole or cut."""

    @pytest.mark.parametrize("name", [b"Zahnkr\xf6ne", b"a\x00b", b"\xc3(\x00\x01\xff"])
    def test_a_name_of_any_bytes_is_read(self, tmp_path: Path, name: bytes) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(_ascii_stl("tetra").encode().replace(b"tetra", name))
        mesh = read_mesh(path)
        assert (mesh.triangle_count, mesh.size) == (4, pytest.approx((10.0, 10.0, 10.0)))
        assert stl_completeness(path) is True  # a hot folder takes it
        assert stl_completeness(_cut(path, b"endsolid")) is False  # and waits while cut

    @pytest.mark.parametrize(("before", "end"), [(b"", b"\r"), (b"", b"\r\n"),
                                                 (b"\n \n", b"\n")])
    def test_other_line_ends_and_blank_lines_before_solid_are_read(
        self, tmp_path: Path, before: bytes, end: bytes
    ) -> None:
        text = _ascii_stl("tetra").encode().replace(b"tetra", b"Zahnkr\xf6ne")
        path = tmp_path / "part.stl"
        path.write_bytes(before + text.replace(b"\n", end))
        assert read_mesh(path).triangle_count == 4

    def test_an_empty_solid_so_named_is_ascii_without_triangles(self, tmp_path: Path) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(b"solid Zahnkr\xf6ne\nendsolid Zahnkr\xf6ne\n")
        assert refusal(path).reason == "the file contains no triangles"

    def test_a_nul_between_its_first_facets_leaves_them_read(self, tmp_path: Path) -> None:
        text = _ascii_stl("tetra").replace("  endfacet\n", "  endfacet\n\x00", 1)
        assert read_mesh(_write(tmp_path, "part.stl", text)).triangle_count == 4

    def test_a_nul_in_its_first_facets_number_is_named_with_its_line(
        self, tmp_path: Path
    ) -> None:
        text = _ascii_stl("tetra").replace(B_LINE, B_LINE.replace("10", "10\x00", 1), 1)
        assert refusal(_write(tmp_path, "part.stl", text)).reason == (
            "line 6: '10\\x00' is not a number")

    def test_one_cut_short_says_where(self, tmp_path: Path) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(_ascii_stl("tetra").encode().replace(b"tetra", b"Zahnkr\xf6ne"))
        assert refusal(_cut(path, b"  endfacet")).reason == (
            "ASCII STL ends without 'endsolid' (at line 28)")  # facet 4's endloop

    @pytest.mark.parametrize("header", [b"solid part", b"solid part\n", b"solid part\r\n  "])
    def test_a_binary_header_starting_solid_is_binary_whole_or_cut(
        self, tmp_path: Path, header: bytes
    ) -> None:
        path = tmp_path / "part.stl"
        write_stl(path, _TETRA)
        whole = header.ljust(80, b"\x00") + path.read_bytes()[80:]
        path.write_bytes(whole)
        assert read_mesh(path).triangle_count == 4
        path.write_bytes(whole[:-30])
        assert refusal(path).reason.startswith("binary STL is truncated: its header declares "
                                               "4 triangles, so expected 284 bytes")
        path.write_bytes(whole + b" " * 20)
        assert refusal(path).reason.startswith("binary STL is longer than its header says")


class TestAStrayControlByteInAnObjsFirstKilobyte:
    """An OBJ is text read line by line: a NUL in a comment of its first kilobyte leaves it
    read, one in a number is named with its line; binary data is still no OBJ."""

    def test_a_nul_in_a_first_comment_leaves_it_read(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "part.obj", "# exported\x00 by X\n" + OBJ[1102:])
        mesh = read_mesh(path)
        assert (mesh.triangle_count, mesh.size) == (4, pytest.approx((10.0, 10.0, 10.0)))

    def test_a_nul_in_a_first_number_is_named_with_its_line(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "part.obj", OBJ[1102:].replace("v 10 0 0", "v 10\x00 0 0"))
        assert refusal(path).reason == "line 2: '10\\x00' is not a number"

    def test_a_binary_stl_named_obj_is_a_binary_file(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        write_stl(path, _TETRA)
        assert refusal(path).reason == "this is a binary file, not an OBJ (an OBJ is text)"


_TETRA = [[[0, 0, 0], [0, 10, 0], [10, 0, 0]], [[0, 0, 0], [10, 0, 0], [0, 0, 10]],
          [[0, 0, 0], [0, 0, 10], [0, 10, 0]], [[10, 0, 0], [0, 10, 0], [0, 0, 10]]]


def _cut(path: Path, before: bytes) -> Path:
    """``path`` cut just before the last ``before`` in it (a copy still being written)."""
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[:data.rindex(before)])
    return cut
