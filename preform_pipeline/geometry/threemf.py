"""3MF: a zip package holding an XML model (3MF core specification).

Read: the model part named by the package relationships (``_rels/.rels``, falling back to
``3D/3dmodel.model``), its mesh objects, component references and build items with their
affine transforms. Coordinates are converted to millimetres from the model's ``unit``
attribute. Writing produces a minimal valid package: content types, relationships, one mesh
object and one build item.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from ..errors import ModelFileError, NotAModelError
from ..wording import noun, quoted
from ._checks import checked_mesh
from .bounded import DEFAULT_MAX_MODEL_FILE_BYTES, parse_xml, read_zip_member
from .mesh import Mesh, weld_vertices
from .numerals import (
    MAX_RESOURCE_INDEX,
    XML_NUMBER_FORM,
    XML_OBJECT_ID_FORM,
    is_xml_number,
    xml_indices_may_pass,
    xml_integer,
    xml_numbers_may_pass,
    xml_tokens,
)
from .sniff import EXPORT_HINT, SNIFF_BYTES, require_format

__all__ = [
    "CORE_NAMESPACE",
    "DEFAULT_MODEL_PART",
    "MAX_BUILD_COPIES",
    "MAX_BUILD_TRIANGLES",
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
#: At most this many triangles in a package's build, every component copy counted: as many as
#: the largest binary STL the readers take (50 bytes a triangle). Components that each use the
#: next object twice double the count per level, so a file under a kilobyte can ask for billions.
MAX_BUILD_TRIANGLES = DEFAULT_MAX_MODEL_FILE_BYTES // 50
#: At most this many object copies (build items and component references followed): each costs
#: a transform, whether or not its mesh has triangles.
MAX_BUILD_COPIES = 100_000
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_HINT = "the 3MF package is damaged or incomplete; export it again"

Affine = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # (3x3 row-vector matrix, t)


def _q(tag: str) -> str:
    return f"{{{CORE_NAMESPACE}}}{tag}"


def _parse_transform(text: str | None, origin: Path, part: str, where: str) -> Affine:
    """The ``transform`` attribute of ``where`` (a build item, a component): an
    ``ST_Matrix3D``, twelve ``ST_Number``s; the identity only when there is no attribute."""
    if text is None:
        return np.eye(3), np.zeros(3)
    tokens = xml_tokens(text)
    if not tokens:
        # The schema's pattern takes no empty matrix, and lib3mf (the 3MF Consortium's
        # reader) refuses one as too few values: the writer meant some transform, not none.
        raise ModelFileError(
            origin,
            f"{part}: {where}: transform is empty (a 3MF transform is 12 numbers; an item or "
            "component without one has no transform attribute)",
            hint=_HINT,
        )
    if len(tokens) != 12 or not all(is_xml_number(token) for token in tokens):
        raise ModelFileError(
            origin,
            f"{part}: {where}: transform {quoted(text, 200)} is not 12 numbers "
            f"({XML_NUMBER_FORM})",
            hint=_HINT,
        )
    values = np.array([float(token) for token in tokens], dtype=np.float64)
    # 3MF uses row vectors: p' = p @ M + t with M the first nine values row by row.
    return values[:9].reshape(3, 3), values[9:]


def _compose(outer: Affine, inner: Affine) -> Affine:
    # Apply inner first, then outer: p @ Mi + ti, then (.) @ Mo + to.
    mo, to = outer
    mi, ti = inner
    return mi @ mo, ti @ mo + to


def _model_part_name(archive: zipfile.ZipFile, origin: Path) -> str | None:
    names = {n.lower(): n for n in archive.namelist()}
    rels = names.get("_rels/.rels")
    if rels is not None:
        targets: list[str] = []

        def relationship(tag: str, attributes: dict[str, str]) -> None:
            if tag == f"{{{_RELS_NS}}}Relationship" and attributes.get("Type") == _MODEL_REL_TYPE:
                targets.append((attributes.get("Target") or "").lstrip("/").lower())

        try:
            parse_xml(read_zip_member(archive, rels, origin), origin, rels, relationship)
        except ModelFileError:
            targets = []  # a damaged relationships part: fall back to the usual name
        for target in targets:
            if target in names:
                return names[target]
    if DEFAULT_MODEL_PART.lower() in names:
        return names[DEFAULT_MODEL_PART.lower()]
    models = sorted(n for low, n in names.items() if low.endswith(".model"))
    return models[0] if models else None


def _refuse_duplicates(archive: zipfile.ZipFile, origin: Path) -> None:
    """Refuse a package holding two members of one name (ignoring case, as the package
    format compares part names): readers disagree on which one they take (Python's zipfile the
    last, others the first), so what was checked here need not be what is printed."""
    seen: dict[str, str] = {}
    for member in archive.namelist():
        first = seen.get(member.lower())
        if first is not None:
            same = repr(first) if first == member else f"{first!r} and {member!r}"
            raise ModelFileError(
                origin,
                f"the package holds two members named {same} (names must differ in more "
                "than case); programs disagree on which of the two they read",
                hint=_HINT,
            )
        seen[member.lower()] = member


@dataclass
class _Object:
    """One ``<object>`` as read: vertex and triangle attribute texts, components."""

    vertices: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)
    triangles: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)
    has_mesh: bool = False
    components: list[tuple[int, str | None]] = field(default_factory=list)


@dataclass
class _ModelPart:
    """What the reader keeps of a model part: unit, objects by id, build items."""

    root: str | None = None
    unit: str = "millimeter"
    objects: dict[int, _Object] = field(default_factory=dict)
    items: list[tuple[int, str | None]] = field(default_factory=list)
    # Each object id as written, to name both spellings of an id given twice.
    spellings: dict[int, str] = field(default_factory=dict)


def _object_id(text: str | None, origin: Path, where: str, attribute: str) -> int:
    """The ``attribute`` (``id``, ``objectid``) of ``where``: an ``ST_ResourceID``, a
    positive integer below 2^31, compared as a number (``objectid="01"`` is object 1)."""
    if text is None:
        raise ModelFileError(origin, f"{where} has no {attribute}", hint=_HINT)
    value = xml_integer(text)
    if value is None or not 1 <= value <= MAX_RESOURCE_INDEX:
        raise ModelFileError(
            origin,
            f"{where}: {attribute}={quoted(text, 40)} is not an object id ({XML_OBJECT_ID_FORM})",
            hint=_HINT,
        )
    return value


def _read_model_part(xml: bytes, origin: Path, part: str) -> _ModelPart:
    model = _ModelPart()
    current: list[tuple[int, _Object]] = []
    # The root (the model) is taken by its place, first; these are the elements inside it.
    tags = {_q(t): t for t in ("object", "mesh", "vertex", "triangle", "component", "item",
                              "build")}

    def start(tag: str, attributes: dict[str, str]) -> None:
        if model.root is None:
            model.root = tag
            model.unit = attributes.get("unit", "millimeter")
            return
        kind = tags.get(tag)
        if kind == "object":
            # Every object before this one is in model.objects (an id given twice is refused).
            object_id = _object_id(attributes.get("id"), origin,
                                   f"{part}: object {len(model.objects) + 1} (in file order)",
                                   "id")
            spelling = attributes["id"]  # there: _object_id refuses an object without one
            if object_id in model.objects:
                raise ModelFileError(
                    origin,
                    f"{part}: object id {object_id} is given twice (id="
                    f"{quoted(model.spellings[object_id], 40)} and id={quoted(spelling, 40)}); "
                    "each object needs an id of its own",
                    hint=_HINT,
                )
            obj = _Object()
            current[:] = [(object_id, obj)]
            model.objects[object_id] = obj
            model.spellings[object_id] = spelling
        elif kind == "vertex" and current:
            current[0][1].vertices.append(
                (attributes.get("x"), attributes.get("y"), attributes.get("z"))
            )
        elif kind == "triangle" and current:
            current[0][1].triangles.append(
                (attributes.get("v1"), attributes.get("v2"), attributes.get("v3"))
            )
        elif kind == "mesh" and current:
            current[0][1].has_mesh = True
        elif kind == "component" and current:
            owner_id, owner = current[0]
            where = f"{part}: object {owner_id}: component {len(owner.components) + 1}"
            owner.components.append(
                (_object_id(attributes.get("objectid"), origin, where, "objectid"),
                 attributes.get("transform"))
            )
        elif kind == "build":
            current.clear()
        elif kind == "item":
            where = f"{part}: build item {len(model.items) + 1}"
            model.items.append(
                (_object_id(attributes.get("objectid"), origin, where, "objectid"),
                 attributes.get("transform"))
            )

    parse_xml(xml, origin, part, start)
    return model


def read_3mf_bytes(data: bytes, *, origin: Path, name: str, source: Path | None) -> Mesh:
    """Parse a 3MF package into one mesh holding every build item, in millimetres."""
    # A ZIP is read from its end: bytes before its first entry (a stub, padding) leave it a
    # valid package, so only a file that is no ZIP at all is called no 3MF.
    if not data.startswith(_ZIP_SIGNATURES) and not zipfile.is_zipfile(io.BytesIO(data)):
        require_format(data[:SNIFF_BYTES], ".3mf", origin)
        raise NotAModelError(
            origin, "this is not a 3MF package (a 3MF file is a ZIP archive)", looks_like=None,
            hint=EXPORT_HINT,
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _refuse_duplicates(archive, origin)
            part = _model_part_name(archive, origin)
            if part is None:
                raise ModelFileError(
                    origin,
                    "this ZIP archive has no model part (a 3MF package has "
                    f"{DEFAULT_MODEL_PART}), so it is not a 3MF",
                    hint=EXPORT_HINT,
                )
            xml = read_zip_member(archive, part, origin)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError,
            NotImplementedError, OSError, zlib.error) as exc:
        raise ModelFileError(
            origin, f"3MF package is not a readable zip archive ({exc})", hint=_HINT
        ) from None
    model = _read_model_part(xml, origin, part)
    if model.root != _q("model"):
        raise ModelFileError(
            origin, f"{part}: root element is {model.root!r}, not a 3MF core model", hint=_HINT
        )
    unit = model.unit
    if unit not in UNIT_TO_MM:
        # Named with the six the specification allows: "Inch" or "mm" is a near miss to fix.
        raise ModelFileError(
            origin,
            f"{part}: unknown unit {unit!r} (a 3MF's unit is one of "
            f"{', '.join(UNIT_TO_MM)}, in lower case)",
            hint=_HINT,
        )
    objects = model.objects
    roots = ([object_id for object_id, _ in model.items] if model.items
             else [object_id for object_id, obj in objects.items() if obj.has_mesh])
    copies, triangle_total = _expanded_size(objects, roots, origin, part)
    if copies > MAX_BUILD_COPIES or triangle_total > MAX_BUILD_TRIANGLES:
        raise ModelFileError(
            origin,
            f"{part}: its components expand to {copies:,} "
            f"{noun(copies, 'object copy', 'object copies')} and {triangle_total:,} "
            f"{noun(triangle_total, 'triangle')}, over the limit of {MAX_BUILD_COPIES:,} "
            f"copies and {MAX_BUILD_TRIANGLES:,} triangles",
            hint="export the model again with its components merged, or split it into files",
        )
    meshes: dict[int, npt.NDArray[np.float64]] = {}

    def mesh_of(object_id: int) -> npt.NDArray[np.float64]:
        if object_id not in meshes:
            meshes[object_id] = _object_mesh(object_id, objects[object_id], origin, part)
        return meshes[object_id]

    pieces: list[npt.NDArray[np.float64]] = []

    def collect(object_id: int, transform: Affine, depth: int) -> None:
        if object_id not in objects:
            raise ModelFileError(
                origin, f"{part}: reference to undefined object id {object_id}", hint=_HINT
            )
        if depth > _MAX_COMPONENT_DEPTH:
            raise ModelFileError(origin, f"{part}: component references form a cycle", hint=_HINT)
        obj = objects[object_id]
        if obj.has_mesh:
            m, t = transform
            with np.errstate(all="ignore"):  # inf x 0 in a transform: caught as non-finite
                pieces.append(mesh_of(object_id) @ m + t)
        for number, (component_id, component_transform) in enumerate(obj.components, 1):
            inner = _parse_transform(component_transform, origin, part,
                                     f"object {object_id}: component {number}")
            collect(component_id, _compose(transform, inner), depth + 1)

    if model.items:
        for number, (object_id, item_transform) in enumerate(model.items, 1):
            collect(object_id,
                    _parse_transform(item_transform, origin, part, f"build item {number}"), 0)
    else:
        # A package without build items is not printable as-is; take every mesh object so the
        # user still sees the geometry they exported.
        for object_id, obj in objects.items():
            if obj.has_mesh:
                collect(object_id, (np.eye(3), np.zeros(3)), 0)
    with np.errstate(all="ignore"):  # overflow to inf is reported by checked_mesh
        combined = np.concatenate(pieces) * UNIT_TO_MM[unit] if pieces else np.zeros((0, 3, 3))
        triangles = combined.astype(np.float32)
    return checked_mesh(triangles, origin, name, source)


def _expanded_size(
    objects: dict[int, _Object], roots: list[int], origin: Path, part: str
) -> tuple[int, int]:
    """The object copies and triangles the build would hold, counted without building it.

    Each object's own count is worked out once, so this costs one visit per object and
    reference however often components repeat it. Undefined ids count nothing here (the
    build reports them); nesting deeper than a cycle allows is refused here, before the
    counts could grow without end.
    """
    sizes: dict[int, tuple[int, int]] = {}

    def size(object_id: int, depth: int) -> tuple[int, int]:
        if depth > _MAX_COMPONENT_DEPTH:
            raise ModelFileError(origin, f"{part}: component references form a cycle", hint=_HINT)
        obj = objects.get(object_id)
        if obj is None:
            return 0, 0
        if object_id not in sizes:
            copies, triangles = 1, (len(obj.triangles) if obj.has_mesh else 0)
            for component_id, _ in obj.components:
                inner_copies, inner_triangles = size(component_id, depth + 1)
                copies += inner_copies
                triangles += inner_triangles
            sizes[object_id] = copies, triangles
        return sizes[object_id]

    totals = [size(object_id, 0) for object_id in roots]
    return sum(c for c, _ in totals), sum(t for _, t in totals)


def _object_mesh(
    object_id: int, obj: _Object, origin: Path, part: str
) -> npt.NDArray[np.float64]:
    where = f"{part}: object {object_id}"
    coordinates = [value for vertex in obj.vertices for value in vertex if value is not None]
    vertices: npt.NDArray[np.float64] | None = None
    if len(coordinates) == 3 * len(obj.vertices) and xml_numbers_may_pass(coordinates):
        with contextlib.suppress(ValueError):
            vertices = np.array(coordinates, dtype=np.float64).reshape(-1, 3)
    del coordinates
    if vertices is None:  # named outside the except: no numpy error chained to the refusal
        _raise_bad_attribute(where, "vertex", ("x", "y", "z"), obj.vertices, origin)
    indices = [value for triangle in obj.triangles for value in triangle if value is not None]
    faces: npt.NDArray[np.int64] | None = None
    if len(indices) == 3 * len(obj.triangles) and xml_indices_may_pass(indices):
        # OverflowError: beyond int64; ValueError also for over 4,300 digits (int()'s limit).
        with contextlib.suppress(ValueError, OverflowError):
            faces = np.array(indices, dtype=np.int64).reshape(-1, 3)
    del indices
    if faces is None:
        _raise_bad_attribute(where, "triangle", ("v1", "v2", "v3"), obj.triangles, origin)
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        bad = int(np.flatnonzero((faces < 0).any(1) | (faces >= vertices.shape[0]).any(1))[0])
        row = faces[bad]
        # Name the index that is out of range (a negative one is not the row's largest).
        wrong = int(row[(row < 0) | (row >= vertices.shape[0])][0])
        raise ModelFileError(
            origin,
            f"{where}: triangle {bad + 1} uses vertex index "
            f"{wrong}, but the object has {vertices.shape[0]} vertices",
            hint=_HINT,
        )
    return vertices[faces]


def _raise_bad_attribute(
    where: str,
    element: str,
    names: tuple[str, str, str],
    rows: list[tuple[str | None, str | None, str | None]],
    origin: Path,
) -> NoReturn:
    """Refuse the first ``element`` (a vertex, a triangle) of ``rows`` missing one of its
    ``names`` or holding one that is not a 3MF number (vertex) or index (triangle)."""
    vertex = element == "vertex"
    for number, row in enumerate(rows, 1):
        for name, value in zip(names, row, strict=True):
            if value is None:
                reason = f" has no {name}"
            elif vertex:
                if is_xml_number(value):
                    continue
                reason = f": {name}={quoted(value, 40)} is not a number ({XML_NUMBER_FORM})"
            elif (index := xml_integer(value)) is None:
                reason = (f": {name}={quoted(value, 40)} is not a vertex index (a 3MF index is "
                          "ASCII digits, 0 for the object's first vertex)")
            elif index > MAX_RESOURCE_INDEX:
                reason = (f": {name}={quoted(value, 40)} is beyond the largest vertex index a "
                          f"3MF allows ({MAX_RESOURCE_INDEX:,})")
            else:
                continue
            raise ModelFileError(origin, f"{where}: {element} {number}{reason}", hint=_HINT)
    raise ModelFileError(  # pragma: no cover - the guard and conversion are the rule
        origin, f"{where}: a {element} could not be read", hint=_HINT)


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
            return _model_part_name(archive, Path(path)) is not None
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        return False
