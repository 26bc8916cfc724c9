"""Which model part of a 3MF package is read, and what a bad transform or package says."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import test_geometry_readers as readers

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh_bytes

DAMAGED = "the 3MF package is damaged or incomplete; export it again"
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
