"""Numbers as each format writes them, not as Python's float() and int() read them.

Before, ``1_0`` was read as ten by all three readers (float() and int() take underscores), and
a 3MF took ``inf``, ``nan``, ``infinity``, a no-break space around a number or between a
transform's numbers, and digits of other scripts (``\\u0661`` for one). The 3MF forms are the
core specification's (``ST_Number``, ``ST_Matrix3D``, ``ST_ResourceIndex``); the text forms
C's (see ``preform_pipeline/geometry/numerals.py``). The rule's whole-array guard is held to
its patterns by test_geometry_numerals_rule.py (hypothesis: kept apart for mutmut's runner).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from geometry_factories import refusal
from test_geometry_threemf_parts import _zip

from preform_pipeline.geometry import read_mesh, read_mesh_bytes, write_stl
from preform_pipeline.wording import quoted
from tests.hostile_corpus import tetra

PART = "3D/3dmodel.model"
CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
NUMBER_FORM = "a 3MF number is ASCII digits with an optional sign, decimal point and exponent"
AN_INDEX = "a vertex index (a 3MF index is ASCII digits, 0 for the object's first vertex)"
# What Python reads and no format defines; each is written into an attribute as it stands.
PYTHONISMS = ["1_0", "inf", "nan", "-Infinity", "\u0661", "\u00a01", "1\u2003", "1.", "1.e2"]
TETRA_OBJ = "v 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def _model(x: str = "1", v3: str = "1", transform: str = "") -> str:
    """A tetrahedron whose second vertex's x is ``x`` and whose first triangle's v3 is
    ``v3``, built with ``transform`` (the values go in as they stand)."""
    item = f' transform="{transform}"' if transform else ""
    return (f'<model unit="millimeter" xmlns="{CORE}"><resources><object id="1" type="model">'
            f'<mesh><vertices><vertex x="0" y="0" z="0"/><vertex x="{x}" y="0" z="0"/>'
            '<vertex x="0" y="1" z="0"/><vertex x="0" y="0" z="1"/></vertices><triangles>'
            f'<triangle v1="0" v2="2" v3="{v3}"/><triangle v1="0" v2="1" v3="3"/>'
            '<triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/></triangles>'
            f'</mesh></object></resources><build><item objectid="1"{item}/></build></model>')


def _read_3mf(model: str) -> tuple[float, float, float]:
    return read_mesh_bytes(_zip({PART: model}), ".3mf", name="m").size


def _refuse_3mf(model: str) -> str:
    from preform_pipeline.errors import ModelFileError

    with pytest.raises(ModelFileError) as caught:
        read_mesh_bytes(_zip({PART: model}), ".3mf", name="m")
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
    return caught.value.reason


class TestThreeMfNumbers:
    """A 3MF's coordinates, indices and transforms are its specification's forms only."""

    @pytest.mark.parametrize("text", PYTHONISMS)
    def test_a_coordinate_python_reads_is_refused_with_its_element(self, text: str) -> None:
        assert _refuse_3mf(_model(x=text)) == (
            f"{PART}: object 1: vertex 2: x={text!r} is not a number ({NUMBER_FORM})")

    @pytest.mark.parametrize("text", ["1_0", "\u0661", "\u00a01", "1.0", "inf"])
    def test_an_index_python_reads_is_refused_with_its_element(self, text: str) -> None:
        assert _refuse_3mf(_model(v3=text)) == (
            f"{PART}: object 1: triangle 1: v3={text!r} is not {AN_INDEX}")

    @pytest.mark.parametrize(("text", "reason"), [
        ("1e", "x='1e' is not a number"),  # within the guard's bytes, refused by float()
        ("1-2", "x='1-2' is not a number"),
        ("1_" + "0" * 60, f"x={quoted('1_' + '0' * 60, 40)} is not a number"),
    ])
    def test_a_coordinate_the_guard_passes_or_a_long_one(self, text: str, reason: str) -> None:
        assert _refuse_3mf(_model(x=text)) == (
            f"{PART}: object 1: vertex 2: {reason} ({NUMBER_FORM})")

    @pytest.mark.parametrize(("v3", "reason"), [
        ("1+1", f"v3='1+1' is not {AN_INDEX}"),
        ("x" * 60, f"v3={quoted('x' * 60, 40)} is not {AN_INDEX}"),
    ])
    def test_an_index_the_guard_passes_or_a_long_one(self, v3: str, reason: str) -> None:
        assert _refuse_3mf(_model(v3=v3)) == f"{PART}: object 1: triangle 1: {reason}"

    @pytest.mark.parametrize(("first", "named"), [
        # The largest index a 3MF allows, however written, is not beyond it: the next is.
        ("+00002147483647", "triangle 2: v3='9" + "9" * 22 + "'"),
        ("2147483647", "triangle 2: v3='9" + "9" * 22 + "'"),
        ("2147483648", "triangle 1: v3='2147483648'"),
        (" +0002147483648", "triangle 1: v3=' +0002147483648'"),
        ("9" * 60, f"triangle 1: v3={quoted('9' * 60, 40)}"),
    ])
    def test_the_first_index_beyond_the_limit_is_named(self, first: str, named: str) -> None:
        # An index beyond int64 in triangle 2 sends the reader to name the first offender.
        model = _model(v3=first).replace('v1="0" v2="1" v3="3"', f'v1="0" v2="1" v3="{"9" * 23}"')
        assert _refuse_3mf(model) == (
            f"{PART}: object 1: {named} is beyond the largest vertex index a 3MF allows "
            "(2,147,483,647)")

    @pytest.mark.parametrize(("old", "new", "reason"), [
        ('<vertex x="0" y="1" z="0"/>', '<vertex x="0" z="0"/>', "vertex 3 has no y"),
        ('<vertex x="0" y="1" z="0"/>', '<vertex x="0" y="1"/>', "vertex 3 has no z"),
        ('<triangle v1="0" v2="1" v3="3"/>', '<triangle v2="1" v3="3"/>', "triangle 2 has no v1"),
        ('<triangle v1="0" v2="1" v3="3"/>', '<triangle v1="0" v3="3"/>', "triangle 2 has no v2"),
    ])
    def test_a_missing_attribute_is_named(self, old: str, new: str, reason: str) -> None:
        assert _refuse_3mf(_model().replace(old, new)) == f"{PART}: object 1: {reason}"

    def test_a_long_transform_is_cut_short(self) -> None:
        transform = "1 " * 150
        assert _refuse_3mf(_model(transform=transform)) == (
            f"{PART}: build item 1: transform {quoted(transform, 200)} is not 12 numbers "
            f"({NUMBER_FORM})")

    @pytest.mark.parametrize("transform", [
        "1 0 0 0 1 0 0 0 1 0 0 1_0",
        "1 0 0 0 1 0 0 0 1 0 0 inf",
        "1\u00a00 0 0 1 0 0 0 1 0 0 0",  # 12 to Python's split(), 11 to XML
    ])
    def test_a_transform_python_reads_is_refused_with_its_item(self, transform: str) -> None:
        assert _refuse_3mf(_model(transform=transform)) == (
            f"{PART}: build item 1: transform {transform!r} is not 12 numbers ({NUMBER_FORM})")

    @pytest.mark.parametrize(("x", "v3", "transform", "size_x"), [
        ("+1", "+1", "", 1.0),
        (" 1.5E0&#9;", "&#10;1 ", "", 1.5),  # XML whitespace around a value is collapsed
        ("-.5e+1", "-0", "1 0 0 0 1 0 0 0 1 0 0 0", 5.0),
        ("2", "1", "2&#9;0 0 0 1 0 0 0 1 +0 -0 .0", 4.0),
    ])
    def test_the_forms_the_specification_allows_are_read(
        self, x: str, v3: str, transform: str, size_x: float
    ) -> None:
        assert _read_3mf(_model(x=x, v3=v3, transform=transform))[0] == pytest.approx(size_x)


class TestTextNumbers:
    """ASCII STL and OBJ numbers and indices are C's forms: no underscores, ASCII digits."""

    @pytest.mark.parametrize(("line", "token", "what"), [
        ("v 10 0 0", "1_0", "a number"), ("v 10 0 0", "1e1_0", "a number"),
        ("v 10 0 0", "\u0661", "a number"), ("f 1 3 2", "2_0", "a vertex index"),
        ("f 1 3 2", "0_3", "a vertex index"), ("f 1 3 2", "\u0663", "a vertex index"),
    ])
    def test_an_obj_coordinate_or_index(self, tmp_path: Path, line: str, token: str,
                                        what: str) -> None:
        path = tmp_path / "part.obj"
        # The second token of the vertex line (line 2) or of the face line (line 5).
        changed = line.replace(line.split()[2 if line[0] == "f" else 1], token, 1)
        path.write_bytes(TETRA_OBJ.replace(line, changed).encode())
        assert refusal(path).reason == (
            f"line {TETRA_OBJ.splitlines().index(line) + 1}: "
            f"{token!r} is not {what}")

    # (A digit of another script makes an STL's first bytes not text: "not a mesh", as before.)
    @pytest.mark.parametrize("token", ["1_0", "0_0", "1e0_1"])
    def test_an_ascii_stl_coordinate(self, tmp_path: Path, token: str) -> None:
        path = tmp_path / "part.stl"
        write_stl(path, tetra(), ascii=True)
        text = path.read_text(encoding="ascii").splitlines()
        text[3] = f"      vertex {token} 0 0"
        path.write_bytes("\n".join(text).encode() + b"\n")
        assert refusal(path).reason == f"line 4: {token!r} is not a number"

    def test_what_c_reads_is_read(self, tmp_path: Path) -> None:
        path = tmp_path / "part.obj"
        path.write_bytes(TETRA_OBJ.replace("v 10 0 0", "v +1.e1 0 0")
                         .replace("f 1 3 2", "f +1 -2 2").encode())
        assert read_mesh(path).size == pytest.approx((10.0, 10.0, 10.0))
