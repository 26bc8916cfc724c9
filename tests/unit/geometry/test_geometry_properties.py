"""Property-based tests of every model reader: a Mesh or a ModelFileError, nothing else.

Examples stay small and few so the suite stays fast; the hostile corpus covers the big cases.
"""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import Mesh, read_mesh_bytes

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
FAST = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-10**6, 10**6),
).map(str)
tokens = st.one_of(numbers, st.sampled_from(
    ["solid", "facet", "normal", "outer", "loop", "vertex", "endloop", "endfacet", "endsolid",
     "v", "f", "vn", "vt", "1/2/3", "-1", "0", "#", "\n", "\t", "é", "\x00"]
))


def read_or_refuse(data: bytes, suffix: str) -> None:
    """The property itself: the reader returns a sane Mesh or raises ModelFileError."""
    try:
        mesh = read_mesh_bytes(data, suffix, name="prop")
    except ModelFileError as exc:
        assert exc.reason
        return
    assert isinstance(mesh, Mesh)
    assert mesh.triangle_count > 0
    assert np.isfinite(mesh.triangles).all()


class TestAnyBytes:
    """Arbitrary bytes under every suffix."""

    @FAST
    @given(st.binary(max_size=600), st.sampled_from([".stl", ".obj", ".3mf"]))
    def test_arbitrary_bytes(self, data: bytes, suffix: str) -> None:
        read_or_refuse(data, suffix)


class TestBinaryStl:
    """Binary STL with any header count, any float values and any cut."""

    @FAST
    @given(
        st.integers(0, 2**32 - 1),
        st.lists(st.floats(width=32), min_size=0, max_size=12 * 8),
        st.integers(0, 60),
    )
    def test_binary_stl(self, count: int, values: list[float], cut: int) -> None:
        whole = len(values) // 12
        records = b"".join(
            struct.pack("<12fH", *values[i * 12:(i + 1) * 12], 0) for i in range(whole)
        )
        data = b"h" * 80 + struct.pack("<I", count) + records
        read_or_refuse(data[: max(0, len(data) - cut)], ".stl")


class TestAsciiStl:
    """ASCII STL made of its own keywords, numbers and noise."""

    @FAST
    @given(st.lists(tokens, max_size=80), st.booleans())
    def test_ascii_stl(self, words: list[str], end: bool) -> None:
        text = "solid p\n" + " ".join(words) + ("\nendsolid p\n" if end else "")
        read_or_refuse(text.encode("utf-8", "surrogatepass"), ".stl")


class TestObj:
    """OBJ lines of vertices and faces with any indices and values."""

    @FAST
    @given(
        st.lists(st.tuples(numbers, numbers, numbers), max_size=12),
        st.lists(st.lists(st.integers(-20, 20).map(str) | tokens, min_size=0, max_size=5),
                 max_size=12),
    )
    def test_obj(self, vertices: list[tuple[str, str, str]], faces: list[list[str]]) -> None:
        lines = [f"v {x} {y} {z}" for x, y, z in vertices]
        lines += ["f " + " ".join(face) for face in faces]
        read_or_refuse("\n".join(lines).encode("utf-8", "surrogatepass"), ".obj")


class TestThreeMf:
    """3MF packages whose model XML has any vertices, triangles, items and transforms."""

    @FAST
    @given(
        st.lists(st.tuples(numbers, numbers, numbers), max_size=8),
        st.lists(st.tuples(*(st.integers(-2, 9).map(str),) * 3), max_size=8),
        st.lists(st.sampled_from(["1", "2", "x", ""]), max_size=3),
        st.sampled_from(["millimeter", "inch", "parsec", ""]),
        st.one_of(st.none(), st.lists(numbers, min_size=0, max_size=13).map(" ".join)),
    )
    def test_threemf(
        self,
        vertices: list[tuple[str, str, str]],
        triangles: list[tuple[str, str, str]],
        items: list[str],
        unit: str,
        transform: str | None,
    ) -> None:
        v = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in vertices)
        t = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in triangles)
        extra = f' transform="{transform}"' if transform is not None else ""
        build = "".join(f'<item objectid="{i}"{extra}/>' for i in items)
        model = (
            f'<model unit="{unit}" xmlns="{CORE}"><resources><object id="1"><mesh>'
            f"<vertices>{v}</vertices><triangles>{t}</triangles></mesh></object>"
            f'<object id="2"><components><component objectid="1"{extra}/></components>'
            f"</object></resources><build>{build}</build></model>"
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("3D/3dmodel.model", model)
        read_or_refuse(buffer.getvalue(), ".3mf")
