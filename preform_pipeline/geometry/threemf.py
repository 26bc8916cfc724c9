"""3MF: a zip package holding an XML model (3MF core specification).

Read: the model part named by the package relationships (``_rels/.rels``, falling back to
``3D/3dmodel.model``), its mesh objects, component references and build items with their
affine transforms. Coordinates are converted to millimetres from the model's ``unit``
attribute. Writing produces a minimal valid package: content types, relationships, one mesh
object and one build item.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import numpy.typing as npt

from ..errors import ModelFileError
from ._checks import checked_mesh
from .mesh import Mesh, weld_vertices

__all__ = [
    "CORE_NAMESPACE",
    "DEFAULT_MODEL_PART",
    "UNIT_TO_MM",
    "read_3mf_bytes",
    "threemf_completeness",
    "write_3mf",
]

CORE_NAMESPACE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
DEFAULT_MODEL_PART = "3D/3dmodel.model"
_MODEL_REL_TYPE = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
UNIT_TO_MM = {
    "micron": 0.001,
    "millimeter": 1.0,
    "centimeter": 10.0,
    "inch": 25.4,
    "foot": 304.8,
    "meter": 1000.0,
}
# Component references nest; deeper than this is treated as a cycle.
_MAX_COMPONENT_DEPTH = 32
_HINT = "the 3MF package is damaged or incomplete; export it again"

Affine = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # (3x3 row-vector matrix, t)


def _q(tag: str) -> str:
    return f"{{{CORE_NAMESPACE}}}{tag}"


def _parse_transform(text: str | None, origin: Path) -> Affine:
    if not text:
        return np.eye(3), np.zeros(3)
    try:
        values = np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        raise ModelFileError(origin, f"transform {text!r} is not 12 numbers", hint=_HINT) from None
    if values.size != 12:
        raise ModelFileError(origin, f"transform {text!r} is not 12 numbers", hint=_HINT)
    # 3MF uses row vectors: p' = p @ M + t with M the first nine values row by row.
    return values[:9].reshape(3, 3), values[9:]


def _compose(outer: Affine, inner: Affine) -> Affine:
    # Apply inner first, then outer: p @ Mi + ti, then (.) @ Mo + to.
    mo, to = outer
    mi, ti = inner
    return mi @ mo, ti @ mo + to


def _model_part_name(archive: zipfile.ZipFile) -> str | None:
    names = {n.lower(): n for n in archive.namelist()}
    rels = names.get("_rels/.rels")
    if rels is not None:
        try:
            root = ET.fromstring(archive.read(rels))
        except ET.ParseError:
            root = None
        if root is not None:
            for rel in root.iter(f"{{{_RELS_NS}}}Relationship"):
                if rel.get("Type") == _MODEL_REL_TYPE:
                    target = (rel.get("Target") or "").lstrip("/").lower()
                    if target in names:
                        return names[target]
    if DEFAULT_MODEL_PART.lower() in names:
        return names[DEFAULT_MODEL_PART.lower()]
    models = sorted(n for low, n in names.items() if low.endswith(".model"))
    return models[0] if models else None


def read_3mf_bytes(data: bytes, *, origin: Path, name: str, source: Path | None) -> Mesh:
    """Parse a 3MF package into one mesh holding every build item, in millimetres."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            part = _model_part_name(archive)
            if part is None:
                raise ModelFileError(
                    origin,
                    f"3MF package has no model part (expected {DEFAULT_MODEL_PART})",
                    hint=_HINT,
                )
            xml = archive.read(part)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(
            origin, f"3MF package is not a readable zip archive ({exc})", hint=_HINT
        ) from None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ModelFileError(origin, f"{part}: XML is malformed ({exc})", hint=_HINT) from None
    if root.tag != _q("model"):
        raise ModelFileError(
            origin, f"{part}: root element is {root.tag!r}, not a 3MF core model", hint=_HINT
        )
    unit = root.get("unit", "millimeter")
    if unit not in UNIT_TO_MM:
        raise ModelFileError(origin, f"{part}: unknown unit {unit!r}", hint=_HINT)

    objects = {
        obj.get("id", ""): obj for obj in root.iter(_q("object")) if obj.get("id") is not None
    }
    meshes: dict[str, npt.NDArray[np.float64]] = {}

    def mesh_of(object_id: str) -> npt.NDArray[np.float64]:
        if object_id not in meshes:
            meshes[object_id] = _object_mesh(objects[object_id], origin, part)
        return meshes[object_id]

    pieces: list[npt.NDArray[np.float64]] = []

    def collect(object_id: str, transform: Affine, depth: int) -> None:
        if object_id not in objects:
            raise ModelFileError(
                origin, f"{part}: reference to undefined object id {object_id!r}", hint=_HINT
            )
        if depth > _MAX_COMPONENT_DEPTH:
            raise ModelFileError(origin, f"{part}: component references form a cycle", hint=_HINT)
        obj = objects[object_id]
        if obj.find(_q("mesh")) is not None:
            m, t = transform
            pieces.append(mesh_of(object_id) @ m + t)
        components = obj.find(_q("components"))
        if components is not None:
            for comp in components.iter(_q("component")):
                inner = _parse_transform(comp.get("transform"), origin)
                collect(comp.get("objectid", ""), _compose(transform, inner), depth + 1)

    build = root.find(_q("build"))
    items = [] if build is None else list(build.iter(_q("item")))
    if items:
        for item in items:
            collect(
                item.get("objectid", ""), _parse_transform(item.get("transform"), origin), 0
            )
    else:
        # A package without build items is not printable as-is; take every mesh object so the
        # user still sees the geometry they exported.
        for object_id, obj in objects.items():
            if obj.find(_q("mesh")) is not None:
                collect(object_id, (np.eye(3), np.zeros(3)), 0)
    combined = np.concatenate(pieces) * UNIT_TO_MM[unit] if pieces else np.zeros((0, 3, 3))
    return checked_mesh(combined.astype(np.float32), origin, name, source)


def _object_mesh(obj: ET.Element, origin: Path, part: str) -> npt.NDArray[np.float64]:
    mesh = obj.find(_q("mesh"))
    assert mesh is not None
    vertex_elements = mesh.iter(_q("vertex"))
    triangle_elements = mesh.iter(_q("triangle"))
    object_id = obj.get("id")
    try:
        vertices = np.array(
            [(v.get("x"), v.get("y"), v.get("z")) for v in vertex_elements], dtype=np.float64
        ).reshape(-1, 3)
    except (TypeError, ValueError):
        raise ModelFileError(
            origin,
            f"{part}: object {object_id}: a vertex has a missing or non-numeric coordinate",
            hint=_HINT,
        ) from None
    try:
        faces = np.array(
            [(t.get("v1"), t.get("v2"), t.get("v3")) for t in triangle_elements], dtype=np.int64
        ).reshape(-1, 3)
    except (TypeError, ValueError):
        raise ModelFileError(
            origin,
            f"{part}: object {object_id}: a triangle has a missing or non-integer index",
            hint=_HINT,
        ) from None
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        bad = int(np.flatnonzero((faces < 0).any(1) | (faces >= vertices.shape[0]).any(1))[0])
        raise ModelFileError(
            origin,
            f"{part}: object {object_id}: triangle {bad + 1} uses vertex index "
            f"{int(faces[bad].max())}, but the object has {vertices.shape[0]} vertices",
            hint=_HINT,
        )
    return vertices[faces]


def write_3mf(path: Path | str, triangles: npt.ArrayLike) -> None:
    """Write a minimal valid 3MF package (millimetres, one object, one build item)."""
    vertices, faces = weld_vertices(triangles)
    v_xml = ('<vertex x="%.9g" y="%.9g" z="%.9g"/>\n' * vertices.shape[0]) % tuple(
        vertices.astype(np.float64).ravel().tolist()
    )
    t_xml = ('<triangle v1="%d" v2="%d" v3="%d"/>\n' * faces.shape[0]) % tuple(
        faces.ravel().tolist()
    )
    model = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{CORE_NAMESPACE}">\n'
        '<resources>\n<object id="1" type="model">\n<mesh>\n'
        f"<vertices>\n{v_xml}</vertices>\n<triangles>\n{t_xml}</triangles>\n"
        "</mesh>\n</object>\n</resources>\n"
        '<build>\n<item objectid="1"/>\n</build>\n</model>\n'
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Types xmlns="{_TYPES_NS}">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="model" '
        'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
        "</Types>\n"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Relationships xmlns="{_RELS_NS}">'
        f'<Relationship Target="/{DEFAULT_MODEL_PART}" Id="rel0" Type="{_MODEL_REL_TYPE}"/>'
        "</Relationships>\n"
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Fixed timestamps keep the output byte-for-byte reproducible.
        for name, text in (
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", rels),
            (DEFAULT_MODEL_PART, model),
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)


def threemf_completeness(path: Path | str) -> bool:
    """True when the file is a zip whose central directory is intact and holds a model part.

    A 3MF still being copied lacks the central directory at its end, so opening fails. Only
    the directory is read, not the compressed data.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return _model_part_name(archive) is not None
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        return False
