"""A 3MF's object ids are numbers, and a transform attribute is twelve of them.

The core specification's XSD (Appendix A) types ``id`` and ``objectid`` as ``ST_ResourceID``,
an ``xs:positiveInteger`` below 2^31, and ``transform`` as ``ST_Matrix3D``, twelve
``ST_Number``s. Before, ids were compared as text (``objectid="01"`` did not find ``id="1"``;
``id="top"`` and ``id="0"`` were taken) and ``transform=""`` was read as no transform, which
the schema's pattern and lib3mf (the 3MF Consortium's reader: "not enough values in matrix
string") refuse.
"""

from __future__ import annotations

import pytest
from test_geometry_threemf_details import PART, TETRA, TETRA_FACES, _model, _object, _refusal
from test_geometry_threemf_parts import _zip

from preform_pipeline.geometry import read_mesh_bytes
from preform_pipeline.geometry.numerals import MAX_RESOURCE_INDEX, xml_integer
from preform_pipeline.wording import quoted

AN_ID = "a 3MF object id is a whole number from 1 to 2,147,483,647 in ASCII digits"


def _read(model: str) -> tuple[int, tuple[float, float, float]]:
    mesh = read_mesh_bytes(_zip({PART: model}), ".3mf", name="m")
    return mesh.triangle_count, mesh.size


class TestIdsAreNumbers:
    """An id and a reference to it are compared as the numbers they write."""

    @pytest.mark.parametrize(("written", "referred"), [
        ("1", "01"), ("01", "1"), ("1", " +1\t"), ("007", "7"),
        ("2147483647", "02147483647"),
    ])
    def test_a_build_item_finds_its_object_however_the_number_is_written(
        self, written: str, referred: str
    ) -> None:
        model = _model(_object(TETRA, TETRA_FACES, object_id=written),
                       build=f'<item objectid="{referred}"/>')
        assert _read(model) == (4, pytest.approx((1.0, 1.0, 1.0)))

    def test_a_component_finds_its_object_however_the_number_is_written(self) -> None:
        parts = _object(TETRA, TETRA_FACES, object_id="02") + (
            '<object id="3"><components><component objectid="+2" '
            'transform="1 0 0 0 1 0 0 0 1 5 0 0"/></components></object>')
        assert _read(_model(parts, build='<item objectid="003"/>')) == (
            4, pytest.approx((1.0, 1.0, 1.0)))

    def test_an_undefined_reference_is_named_as_its_number(self) -> None:
        refusal = _refusal(_model(_object(TETRA, TETRA_FACES), build='<item objectid="07"/>'))
        assert refusal.reason == f"{PART}: reference to undefined object id 7"


class TestIdsThatAreNone:
    """An id that is no positive whole number below 2^31 is refused where it stands."""

    @pytest.mark.parametrize("text", [
        "top", "0", "-0", "-1", "00", "2147483648", "1.0", "1e3", "", "\u0661", "1_0",
        "9" * 5000,
    ])
    def test_an_objects_id(self, text: str) -> None:
        model = _model(_object(TETRA, TETRA_FACES, object_id=text), build="")
        assert _refusal(model).reason == (
            f"{PART}: object 1 (in file order): id={quoted(text, 40)} is not an object id "
            f"({AN_ID})")

    def test_the_second_objects_id_is_named_by_its_place(self) -> None:
        parts = _object(TETRA, TETRA_FACES) + _object(TETRA, TETRA_FACES, object_id="x2")
        assert _refusal(_model(parts)).reason == (
            f"{PART}: object 2 (in file order): id='x2' is not an object id ({AN_ID})")

    @pytest.mark.parametrize("text", ["0", "one", "2147483648"])
    def test_a_build_items_objectid(self, text: str) -> None:
        model = _model(_object(TETRA, TETRA_FACES),
                       build=f'<item objectid="1"/><item objectid="{text}"/>')
        assert _refusal(model).reason == (
            f"{PART}: build item 2: objectid={quoted(text, 40)} is not an object id ({AN_ID})")

    def test_a_components_objectid(self) -> None:
        parts = _object(TETRA, TETRA_FACES) + (
            '<object id="2"><components><component objectid="1"/><component objectid="0"/>'
            "</components></object>")
        assert _refusal(_model(parts, build='<item objectid="2"/>')).reason == (
            f"{PART}: object 2: component 2: objectid='0' is not an object id ({AN_ID})")

    def test_an_object_without_an_id(self) -> None:
        model = _model(_object(TETRA, TETRA_FACES).replace(' id="1"', ""))
        assert _refusal(model).reason == f"{PART}: object 1 (in file order) has no id"

    def test_one_id_given_twice_in_two_spellings(self) -> None:
        # Compared as text, the second object was a different one, and the build took the
        # first; which of two one id names, readers would not agree.
        parts = (_object(TETRA, TETRA_FACES)
                 + _object(TETRA.replace('x="1"', 'x="9"'), TETRA_FACES, object_id="01"))
        assert _refusal(_model(parts)).reason == (
            f"{PART}: object id 1 is given twice (id='1' and id='01'); each object needs an "
            "id of its own")


    def test_long_spellings_of_one_id_are_cut(self) -> None:
        first, second = "0" * 45 + "1", "+" + "0" * 50 + "1"
        parts = (_object(TETRA, TETRA_FACES, object_id=first)
                 + _object(TETRA, TETRA_FACES, object_id=second))
        assert _refusal(_model(parts)).reason == (
            f"{PART}: object id 1 is given twice (id={quoted(first, 40)} and "
            f"id={quoted(second, 40)}); each object needs an id of its own")
        assert quoted(first, 40).endswith("...'")


class TestAnEmptyTransform:
    """A transform attribute with no numbers is refused, not read as the identity."""

    @pytest.mark.parametrize("text", ["", "  ", "\t\n"])
    def test_on_a_build_item(self, text: str) -> None:
        model = _model(_object(TETRA, TETRA_FACES),
                       build=f'<item objectid="1" transform="{text}"/>')
        assert _refusal(model).reason == (
            f"{PART}: build item 1: transform is empty (a 3MF transform is 12 numbers; an item "
            "or component without one has no transform attribute)")

    def test_on_a_component(self) -> None:
        parts = _object(TETRA, TETRA_FACES) + (
            '<object id="2"><components><component objectid="1" transform=""/></components>'
            "</object>")
        assert _refusal(_model(parts, build='<item objectid="2"/>')).reason == (
            f"{PART}: object 2: component 1: transform is empty (a 3MF transform is 12 numbers; "
            "an item or component without one has no transform attribute)")

    def test_without_the_attribute_there_is_no_transform(self) -> None:
        assert _read(_model(_object(TETRA, TETRA_FACES))) == (4, pytest.approx((1.0, 1.0, 1.0)))


class TestTheIntegerRule:
    """numerals.xml_integer reads the XSD's integer form, and caps what is beyond the limit."""

    @pytest.mark.parametrize(("text", "value"), [
        ("0", 0), ("-0", 0), (" +007\t", 7), ("2147483647", MAX_RESOURCE_INDEX),
        ("2147483648", MAX_RESOURCE_INDEX + 1), ("00002147483648", MAX_RESOURCE_INDEX + 1),
        ("9" * 10, MAX_RESOURCE_INDEX + 1), ("9" * 11, MAX_RESOURCE_INDEX + 1),
        ("9" * 5000, MAX_RESOURCE_INDEX + 1),
        ("1.0", None), ("-1", None), ("\u0661", None), ("1_0", None), ("", None),
    ])
    def test_its_value(self, text: str, value: int | None) -> None:
        assert xml_integer(text) == value


class TestTransformEnds:
    """A transform is split and trimmed at XML whitespace only: other characters at its ends
    are no part of a number."""

    @pytest.mark.parametrize("text", [
        "\u00a01 0 0 0 1 0 0 0 1 0 0 0", "1 0 0 0 1 0 0 0 1 0 0 0\u2003",
        "1 0 0 0 1 0 0 0 1 0 0 0X", "X1 0 0 0 1 0 0 0 1 0 0 0",
    ])
    def test_is_refused(self, text: str) -> None:
        model = _model(_object(TETRA, TETRA_FACES),
                       build=f'<item objectid="1" transform="{text}"/>')
        assert _refusal(model).reason.startswith(
            f"{PART}: build item 1: transform {quoted(text, 200)} is not 12 numbers")
