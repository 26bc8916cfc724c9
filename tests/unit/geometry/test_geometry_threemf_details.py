"""Odd and hostile 3MF packages: what is read from them, and what the user is told."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Final

import pytest
import test_geometry_readers as readers
from test_geometry_threemf_parts import _zip

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh, read_mesh_bytes
from preform_pipeline.geometry.threemf import threemf_completeness
from tests.hostile_corpus import damaged, encrypted

DAMAGED = "the 3MF package is damaged or incomplete; export it again"
PART = "3D/3dmodel.model"
CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"


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


AN_INDEX = "a vertex index (a 3MF index is ASCII digits, 0 for the object's first vertex)"


def _refusal(model: str) -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        read_mesh_bytes(_zip({PART: model}), ".3mf", name="m")
    assert caught.value.path == Path("m.3mf") and caught.value.hint == DAMAGED
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
    return caught.value


class TestBadTriangles:
    """A triangle with a missing, non-integer or out-of-range index is named."""

    @pytest.mark.parametrize(("triangle", "reason"), [
        ('<triangle v1="0" v2="1"/>', "triangle 5 has no v3"),
        ('<triangle v1="0" v2="1" v3="two"/>', f"triangle 5: v3='two' is not {AN_INDEX}"),
        ('<triangle v1="0" v2="1" v3="2.5"/>', f"triangle 5: v3='2.5' is not {AN_INDEX}"),
        ('<triangle v1="0" v2="1" v3="99999999999999999999999"/>',
         "triangle 5: v3='99999999999999999999999' is beyond the largest vertex index a 3MF "
         "allows (2,147,483,647)"),
    ])
    def test_a_missing_or_non_integer_index_is_refused(self, triangle: str, reason: str) -> None:
        refusal = _refusal(_model(_object(TETRA, TETRA_FACES + triangle)))
        assert refusal.reason == f"{PART}: object 1: {reason}"
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


class TestEncryptedMembers:
    """A package whose parts need a password is whole, and refused as encrypted by name
    (session 44: zipfile's RuntimeError asking for the password ended ``plan`` as a crash)."""

    def test_it_is_complete(self, tmp_path: Path) -> None:
        path = tmp_path / "m.3mf"
        path.write_bytes(encrypted(_zip({"_rels/.rels": "<Relationships/>",
                                         PART: _model(_object(TETRA, TETRA_FACES))})))
        assert threemf_completeness(path) is True

    def test_reading_it_names_the_encrypted_model_part(self) -> None:
        data = encrypted(_zip({"_rels/.rels": "<Relationships/>",
                               PART: _model(_object(TETRA, TETRA_FACES))}))
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(data, ".3mf", name="m")
        assert caught.value.path == Path("m.3mf")
        assert caught.value.reason == (
            f"{PART} is encrypted (it needs a password); 3MF and .form packages never are")
        assert caught.value.hint == "export the model again without a password or encryption"


class TestDamagedMembers:
    """A member whose compressed data is damaged is named as such; a whole directory keeps the
    package complete (session 44: zlib's error escaped the completeness check, exit 70)."""

    RELS = "<Relationships/>" * 20
    #: How zipfile finds each kind of member damaged: a stored one by its checksum.
    SAID: Final = {zipfile.ZIP_STORED: f"Bad CRC-32 for file '{PART}'",
            zipfile.ZIP_DEFLATED: "Error -3 while decompressing data: invalid block type"}

    @staticmethod
    def _package(compression: int, **parts: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, text in parts.items():
                archive.writestr(name, text)
        return buffer.getvalue()

    @pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                             ids=["stored", "deflated"])
    def test_a_damaged_relationships_part_leaves_it_complete(
        self, tmp_path: Path, compression: int
    ) -> None:
        package = self._package(compression, **{"_rels/.rels": self.RELS,
                                                PART: _model(_object(TETRA, TETRA_FACES))})
        path = tmp_path / "m.3mf"
        path.write_bytes(damaged(package, "_rels/.rels"))
        assert threemf_completeness(path) is True
        assert read_mesh(path).triangle_count == 4

    @pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                             ids=["stored", "deflated"])
    def test_a_damaged_model_part_is_named(self, compression: int) -> None:
        package = self._package(compression, **{PART: _model(_object(TETRA, TETRA_FACES))})
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(damaged(package, PART), ".3mf", name="m")
        assert caught.value.reason == (
            f"{PART} cannot be unpacked: the package is damaged ({self.SAID[compression]})")
        assert caught.value.hint == "the 3MF package is damaged or not a model; export it again"


class TestAnUnknownMethod:
    """A member compressed by a method zipfile does not know (Deflate64, which Windows
    writes) is said as such, not as damage (review of session 44)."""

    def test_it_is_named_with_its_method(self) -> None:
        data = bytearray(TestDamagedMembers._package(
            zipfile.ZIP_STORED, **{PART: _model(_object(TETRA, TETRA_FACES))}))
        for header, field in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            at = data.find(header) + field
            data[at:at + 2] = (9).to_bytes(2, "little")
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(bytes(data), ".3mf", name="m")
        assert caught.value.reason == (
            f"{PART} is compressed by a method this reader does not support (zip method 9); "
            "3MF and .form packages use deflate or none")


class TestACopyUnderWay:
    """Every prefix of a package, as a copy leaves it part way, is incomplete (waited for),
    never complete and so refused as damaged (review of session 44)."""

    @pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                             ids=["stored", "deflated"])
    def test_no_prefix_is_complete(self, tmp_path: Path, compression: int) -> None:
        data = TestDamagedMembers._package(compression, **{
            "_rels/.rels": TestDamagedMembers.RELS, PART: _model(_object(TETRA, TETRA_FACES))})
        path = tmp_path / "m.3mf"
        complete = []
        for length in range(len(data)):
            path.write_bytes(data[:length])
            if threemf_completeness(path):
                complete.append(length)
        assert complete == []
        path.write_bytes(data)
        assert threemf_completeness(path) is True


class TestReferences:
    """An item or component without an object id is named, with the attribute it lacks."""

    def test_a_build_item_without_an_object_id(self) -> None:
        refusal = _refusal(_model(_object(TETRA, TETRA_FACES), build="<item/>"))
        assert refusal.reason == f"{PART}: build item 1 has no objectid"

    def test_a_component_without_an_object_id(self) -> None:
        parts = _object(TETRA, TETRA_FACES) + (
            '<object id="2"><components><component/></components></object>')
        refusal = _refusal(_model(parts, build='<item objectid="2"/>'))
        assert refusal.reason == f"{PART}: object 2: component 1 has no objectid"


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


def _package(parts: dict[str, str], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


INCH = _model(_object(TETRA, TETRA_FACES), unit="inch")
MM = _model(_object(TETRA, TETRA_FACES))


class TestWhichPartIsRead:
    """The usual part name wins over other parts; a relationship's target is taken as it is."""

    def test_the_usual_name_wins_over_a_part_that_sorts_first(self) -> None:
        data = _zip({"3D/0-extra.model": MM, PART: INCH})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)

    def test_a_target_in_a_folder_whose_name_starts_with_x(self) -> None:
        rels = ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                'relationships"><Relationship Target="/X/main.model" Id="r" Type="http://'
                'schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>')
        data = _zip({"_rels/.rels": rels, "X/main.model": INCH, PART: MM})
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)

    def test_relationships_that_would_inflate_like_a_bomb_fall_back_to_the_usual_name(
        self,
    ) -> None:
        bomb = "<Relationships>" + " " * 8_000_000 + "</Relationships>"
        data = _package({"_rels/.rels": bomb, PART: INCH}, compress=True)
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)


class TestNotAPackage:
    """Bytes that are not a ZIP archive are refused as not a 3MF package."""

    def test_text_named_3mf(self) -> None:
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(b"hello, this is text", ".3mf", name="m")
        assert caught.value.reason == "this is not a 3MF package (a 3MF file is a ZIP archive)"

    def test_a_valid_zip_with_bytes_before_its_first_entry_is_read(self, tmp_path: Path) -> None:
        """A ZIP is read from its end: a stub before it (a self-extractor's, padding) leaves
        a valid package, read as one, not "no 3MF package" (session 42's review)."""
        data = b"\x00" * 16 + _zip({PART: INCH})
        assert zipfile.is_zipfile(io.BytesIO(data))
        assert read_mesh_bytes(data, ".3mf", name="m").size == pytest.approx((25.4,) * 3)
        (tmp_path / "m.3mf").write_bytes(data)
        assert read_mesh(tmp_path / "m.3mf").size == pytest.approx((25.4,) * 3)

    def test_a_package_without_any_mesh(self) -> None:
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(_zip({PART: _model("", build="")}), ".3mf", name="m")
        assert caught.value.reason == "the file contains no triangles"


def _chain(length: int, *, items: bool = True) -> str:
    """Objects 1..length + 1: each of the first ``length`` holds a component of the next; the
    last is a mesh. The build has one item of object 1 (or none)."""
    parts = "".join(
        f'<object id="{n}"><components><component objectid="{n + 1}"/></components></object>'
        for n in range(1, length + 1))
    return _model(parts + _object(TETRA, TETRA_FACES, object_id=str(length + 1)),
                  build='<item objectid="1"/>' if items else "")


class TestNesting:
    """Components may nest 32 levels below a build item; deeper is taken for a cycle."""

    def test_32_levels_are_read(self) -> None:
        mesh = read_mesh_bytes(_zip({PART: _chain(32)}), ".3mf", name="m")
        assert mesh.triangle_count == 4

    def test_33_levels_are_a_cycle(self) -> None:
        assert _refusal(_chain(33)).reason == f"{PART}: component references form a cycle"

    def test_without_build_items_a_mesh_object_is_read_with_its_32_levels(self) -> None:
        shell = _object(TETRA, TETRA_FACES, object_id="100").replace(
            "</mesh></object>", '</mesh><components><component objectid="1"/></components>'
            "</object>")
        chain = _chain(31, items=False).replace("<resources>", f"<resources>{shell}")
        mesh = read_mesh_bytes(_zip({PART: chain}), ".3mf", name="m")
        # Object 100 with its 32 levels down to the last mesh, and that mesh object on its own.
        assert mesh.triangle_count == 12

    def test_a_component_transform_that_is_not_twelve_numbers_is_named(self) -> None:
        model = _chain(1).replace('<component objectid="2"/>',
                                  '<component objectid="2" transform="1 2 3"/>')
        assert _refusal(model).reason == (
            f"{PART}: object 1: component 1: transform '1 2 3' is not 12 numbers (a 3MF "
            "number is ASCII digits with an optional sign, decimal point and exponent)")


def _not_finite(model: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning would be an error here
        with pytest.raises(ModelFileError) as caught:
            read_mesh_bytes(_zip({PART: model}), ".3mf", name="m")
    return caught.value.reason


class TestHugeCoordinates:
    """Coordinates that overflow are refused as not finite, without a numpy warning."""

    def test_an_overflowing_transform(self) -> None:
        model = _model(_object(TETRA, TETRA_FACES),
                       build='<item objectid="1" transform="1e300 0 0 0 1e300 0 0 0 1e300 '
                             '0 0 0"/>').replace('x="1"', 'x="1e300"')
        assert _not_finite(model) == (
            "triangle 1 of 4 has a NaN or infinite coordinate (4 such triangles)")

    def test_an_overflowing_unit(self) -> None:
        model = _model(_object(TETRA, TETRA_FACES), unit="meter").replace(
            'x="1"', 'x="1e306"')
        assert _not_finite(model) == (
            "triangle 1 of 4 has a NaN or infinite coordinate (3 such triangles)")
