"""3MF packages: a relationship without a target, and components that multiply without end.

Session 21's run of ``geometry/threemf.py`` whole: the one survivor that a package can tell
apart (a missing ``Target`` read as a name other than the empty one), and a hostile package
found beside it: objects whose components each use the next object twice double the build
per level, so a file under a kilobyte asked for 17 billion triangles (days of building and
memory without end, no error).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import test_geometry_readers as readers

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry import threemf as threemf_module

MODEL_REL = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
PART = "3D/3dmodel.model"
MULTIPLY_HINT = "export the model again with its components merged, or split it into files"
MM = readers.TestThreeMf._model('<item objectid="1"/>')
TETRAHEDRON = (
    "<mesh><vertices>"
    + "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>'
              for x, y, z in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)])
    + "</vertices><triangles>"
    + "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>'
              for a, b, c in [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)])
    + "</triangles></mesh>"
)
INCH = readers.TestThreeMf._model('<item objectid="1"/>', unit="inch")


def _package(path: Path, parts: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


class TestRelationshipWithoutTarget:
    """A model relationship that names no part is passed over for the package's usual part."""

    def test_the_usual_part_is_read_not_another_part_of_the_package(
        self, tmp_path: Path
    ) -> None:
        # The stray part is an inch model under a name no exporter writes: reading it
        # instead would show as a 25.4 mm tetrahedron.
        rels = f'<Relationships xmlns="{RELS_NS}"><Relationship Id="r0" Type="{MODEL_REL}"/>'
        path = _package(tmp_path / "part.3mf", {
            "_rels/.rels": rels + "</Relationships>",
            "XXXX": INCH,
            "3D/3dmodel.model": MM,
        })
        mesh = read_mesh(path)
        assert mesh.size == pytest.approx((1.0, 1.0, 1.0))
        assert mesh.triangle_count == 4


def _doubling(path: Path, levels: int, *, triangles: int = 4, build: str | None = None) -> Path:
    """A package whose object ``levels + 1`` uses object ``levels`` twice, down to object 1
    (3MF object ids start at 1), a tetrahedron (its first face repeated to make ``triangles``
    triangles in all)."""
    extra = '<triangle v1="0" v2="2" v3="1"/>' * (triangles - 4)
    objects = [f'<object id="1">{TETRAHEDRON.replace("</triangles>", extra + "</triangles>")}'
               "</object>"]
    # The second copy of each level lies 2**level mm to the right: no two copies overlap.
    objects += [f'<object id="{level + 1}"><components><component objectid="{level}"/>'
                f'<component objectid="{level}" '
                f'transform="1 0 0 0 1 0 0 0 1 {2 ** level} 0 0"/>'
                "</components></object>" for level in range(1, levels + 1)]
    items = f'<item objectid="{levels + 1}"/>' if build is None else build
    return _package(path, {PART: _model("".join(objects), items)})


def _model(objects: str, items: str) -> str:
    return (f'<model unit="millimeter" xmlns="{CORE_NS}"><resources>{objects}</resources>'
            f"<build>{items}</build></model>")


def _refusal(path: Path) -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        read_mesh(path)
    assert caught.value.path == path
    return caught.value


class TestComponentsThatMultiply:
    """A build whose components multiply past the limits is refused before any of it is built."""

    def test_seventeen_doublings_are_too_many_copies(self, tmp_path: Path) -> None:
        error = _refusal(_doubling(tmp_path / "bomb.3mf", 17))
        assert error.reason == (
            f"{PART}: its components expand to 262,143 object copies and 524,288 triangles, "
            "over the limit of 100,000 copies and 10,737,418 triangles"
        )
        assert error.hint == MULTIPLY_HINT

    def test_few_copies_of_a_large_mesh_are_too_many_triangles(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # 4 copies of a 20-triangle mesh (7 copies with the two objects above it): 80
        # triangles, over a limit of 79. (At the real limit, a test that fails would build a
        # mesh of 10 million triangles.)
        monkeypatch.setattr(threemf_module, "MAX_BUILD_TRIANGLES", 79)
        error = _refusal(_doubling(tmp_path / "heavy.3mf", 2, triangles=20))
        assert error.reason == (
            f"{PART}: its components expand to 7 object copies and 80 triangles, "
            "over the limit of 100,000 copies and 79 triangles"
        )
        assert error.hint == MULTIPLY_HINT

    def test_a_package_without_items_counts_its_mesh_objects_too(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Without build items every mesh object is taken: here object 1 alone.
        monkeypatch.setattr(threemf_module, "MAX_BUILD_TRIANGLES", 3)
        error = _refusal(_doubling(tmp_path / "loose.3mf", 2, build=""))
        assert error.reason == (
            f"{PART}: its components expand to 1 object copy and 4 triangles, "
            "over the limit of 100,000 copies and 3 triangles"
        )

    def test_a_single_triangle_is_named_in_the_singular(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Three items: a one-triangle mesh and two empty objects (copies without triangles).
        monkeypatch.setattr(threemf_module, "MAX_BUILD_COPIES", 2)
        one = TETRAHEDRON.replace(
            '<triangle v1="0" v2="1" v3="3"/><triangle v1="0" v2="3" v3="2"/>'
            '<triangle v1="1" v2="2" v3="3"/>', "")
        objects = f'<object id="1">{one}</object><object id="2"></object><object id="3"/>'
        build = '<item objectid="1"/><item objectid="2"/><item objectid="3"/>'
        error = _refusal(_package(tmp_path / "one.3mf", {PART: _model(objects, build)}))
        assert error.reason == (
            f"{PART}: its components expand to 3 object copies and 1 triangle, "
            "over the limit of 2 copies and 10,737,418 triangles"
        )

    def test_every_build_item_counts_its_copies(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Two items of object 3 (7 copies, 16 triangles) each: 14 copies, 32 triangles.
        monkeypatch.setattr(threemf_module, "MAX_BUILD_COPIES", 13)
        build = '<item objectid="3"/><item objectid="3" transform="1 0 0 0 1 0 0 0 1 0 9 0"/>'
        error = _refusal(_doubling(tmp_path / "two.3mf", 2, build=build))
        assert error.reason == (
            f"{PART}: its components expand to 14 object copies and 32 triangles, "
            "over the limit of 13 copies and 10,737,418 triangles"
        )


class TestComponentsWithinTheLimits:
    """A build exactly at either limit is read whole, every copy where its transforms put it."""

    def test_exactly_the_copy_limit_is_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(threemf_module, "MAX_BUILD_COPIES", 15)
        mesh = read_mesh(_doubling(tmp_path / "fifteen.3mf", 3))
        assert mesh.triangle_count == 32
        # 8 tetrahedra side by side, 2 mm apart.
        assert mesh.size == pytest.approx((15.0, 1.0, 1.0))

    def test_exactly_the_triangle_limit_is_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(threemf_module, "MAX_BUILD_TRIANGLES", 16)
        mesh = read_mesh(_doubling(tmp_path / "sixteen.3mf", 2))
        assert mesh.triangle_count == 16
        assert mesh.size == pytest.approx((7.0, 1.0, 1.0))

    def test_a_package_without_items_counts_its_mesh_objects(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Without build items only object 1 (the one with a mesh) is taken: 1 copy, 4 triangles.
        monkeypatch.setattr(threemf_module, "MAX_BUILD_COPIES", 1)
        monkeypatch.setattr(threemf_module, "MAX_BUILD_TRIANGLES", 4)
        mesh = read_mesh(_doubling(tmp_path / "loose.3mf", 5, build=""))
        assert mesh.triangle_count == 4


class TestTheHostilePackage:
    """The package that asks for 17 billion triangles in under a kilobyte is refused at once."""

    # Without the count the reader would build for hours; the timeout bounds the memory such
    # a regression takes before the test fails.
    @pytest.mark.timeout(30)
    def test_thirty_two_doublings_are_refused_before_any_is_built(self, tmp_path: Path) -> None:
        path = _doubling(tmp_path / "bomb.3mf", 32)
        assert path.stat().st_size < 1024
        error = _refusal(path)
        assert error.reason == (
            f"{PART}: its components expand to 8,589,934,591 object copies and "
            "17,179,869,184 triangles, over the limit of 100,000 copies and 10,737,418 triangles"
        )


class TestWhatTheCountLeavesToTheBuild:
    """Faults the count does not judge are still found where the build is put together."""

    def test_an_undefined_object_beside_a_build_at_the_limits_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Object 1 is exactly 1 copy and 4 triangles: the undefined one must add nothing.
        monkeypatch.setattr(threemf_module, "MAX_BUILD_COPIES", 1)
        monkeypatch.setattr(threemf_module, "MAX_BUILD_TRIANGLES", 4)
        build = '<item objectid="1"/><item objectid="9"/>'
        error = _refusal(_doubling(tmp_path / "missing.3mf", 0, build=build))
        assert error.reason == f"{PART}: reference to undefined object id 9"

    def test_triangles_of_an_object_without_a_mesh_count_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Object 2 holds stray <triangle> elements outside any <mesh>: the build skips them.
        monkeypatch.setattr(threemf_module, "MAX_BUILD_TRIANGLES", 4)
        stray = '<triangles><triangle v1="0" v2="1" v3="2"/></triangles>' * 3
        objects = (f'<object id="1">{TETRAHEDRON}</object>'
                   f'<object id="2">{stray}<components><component objectid="1"/></components>'
                   "</object>")
        path = _package(tmp_path / "stray.3mf", {PART: _model(objects, '<item objectid="2"/>')})
        mesh = read_mesh(path)
        assert mesh.triangle_count == 4
        assert mesh.size == pytest.approx((1.0, 1.0, 1.0))

    def test_a_chain_too_deep_through_an_object_met_higher_up_is_a_cycle(
        self, tmp_path: Path
    ) -> None:
        # Object 40 uses hub 1 (which uses mesh 50) directly and through the chain 2 -> ... ->
        # 32 -> 1, which puts mesh 50 at level 33 there; the count meets hub 1 first at level
        # 1, so only the build sees the depth.
        chain = "".join(f'<object id="{k}"><components><component objectid="{k + 1}"/>'
                        "</components></object>" for k in range(2, 32))
        objects = (f'<object id="50">{TETRAHEDRON}</object>'
                   '<object id="1"><components><component objectid="50"/></components></object>'
                   f"{chain}"
                   '<object id="32"><components><component objectid="1"/></components></object>'
                   '<object id="40"><components><component objectid="1"/>'
                   '<component objectid="2"/></components></object>')
        path = _package(tmp_path / "deep.3mf", {PART: _model(objects, '<item objectid="40"/>')})
        error = _refusal(path)
        assert error.reason == f"{PART}: component references form a cycle"
        assert error.hint == "the 3MF package is damaged or incomplete; export it again"
