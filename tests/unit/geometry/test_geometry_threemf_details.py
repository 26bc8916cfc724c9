"""Odd and hostile 3MF packages: what is read from them, and what the user is told."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import test_geometry_readers as readers

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh_bytes
from preform_pipeline.geometry.threemf import threemf_completeness

DAMAGED = "the 3MF package is damaged or incomplete; export it again"
PART = "3D/3dmodel.model"
CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"


def _zip(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _object(vertices: str, triangles: str, object_id: str = "1") -> str:
    return (f'<object id="{object_id}" type="model"><mesh><vertices>{vertices}</vertices>'
            f"<triangles>{triangles}</triangles></mesh></object>")


def _vertices(*points: tuple[float, float, float]) -> str:
    return "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in points)


def _model(resources: str, build: str = '<item objectid="1"/>', unit: str = "") -> str:
    unit_attribute = f' unit="{unit}"' if unit else ""
    return (f'<model{unit_attribute} xmlns="{CORE}"><resources>{resources}</resources>'
            f"<build>{build}</build></model>")


TETRA = _vertices((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1))
TETRA_FACES = ('<triangle v1="0" v2="2" v3="1"/><triangle v1="0" v2="1" v3="3"/>'
               '<triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/>')


def _refusal(model: str) -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        read_mesh_bytes(_zip({PART: model}), ".3mf", name="m")
    assert caught.value.path == Path("m.3mf") and caught.value.hint == DAMAGED
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
    return caught.value


class TestBadTriangles:
    """A triangle with a missing, non-integer or out-of-range index is named."""

    @pytest.mark.parametrize("triangle", [
        '<triangle v1="0" v2="1"/>',
        '<triangle v1="0" v2="1" v3="two"/>',
        '<triangle v1="0" v2="1" v3="2.5"/>',
        '<triangle v1="0" v2="1" v3="99999999999999999999999"/>',
    ])
    def test_a_missing_or_non_integer_index_is_refused(self, triangle: str) -> None:
        refusal = _refusal(_model(_object(TETRA, TETRA_FACES + triangle)))
        assert refusal.reason == (
            f"{PART}: object 1: a triangle has a missing or non-integer index")
        assert str(refusal) == f"m.3mf: {refusal.reason} ({DAMAGED})"

    def test_the_out_of_range_index_is_named_not_the_first_of_its_row(self) -> None:
        five = TETRA + _vertices((1, 1, 1))
        refusal = _refusal(_model(_object(five, '<triangle v1="4" v2="0" v3="9"/>')))
        assert refusal.reason == (
            f"{PART}: object 1: triangle 1 uses vertex index 9, but the object has 5 vertices")


class TestCompleteness:
    """A package is complete when its directory is intact and it holds a model part."""

    def test_damaged_relationships_still_find_the_usual_model_part(self, tmp_path: Path) -> None:
        path = tmp_path / "m.3mf"
        path.write_bytes(_zip({"_rels/.rels": "<Relationships", PART: readers.TestThreeMf._model(
            '<item objectid="1"/>')}))
        assert threemf_completeness(path) is True
        assert threemf_completeness(str(path)) is True

    def test_a_package_cut_short_is_not_complete(self, tmp_path: Path) -> None:
        data = _zip({PART: readers.TestThreeMf._model('<item objectid="1"/>')})
        path = tmp_path / "m.3mf"
        path.write_bytes(data[: len(data) - 10])
        assert threemf_completeness(path) is False


class TestReferences:
    """An item or component without an object id refers to no object, and says so."""

    def test_a_build_item_without_an_object_id(self) -> None:
        refusal = _refusal(_model(_object(TETRA, TETRA_FACES), build="<item/>"))
        assert refusal.reason == f"{PART}: reference to undefined object id ''"

    def test_a_component_without_an_object_id(self) -> None:
        parts = _object(TETRA, TETRA_FACES) + (
            '<object id="2"><components><component/></components></object>')
        refusal = _refusal(_model(parts, build='<item objectid="2"/>'))
        assert refusal.reason == f"{PART}: reference to undefined object id ''"


class TestOutsideTheObjects:
    """Only elements inside an object are its geometry; the build holds items only."""

    def test_geometry_elements_in_the_build_are_not_added_to_the_last_object(self) -> None:
        stray = ('<vertex x="50" y="50" z="50"/><triangle v1="0" v2="1" v3="2"/>'
                 '<component objectid="1" transform="1 0 0 0 1 0 0 0 1 9 9 9"/>')
        model = _model(_object(TETRA, TETRA_FACES), build='<item objectid="1"/>' + stray)
        mesh = read_mesh_bytes(_zip({PART: model}), ".3mf", name="m")
        assert mesh.triangle_count == 4
        assert [b.tolist() for b in mesh.bounds] == [[0, 0, 0], [1, 1, 1]]


class TestMalformedXml:
    """Malformed XML in the model part is refused naming the part, line and column."""

    def test_a_model_part_cut_short(self) -> None:
        model = _model(_object(TETRA, TETRA_FACES))
        refusal = _refusal(model[:60])
        assert refusal.reason.startswith(f"{PART}: XML is malformed (")
        assert "at line 1, column" in refusal.reason
