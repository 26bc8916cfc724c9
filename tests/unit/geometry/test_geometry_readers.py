"""Reading STL (binary and ASCII), OBJ and 3MF, and the errors for damaged files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from geometry_factories import box_triangles

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import (
    read_mesh,
    read_mesh_bytes,
    stl_completeness,
    threemf_completeness,
    write_3mf,
    write_obj,
    write_stl,
)
from preform_pipeline.geometry.obj import read_obj_bytes
from preform_pipeline.geometry.stl import read_stl_bytes

SHAPE = box_triangles(12.5, 3.25, 7.125, (-4.0, 1.0 / 3.0, 0.1))


def _binary_stl(triangles: np.ndarray, header: bytes = b"") -> bytes:
    records = np.zeros(
        len(triangles), dtype=[("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("a", "<u2")]
    )
    records["v"] = triangles
    return header.ljust(80, b" ")[:80] + len(triangles).to_bytes(4, "little") + records.tobytes()


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="ascii")
    else:
        path.write_bytes(data)
    return path


class TestFormatsAgree:
    """Every format written from the same triangles reads back bit-identical."""

    @pytest.mark.parametrize(
        ("filename", "writer"),
        [
            ("m.stl", lambda p, t: write_stl(p, t)),
            ("m_ascii.stl", lambda p, t: write_stl(p, t, ascii=True, name="shape")),
            ("m.obj", write_obj),
            ("m.3mf", write_3mf),
            ("UPPER.STL", lambda p, t: write_stl(p, t)),
        ],
        ids=["binary-stl", "ascii-stl", "obj", "3mf", "upper-case-suffix"],
    )
    def test_round_trip(self, tmp_path: Path, filename: str, writer: object) -> None:
        path = tmp_path / filename
        writer(path, SHAPE)  # type: ignore[operator]
        mesh = read_mesh(path)
        assert np.array_equal(mesh.triangles, SHAPE)
        assert mesh.name == path.stem
        assert mesh.source == path

    def test_name_can_be_given(self, tmp_path: Path) -> None:
        path = tmp_path / "m.stl"
        write_stl(path, SHAPE)
        assert read_mesh(path, name="case-17").name == "case-17"

    @pytest.mark.parametrize("suffix", [".stl", "stl", ".STL"])
    def test_reading_from_memory_matches_reading_the_file(
        self, tmp_path: Path, suffix: str
    ) -> None:
        path = tmp_path / "m.stl"
        write_stl(path, SHAPE)
        mesh = read_mesh_bytes(path.read_bytes(), suffix, name="mem")
        assert np.array_equal(mesh.triangles, SHAPE)
        assert (mesh.name, mesh.source) == ("mem", None)


class TestStl:
    """STL binary/ASCII detection is decided by size and content, not by the first word."""

    def test_binary_stl_whose_header_starts_with_solid(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "s.stl", _binary_stl(SHAPE, b"solid exported by CAD"))
        assert np.array_equal(read_mesh(path).triangles, SHAPE)
        assert stl_completeness(path)

    def test_ascii_stl_with_multiple_solids_crlf_and_exponents(self, tmp_path: Path) -> None:
        facet = (
            "facet normal 0 0 1\r\n outer loop\r\n  vertex 0 0 0\r\n  vertex 1E+1 0 0\r\n"
            "  vertex 0 1.0e1 -0.0\r\n endloop\r\nendfacet\r\n"
        )
        text = f"solid a\r\n{facet}endsolid a\r\nsolid b\r\n{facet}{facet}endsolid b\r\n"
        # A flat mesh: parsed by the STL parser alone (read_mesh refuses zero volume).
        mesh = read_stl_bytes(text.encode(), origin=tmp_path / "multi.stl", name="m", source=None)
        assert mesh.triangle_count == 3
        assert mesh.size == (10.0, 10.0, 0.0)

    def test_ascii_round_trip_keeps_float32_values_exactly(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(3)
        triangles = rng.normal(scale=100.0, size=(50, 3, 3)).astype(np.float32)
        path = tmp_path / "r.stl"
        write_stl(path, triangles, ascii=True)
        assert np.array_equal(read_mesh(path).triangles, triangles)


class TestObj:
    """OBJ faces: polygons, slash forms, negative indices."""

    def test_quad_faces_with_slashes_are_fan_triangulated(self, tmp_path: Path) -> None:
        text = (
            "# a unit square and a triangle\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0 0.5 0.5 0.5\n"
            "vt 0 0\nvn 0 0 1\nf 1/1/1 2/1/1 3//1 4/1\n\nf -4 -3 -2  # relative\n"
        )
        mesh = read_obj_bytes(text.encode(), origin=tmp_path / "q.obj", name="q", source=None)
        assert mesh.triangle_count == 3
        assert mesh.triangles[0].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
        assert mesh.triangles[1].tolist() == [[0, 0, 0], [1, 1, 0], [0, 1, 0]]
        assert mesh.triangles[2].tolist() == mesh.triangles[0].tolist()
        assert mesh.surface_area() == pytest.approx(1.5)

    def test_negative_indices_count_from_the_vertices_defined_so_far(
        self, tmp_path: Path
    ) -> None:
        text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\nv 0 0 5\nf -4 -3 -1\n"
        mesh = read_obj_bytes(text.encode(), origin=tmp_path / "n.obj", name="n", source=None)
        assert mesh.triangles[0].tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
        assert mesh.triangles[1].tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 5]]


    def test_positive_indices_may_refer_to_vertices_defined_later(self, tmp_path: Path) -> None:
        text = "f 1 2 3\nv 0 0 0\nv 2 0 0\nv 0 2 0 1.0\n"
        mesh = read_obj_bytes(text.encode(), origin=tmp_path / "fwd.obj", name="f", source=None)
        assert mesh.surface_area() == pytest.approx(2.0)


class TestThreeMf:
    """3MF packages: build-item and component transforms, units, relationships."""

    @staticmethod
    def _package(model: str, *, rels: bool = True, part: str = "3D/3dmodel.model") -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            if rels:
                archive.writestr(
                    "_rels/.rels",
                    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                    'relationships"><Relationship Target="/' + part + '" Id="r" Type="http://'
                    'schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>',
                )
            archive.writestr(part, model)
        return buffer.getvalue()

    @staticmethod
    def _model(build: str, unit: str = "millimeter", extra: str = "") -> str:
        vertices = "".join(
            f'<vertex x="{x}" y="{y}" z="{z}"/>'
            for x, y, z in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
        )
        triangles = "".join(
            f'<triangle v1="{a}" v2="{b}" v3="{c}"/>'
            for a, b, c in [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
        )
        return (
            f'<model unit="{unit}" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/'
            f'2015/02"><resources><object id="1" type="model"><mesh><vertices>{vertices}'
            f"</vertices><triangles>{triangles}</triangles></mesh></object>{extra}</resources>"
            f"<build>{build}</build></model>"
        )

    def test_build_item_transform_is_applied(self) -> None:
        model = self._model('<item objectid="1" transform="2 0 0 0 2 0 0 0 2 10 20 30"/>')
        mesh = read_mesh_bytes(self._package(model), ".3mf", name="t")
        assert mesh.bounds[0].tolist() == [10, 20, 30]
        assert mesh.volume() == pytest.approx(8.0 / 6.0)

    def test_components_compose_with_the_item_transform(self) -> None:
        extra = (
            '<object id="2"><components><component objectid="1" '
            'transform="1 0 0 0 1 0 0 0 1 5 0 0"/><component objectid="1"/></components>'
            "</object>"
        )
        model = self._model('<item objectid="2" transform="1 0 0 0 1 0 0 0 1 0 0 1"/>',
                            extra=extra)
        mesh = read_mesh_bytes(self._package(model), ".3mf", name="c")
        assert mesh.triangle_count == 8
        assert mesh.bounds[0].tolist() == [0, 0, 1]
        assert mesh.bounds[1].tolist() == [6, 1, 2]

    def test_units_are_converted_to_millimetres(self) -> None:
        model = self._model('<item objectid="1"/>', unit="inch")
        mesh = read_mesh_bytes(self._package(model), ".3mf", name="in")
        assert mesh.size == pytest.approx((25.4, 25.4, 25.4))

    def test_model_part_is_found_through_the_relationships(self) -> None:
        data = self._package(self._model('<item objectid="1"/>'), part="3D/other.model")
        assert read_mesh_bytes(data, ".3mf", name="r").triangle_count == 4


def _obj_out_of_range() -> bytes:
    return b"v 0 0 0\nv 1 0 0\nv 0 1 0\n# comment\nf 1 2 3\nf 1 2 9\n"


def _broken_3mf_missing_model() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
    return buffer.getvalue()


def _nan_stl() -> bytes:
    triangles = box_triangles(1, 1, 1)
    triangles[3, 1, 2] = np.nan
    return _binary_stl(triangles)


class TestModelFileErrors:
    """Each kind of bad file raises ModelFileError with the path and a specific reason."""

    @pytest.mark.parametrize(
        ("filename", "data", "reason_parts"),
        [
            ("empty.stl", b"", ["empty", "0 bytes"]),
            ("model.step", b"ISO-10303", ["unsupported", ".step"]),
            (
                "cut.stl",
                _binary_stl(SHAPE)[:-7],
                ["truncated", "12 triangles", f"expected {84 + 50 * 12}", f"{84 + 50 * 12 - 7}"],
            ),
            ("tiny.stl", b"\x00\x01\x02", ["shorter than", "84"]),
            (
                "noend.stl",
                "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
                "vertex 0 1 0\nendloop\nendfacet\n",
                ["endsolid"],
            ),
            (
                "badnum.stl",
                "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
                "vertex 0 1.2.3 0\nendloop\nendfacet\nendsolid x\n",
                ["line 6", "'1.2.3'", "not a number"],
            ),
            (
                "badfacet.stl",
                "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
                "endloop\nendfacet\nendsolid x\n",
                ["line 2", "malformed facet"],
            ),
            ("nofacets.stl", "solid x\nendsolid x\n", ["no triangles"]),
            ("range.obj", _obj_out_of_range(), ["line 6", "9", "out of range"]),
            ("zero.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", ["line 4", "out of range"]),
            ("badv.obj", b"v 0 0 0\nv 1 x 0\nv 0 1 0\nf 1 2 3\n", ["line 2", "'x'"]),
            ("two.obj", b"v 0 0 0\nv 1 0 0\nf 1 2\n", ["line 3", "at least 3"]),
            ("short.obj", b"v 0 0 0\nv 1 0\nv 0 1 0\nf 1 2 3\n", ["line 2", "x y z"]),
            ("neg.obj", b"v 0 0 0\nf -1 -2 -3\nv 1 0 0\nv 0 1 0\n", ["line 2", "-2"]),
            ("noface.obj", b"v 0 0 0\n", ["no triangles"]),
            ("broken.3mf", b"PK\x03\x04 this is not a zip", ["not a readable zip"]),
            ("nomodel.3mf", _broken_3mf_missing_model(), ["no model part", "3D/3dmodel.model"]),
            ("nan.stl", _nan_stl(), ["triangle 4", "NaN or infinite"]),
        ],
        ids=lambda v: v if isinstance(v, str) and "." in v and len(v) < 20 else "",
    )
    def test_bad_file(
        self, tmp_path: Path, filename: str, data: bytes | str, reason_parts: list[str]
    ) -> None:
        path = _write(tmp_path, filename, data)
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        error = caught.value
        assert error.path == path
        for part in reason_parts:
            assert part in error.reason
        assert error.hint

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ModelFileError) as caught:
            read_mesh(tmp_path / "absent.obj")
        assert caught.value.reason == "file not found"
        assert caught.value.path == tmp_path / "absent.obj"

    def test_truncated_3mf(self, tmp_path: Path) -> None:
        path = tmp_path / "whole.3mf"
        write_3mf(path, SHAPE)
        cut = _write(tmp_path, "cut.3mf", path.read_bytes()[:-30])
        with pytest.raises(ModelFileError, match="not a readable zip"):
            read_mesh(cut)


class TestCompleteness:
    """Completeness checks tell finished files from files still being written."""

    def test_binary_stl_complete_then_truncated(self, tmp_path: Path) -> None:
        path = tmp_path / "b.stl"
        write_stl(path, SHAPE)
        data = path.read_bytes()
        assert stl_completeness(path)
        for cut in (1, 50, len(data) - 84):
            path.write_bytes(data[:-cut])
            assert not stl_completeness(path), cut

    def test_ascii_stl_complete_then_cut_before_endsolid(self, tmp_path: Path) -> None:
        path = tmp_path / "a.stl"
        write_stl(path, SHAPE, ascii=True, name="a")
        text = path.read_bytes()
        assert stl_completeness(path)
        path.write_bytes(text[: text.rindex(b"endsolid")])
        assert not stl_completeness(path)

    def test_missing_stl_is_not_complete(self, tmp_path: Path) -> None:
        assert not stl_completeness(tmp_path / "none.stl")

    def test_3mf_complete_then_truncated(self, tmp_path: Path) -> None:
        path = tmp_path / "m.3mf"
        write_3mf(path, SHAPE)
        assert threemf_completeness(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        assert not threemf_completeness(path)
        assert not threemf_completeness(tmp_path / "none.3mf")
