"""A number longer than any number may be (thousands of digits) in a text model is refused at
its line, before the readers convert their numbers to an array as wide as the longest."""

from __future__ import annotations

from pathlib import Path

from geometry_factories import refusal

from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.obj import SLICE_BYTES

LONG = "1" + "0" * 4000  # 4,001 characters
CORNERS = ("0 0 0", "10 0 0", "0 10 0")


def facet(*vertices: str) -> str:
    body = "".join(f"    vertex {v}\n" for v in vertices)
    return f"  facet normal 0 0 1\n   outer loop\n{body}   endloop\n  endfacet\n"


class TestAsciiStl:
    """The facet holding the number is named; a facet malformed before it is named first."""

    def test_the_number_is_named_at_its_line_in_a_later_facet(self, tmp_path: Path) -> None:
        path = tmp_path / "part.stl"
        facets = facet(*CORNERS) * 2 + facet(f"{LONG} 0 0", *CORNERS[1:])
        path.write_text(f"solid x\n{facets}endsolid x\n", encoding="ascii")
        caught = refusal(path)
        # Line 1 the solid, 7 lines a facet: the third facet's first vertex is line 18.
        assert caught.reason == "line 18: a number 4,001 characters long (numbers have at most 64)"
        assert caught.hint == "the ASCII STL is damaged; export it again, preferably as binary STL"

    def test_a_facet_short_of_a_vertex_before_it_is_named_as_malformed(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "part.stl"
        facets = facet(*CORNERS) + facet(*CORNERS[:2]) + facet(f"{LONG} 0 0", *CORNERS[1:])
        path.write_text(f"solid x\n{facets}endsolid x\n", encoding="ascii")
        assert refusal(path).reason.startswith("line 9: malformed facet (expected")


    def test_the_number_is_named_in_a_last_facet_without_its_end(self, tmp_path: Path) -> None:
        path = tmp_path / "part.stl"
        cut = facet(f"{LONG} 0 0", *CORNERS[1:]).replace("  endfacet\n", "")
        path.write_text(f"solid x\n{facet(*CORNERS)}{cut}endsolid x\n", encoding="ascii")
        assert refusal(path).reason == (
            "line 11: a number 4,001 characters long (numbers have at most 64)")


class TestObj:
    """A coordinate or an index so long is named at its line, in any slice of the file."""

    def test_a_coordinate(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_text(f"v 0 0 0\nv 0 {LONG} 0 # {LONG}\nv 0 1 0\nf 1 2 3\n", encoding="ascii")
        caught = refusal(path)
        assert caught.reason == "line 2: a number 4,001 characters long (numbers have at most 64)"
        assert caught.hint == "the OBJ file is damaged; export it again"

    def test_a_short_vertex_before_one_with_the_number_is_named_first(
        self, tmp_path: Path
    ) -> None:
        # The search for the long number stays on the short vertex's own line.
        path = tmp_path / "part.obj"
        path.write_text(f"v 0 0 0\nv 1 2\nv 0 {LONG} 0\nf 1 2 3\n", encoding="ascii")
        assert refusal(path).reason == "line 2: a vertex needs x y z"

    def test_a_last_vertex_without_its_line_end(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_text(f"f 1 2 3\nv 0 0 0\nv 1 0 0\nv 0 {LONG} 0", encoding="ascii")
        assert refusal(path).reason == (
            "line 4: a number 4,001 characters long (numbers have at most 64)")

    def test_a_long_comment_after_the_coordinates_is_no_number(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_text(f"v 0 0 0 #{LONG}\nv 10 0 0\nv 0 10 0\nv 0 0 10\n"
                        "f 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n", encoding="ascii")
        assert read_mesh(path).triangles.shape == (4, 3, 3)

    def test_an_index_in_a_later_slice_and_not_its_first_face(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        faces = SLICE_BYTES // len("f 1 2 3\n") + 1000  # the long one is in the second slice
        text = "v 0 0 0\nv 1 0 0\nv 0 1 0\n" + "f 1 2 3\n" * faces
        text += f"f 1 2 3\nf 1 2 3\nf 1 2 {LONG[:-1]}3\nf 1 2 3\n"
        path.write_text(text, encoding="ascii")
        line = 3 + faces + 3
        assert refusal(path).reason == (
            f"line {line}: a number 4,001 characters long (numbers have at most 64)")
