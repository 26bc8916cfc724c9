"""Text models whose lines end in a CR alone (classic Mac OS), as LF and CRLF ones are read.

Before, a CR-only OBJ was "the file contains no triangles" (its patterns saw one line) and a
CR-only ASCII STL "ends without 'endsolid' (at line 1)": both untrue, and the hot folder's
judge held such an STL incomplete. Session 34: a file mixing LF lines with CR-only ones was
read as LF lines, each CR-only line joined to the next (an OBJ's vertex there was lost).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh, stl_completeness, write_stl
from tests.hostile_corpus import tetra

TETRA_OBJ = "v 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
LINE_ENDS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r", "mixed": ""}
# The "mixed" file's line ends, in turn: an LF file whose CR-only lines would be lost.
MIXED = ("\n", "\r", "\r\n", "\r")


def ended(text: str, end: str) -> bytes:
    """``text`` (LF lines) with its lines ended by ``LINE_ENDS[end]``, or in turn by MIXED."""
    if end != "mixed":
        return text.replace("\n", LINE_ENDS[end]).encode()
    lines = text.split("\n")
    return "".join(line + MIXED[i % len(MIXED)] for i, line in enumerate(lines[:-1])).encode() \
        + lines[-1].encode()


def ascii_stl(tmp_path: Path) -> str:
    path = tmp_path / "lf.stl"
    write_stl(path, tetra(), ascii=True)
    return path.read_text(encoding="ascii")


class TestReadAlike:
    """The same tetrahedron is read whatever its lines end with."""

    @pytest.mark.parametrize("end", LINE_ENDS)
    def test_an_obj(self, tmp_path: Path, end: str) -> None:
        path = tmp_path / "part.obj"
        path.write_bytes(ended(TETRA_OBJ, end))
        assert read_mesh(path).triangles.shape == (4, 3, 3)

    @pytest.mark.parametrize("end", LINE_ENDS)
    def test_an_ascii_stl_and_its_completeness(self, tmp_path: Path, end: str) -> None:
        path = tmp_path / "part.stl"
        path.write_bytes(ended(ascii_stl(tmp_path), end))
        assert np.array_equal(read_mesh(path).triangles, tetra())
        assert stl_completeness(path)


class TestErrorsNameTheLine:
    """An error in a CR-only file names the line an editor shows, as in an LF file."""

    @pytest.mark.parametrize("end", LINE_ENDS)
    def test_an_obj_index_out_of_range(self, tmp_path: Path, end: str) -> None:
        path = tmp_path / "part.obj"
        text = TETRA_OBJ.replace("f 1 4 3", "f 1 4 9")  # line 7
        path.write_bytes(ended(text, end))
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason == \
            "line 7: vertex index 9 is out of range (the file defines 4 vertices)"

    @pytest.mark.parametrize("end", LINE_ENDS)
    def test_an_ascii_stl_facet_cut_short(self, tmp_path: Path, end: str) -> None:
        lines = ascii_stl(tmp_path).splitlines()
        del lines[10]  # the second facet's first vertex; the facet starts at line 9
        path = tmp_path / "part.stl"
        path.write_bytes(ended("\n".join([*lines, ""]), end))
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason.startswith("line 9: malformed facet")
