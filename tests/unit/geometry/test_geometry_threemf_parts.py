"""Which model part of a 3MF package is read, and what a bad transform or package says."""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from pathlib import Path

import pytest
import test_geometry_readers as readers

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh_bytes

DAMAGED = "the 3MF package is damaged or incomplete; export it again"
ORIGIN = Path("m.3mf")
REL_TYPE = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"


def _zip(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _rels(*relations: tuple[str, str]) -> str:
    inner = "".join(f'<Relationship Target="{target}" Id="r{i}" Type="{kind}"/>'
                    for i, (target, kind) in enumerate(relations))
    return ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships">{inner}</Relationships>')


MM = readers.TestThreeMf._model('<item objectid="1"/>')
INCH = readers.TestThreeMf._model('<item objectid="1"/>', unit="inch")


class TestWhichModelPart:
    """The part the package's relationships name is read, else the usual name, else the
    first .model."""

    def test_the_part_named_by_the_relationships_wins_over_the_usual_name(self) -> None:
        data = _zip({"_rels/.rels": _rels(("/3D/Main.model", REL_TYPE)),
                     "3D/Main.model": INCH, "3D/3dmodel.model": MM})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)

    def test_a_relationship_of_another_type_is_not_followed(self) -> None:
        data = _zip({"_rels/.rels": _rels(("/3D/Thumb.model", "http://example.com/thumb")),
                     "3D/Thumb.model": INCH, "3D/3dmodel.model": MM})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((1.0,) * 3)

    def test_a_relationship_to_a_missing_part_falls_back_to_the_usual_name(self) -> None:
        data = _zip({"_rels/.rels": _rels(("/3D/Gone.model", REL_TYPE)),
                     "3D/3dmodel.model": INCH})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)

    def test_damaged_relationships_fall_back_to_the_usual_name(self) -> None:
        data = _zip({"_rels/.rels": "<Relationships", "3D/Main.model": MM,
                     "3D/3dmodel.model": INCH})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)

    def test_without_either_the_first_model_part_by_name_is_read(self) -> None:
        data = _zip({"b/second.model": MM, "a/first.model": INCH})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)

    def test_a_zip_without_any_model_part_is_not_a_3mf(self) -> None:
        with pytest.raises(ModelFileError, match=re.escape(
                "this ZIP archive has no model part (a 3MF package has 3D/3dmodel.model), "
                "so it is not a 3MF")):
            read_mesh_bytes(_zip({"readme.txt": "hello"}), ".3mf", name="m")


class TestModelContent:
    """A model without a unit is in millimetres; a bad transform is named, with what to do."""

    def test_a_model_without_a_unit_is_in_millimetres(self) -> None:
        model = MM.replace(' unit="millimeter"', "")
        data = _zip({"3D/3dmodel.model": model})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((1.0,) * 3)

    @pytest.mark.parametrize("transform", ["1 0 0 0 1 0 0 0 1 0 0", "1 0 0 0 1 0 0 0 1 0 0 x"])
    def test_a_transform_that_is_not_twelve_numbers_is_named(self, transform: str) -> None:
        model = readers.TestThreeMf._model(f'<item objectid="1" transform="{transform}"/>')
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(_zip({"3D/3dmodel.model": model}), ".3mf", name="m")
        assert f"transform {transform!r} is not 12 numbers" in str(caught.value)
        assert caught.value.hint == DAMAGED
        assert caught.value.__suppress_context__ or caught.value.__context__ is None


def _refusal(model: str, part: str = "3D/3dmodel.model") -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        read_mesh_bytes(_zip({part: model}), ".3mf", name="m")
    assert caught.value.path == ORIGIN and caught.value.hint == DAMAGED
    return caught.value


class TestDamagedModels:
    """A damaged model part is refused naming the part, the object and what is wrong."""

    def test_a_root_other_than_a_core_model_is_named(self) -> None:
        refusal = _refusal('<other xmlns="http://example.com/x"/>')
        assert refusal.reason == (
            "3D/3dmodel.model: root element is '{http://example.com/x}other', not a 3MF core "
            "model")

    def test_an_unknown_unit_is_named_with_the_units_there_are(self) -> None:
        for unit in ("furlong", "Inch", "mm", ""):
            assert _refusal(MM.replace("millimeter", unit)).reason == (
                f"3D/3dmodel.model: unknown unit {unit!r} (a 3MF's unit is one of micron, "
                "millimeter, centimeter, inch, foot, meter, in lower case)")

    def test_a_member_name_given_twice_is_named_with_both_spellings(self) -> None:
        for second, same in (("3D/3dmodel.model", "'3D/3dmodel.model'"),
                             ("3D/3DModel.model", "'3D/3dmodel.model' and '3D/3DModel.model'")):
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
                with zipfile.ZipFile(buffer, "w") as archive:
                    archive.writestr("3D/3dmodel.model", MM)
                    archive.writestr(second, MM)
            with pytest.raises(ModelFileError) as caught:
                read_mesh_bytes(buffer.getvalue(), ".3mf", name="m")
            assert caught.value.reason == (
                f"the package holds two members named {same} (names must differ in more than "
                "case); programs disagree on which of the two they read")
            assert caught.value.hint == DAMAGED

    def test_a_reference_to_an_undefined_object_is_named(self) -> None:
        model = readers.TestThreeMf._model('<item objectid="7"/>')
        assert _refusal(model).reason == (
            "3D/3dmodel.model: reference to undefined object id 7")

    def test_components_that_refer_to_each_other_are_a_cycle(self) -> None:
        extra = ('<object id="2"><components><component objectid="3"/></components></object>'
                 '<object id="3"><components><component objectid="2"/></components></object>')
        model = readers.TestThreeMf._model('<item objectid="2"/>', extra=extra)
        assert _refusal(model).reason == "3D/3dmodel.model: component references form a cycle"

    def test_a_triangle_using_a_missing_vertex_is_named_with_its_number(self) -> None:
        model = MM.replace('<triangle v1="1" v2="2" v3="3"/>', '<triangle v1="1" v2="2" v3="4"/>')
        assert _refusal(model).reason == (
            "3D/3dmodel.model: object 1: triangle 4 uses vertex index 4, but the object has 4 "
            "vertices")

    def test_a_negative_vertex_index_is_named(self) -> None:
        model = MM.replace('<triangle v1="0" v2="1" v3="3"/>', '<triangle v1="0" v2="-1" v3="3"/>')
        assert _refusal(model).reason == (
            "3D/3dmodel.model: object 1: triangle 2 uses vertex index -1, but the object has 4 "
            "vertices")

    def test_a_package_without_build_items_shows_every_mesh_object(self) -> None:
        extra = ('<object id="2"><mesh><vertices><vertex x="5" y="5" z="5"/>'
                 '<vertex x="6" y="5" z="5"/><vertex x="5" y="6" z="5"/></vertices><triangles>'
                 '<triangle v1="0" v2="1" v3="2"/></triangles></mesh></object>')
        model = readers.TestThreeMf._model("", extra=extra)
        mesh = read_mesh_bytes(_zip({"3D/3dmodel.model": model}), ".3mf", name="m")
        assert mesh.triangle_count == 5
        assert mesh.bounds[1].tolist() == [6, 6, 5]
