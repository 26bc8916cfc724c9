"""Checks every reader applies to what it parsed before handing out a :class:`Mesh`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import ModelFileError
from ..wording import counted, millimetres
from .mesh import Mesh, triangle_chunks
from .orientation import ORIENTATION_PHRASES, hashed_manifold, orientation_fault

__all__ = [
    "DEFECT_CHECK_MAX_TRIANGLES",
    "FLAT_FRACTION",
    "MAX_NUMBER_CHARS",
    "OVERLONG_TOKEN",
    "ZERO_AREA_FRACTION",
    "checked_mesh",
    "lf_lines",
    "line_number",
    "mesh_defects",
    "overlong_number",
    "sane_mesh",
]

#: A triangle whose area is below this fraction of the squared model size is degenerate
#: (float32 noise on a model a few hundred millimetres across is far smaller).
ZERO_AREA_FRACTION = 1e-12
#: A mesh whose vertices all lie within this fraction of its size from one plane is flat: a
#: surface, not a solid (it encloses no volume).
FLAT_FRACTION = 1e-6
#: Larger meshes are not checked for open edges or inverted normals (see mesh_defects).
DEFECT_CHECK_MAX_TRIANGLES = 200_000
# Triangles measured at a time while looking for one with area.
_CHUNK_TRIANGLES = 4096
# Every this many-th vertex is looked at first when deciding whether a mesh is flat.
_FLAT_SAMPLE_STEP = 97
#: The longest number a text model (ASCII STL, OBJ) may hold: "%.17e" writes any double in at
#: most 25 characters. The readers convert numbers as fixed-width arrays as wide as the
#: longest of them, so one 400 kB "number" made a file under a megabyte ask for 67 GiB.
MAX_NUMBER_CHARS: Final = 64
#: A run of non-blank bytes longer than any number may be.
OVERLONG_TOKEN: Final = re.compile(rb"\S{%d,}" % (MAX_NUMBER_CHARS + 1))


# A line ends at LF, CRLF or a CR alone (classic Mac OS), as an editor counts them; the one
# rule both for the line an error names and for where the text readers split lines.
_LONE_CR: Final = re.compile(rb"\r(?!\n)")


def line_number(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` (only called on error paths)."""
    return data.count(b"\n", 0, offset) + len(_LONE_CR.findall(data, 0, offset)) + 1


def lf_lines(data: bytes) -> bytes:
    """``data`` with each CR that ends a line alone made an LF, so that patterns reading
    LF-ended lines see every line :func:`line_number` counts, in a file that mixes LF lines
    with CR-only ones too. The same length, so offsets and line numbers stay as they were;
    copied only when such a CR is there."""
    if b"\r" not in data or _LONE_CR.search(data) is None:
        return data
    return _LONE_CR.sub(b"\n", data)


def overlong_number(data: bytes, token: re.Match[bytes], origin: Path, hint: str
                    ) -> ModelFileError:
    """The refusal of ``token``, an :data:`OVERLONG_TOKEN` match where a number belongs."""
    return ModelFileError(
        origin,
        f"line {line_number(data, token.start())}: a number "
        f"{token.end() - token.start():,} characters long (numbers have at most "
        f"{MAX_NUMBER_CHARS})",
        hint=hint,
    )


def checked_mesh(
    triangles: npt.NDArray[np.float32], origin: Path, name: str, source: Path | None
) -> Mesh:
    """Wrap parsed triangles in a Mesh, refusing empty meshes and non-finite coordinates."""
    if triangles.shape[0] == 0:
        raise ModelFileError(
            origin,
            "the file contains no triangles",
            hint="re-export the model; the exporter wrote an empty mesh",
        )
    first_bad: int | None = None
    bad = 0
    start = 0
    for chunk in triangle_chunks(triangles):
        if np.isfinite(chunk).all():  # the usual case, without a reduction per triangle
            start += chunk.shape[0]
            continue
        finite = np.isfinite(chunk).reshape(chunk.shape[0], 9).all(axis=1)
        if not finite.all():
            bad += int((~finite).sum())
            if first_bad is None:
                first_bad = start + int(np.flatnonzero(~finite)[0])
        start += chunk.shape[0]
    if first_bad is not None:
        raise ModelFileError(
            origin,
            f"triangle {first_bad + 1} of {triangles.shape[0]} has a NaN or infinite coordinate "
            f"({counted(bad, 'such triangle')})",
            hint="repair the mesh (e.g. in PreForm or Meshmixer) and export it again",
        )
    return Mesh(triangles, name, source)


def sane_mesh(mesh: Mesh, origin: Path) -> Mesh:
    """``mesh`` when it can print; refuses meshes of zero-area triangles or zero volume.

    Parsers stop at structure (:func:`checked_mesh`); the entry points that hand a model to
    the pipeline (:func:`~preform_pipeline.geometry.read_mesh`) also call this. Cheap on real
    models: it stops at the first chunk holding a triangle with area, then measures every
    vertex's distance from that triangle's plane in one pass (a flat mesh has volume 0).
    """
    triangles = mesh.triangles
    extent = max(mesh.size)
    normal = _first_area(triangles, extent)
    if normal is None:
        raise _no_surface(mesh, origin)
    # Every vertex's height along that triangle's normal: all equal for a flat mesh. A sparse
    # sample settles it for almost every real model; only (nearly) flat ones pay a full pass.
    points = triangles.reshape(-1, 3)
    tolerance = FLAT_FRACTION * extent
    sample = points[::_FLAT_SAMPLE_STEP] @ normal
    if float(sample.max()) - float(sample.min()) > tolerance:
        return mesh
    heights = points @ normal
    if float(heights.max()) - float(heights.min()) <= tolerance:
        raise ModelFileError(
            origin,
            "the mesh encloses no volume: it is flat (a surface, not a solid)",
            hint="export the model as a closed solid; give a surface a thickness first",
        )
    return mesh


def _no_surface(mesh: Mesh, origin: Path) -> ModelFileError:
    """The refusal of a mesh whose triangles all have zero area at its size. Said with that
    size: a corner far from the rest (3.4e38 mm off, a coordinate in other units) makes
    triangles of real area slivers too, and then it is that corner to look for."""
    if _own_area(mesh.triangles):
        hint = ("some triangles have area of their own, so a corner far from the rest (a "
                "stray vertex, or a coordinate in other units) makes every one a sliver at "
                "this size; remove it and export again")
    else:
        hint = "the export failed or the model was scaled to nothing; export it again"
    return ModelFileError(
        origin,
        f"all {mesh.triangle_count:,} triangles have zero area at the model's size "
        f"({millimetres(mesh.size)}): their corners lie on a line or a point, so there is no "
        "surface to print",
        hint=hint,
    )


def _own_area(triangles: npt.NDArray[np.float32]) -> bool:
    """True when some triangle has area next to its own longest edge, the rule
    :func:`_first_area` applies with the model's size."""
    for start in range(0, triangles.shape[0], _CHUNK_TRIANGLES):
        t = triangles[start:start + _CHUNK_TRIANGLES].astype(np.float64)
        edges = np.stack([t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], t[:, 2] - t[:, 1]], axis=1)
        longest = np.linalg.norm(edges, axis=2).max(axis=1)
        double_area = np.linalg.norm(np.cross(edges[:, 0], edges[:, 1]), axis=1)
        if bool(((double_area > 2 * ZERO_AREA_FRACTION * longest**2) & (longest > 0)).any()):
            return True
    return False


def _first_area(
    triangles: npt.NDArray[np.float32], extent: float
) -> npt.NDArray[np.float32] | None:
    """Unit normal of the first triangle with area, looked for chunk by chunk."""
    threshold = 2 * ZERO_AREA_FRACTION * extent**2
    for start in range(0, triangles.shape[0], _CHUNK_TRIANGLES):
        t = triangles[start:start + _CHUNK_TRIANGLES].astype(np.float64)
        cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        double_area = np.linalg.norm(cross, axis=1)
        found = np.flatnonzero(double_area > threshold)
        if found.size and extent > 0:
            first = int(found[0])
            unit: npt.NDArray[np.float32] = (cross[first] / double_area[first]).astype(np.float32)
            return unit
    return None


def mesh_defects(mesh: Mesh) -> tuple[str, ...]:
    """Defects PreForm can often repair but a user should know about, one phrase each.

    Meshes over :data:`DEFECT_CHECK_MAX_TRIANGLES` are not checked (the edge count costs a sort
    of every corner); an empty tuple then means "not checked", not "no defects".
    """
    if mesh.triangle_count > DEFECT_CHECK_MAX_TRIANGLES:
        return ()
    # Corners grouped by hashed coordinates, as this check always has (a collision needs two
    # of a few million vertices to hash alike); shared with the orientation check.
    if not hashed_manifold(mesh):
        return ("the mesh is open or non-manifold (some edges are not shared by exactly two "
                "triangles)",)
    fault = orientation_fault(mesh)
    return () if fault is None else (ORIENTATION_PHRASES[fault],)
