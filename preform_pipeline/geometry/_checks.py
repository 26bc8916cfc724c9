"""Checks every reader applies to what it parsed before handing out a :class:`Mesh`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ModelFileError
from .mesh import Mesh

__all__ = [
    "FLAT_VOLUME_FRACTION",
    "ZERO_AREA_FRACTION",
    "checked_mesh",
    "line_number",
    "mesh_defects",
    "sane_mesh",
]

#: A triangle whose area is below this fraction of the squared model size is degenerate
#: (float32 noise on a model a few hundred millimetres across is far smaller).
ZERO_AREA_FRACTION = 1e-12
#: A mesh enclosing less than this fraction of its bounding cube is flat: a surface, not a solid.
FLAT_VOLUME_FRACTION = 1e-9


def line_number(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` (only called on error paths)."""
    return data.count(b"\n", 0, offset) + 1


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
    finite = np.isfinite(triangles).reshape(triangles.shape[0], 9).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ModelFileError(
            origin,
            f"triangle {bad + 1} of {triangles.shape[0]} has a NaN or infinite coordinate "
            f"({int((~finite).sum())} such triangles)",
            hint="repair the mesh (e.g. in PreForm or Meshmixer) and export it again",
        )
    return Mesh(triangles, name, source)


def sane_mesh(mesh: Mesh, origin: Path) -> Mesh:
    """``mesh`` when it can print; refuses meshes of zero-area triangles or zero volume.

    Parsers stop at structure (:func:`checked_mesh`); the entry points that hand a model to
    the pipeline (:func:`~preform_pipeline.geometry.read_mesh`) also call this.
    """
    triangles = mesh.triangles
    extent = max(mesh.size)
    t = triangles.astype(np.float64)
    double_area = np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    if extent == 0.0 or bool((double_area <= 2 * ZERO_AREA_FRACTION * extent**2).all()):
        raise ModelFileError(
            origin,
            f"all {triangles.shape[0]:,} triangles have zero area (their corners lie on a line "
            "or a point), so there is no surface to print",
            hint="the export failed or the model was scaled to nothing; export it again",
        )
    if mesh.volume() <= FLAT_VOLUME_FRACTION * extent**3:
        raise ModelFileError(
            origin,
            "the mesh encloses no volume: it is flat (a surface, not a solid)",
            hint="export the model as a closed solid; give a surface a thickness first",
        )
    return mesh


def mesh_defects(mesh: Mesh) -> tuple[str, ...]:
    """Defects PreForm can often repair but a user should know about, one phrase each."""
    if not mesh.is_closed():
        return ("the mesh is open or non-manifold (some edges are not shared by exactly two "
                "triangles)",)
    found: list[str] = []
    t = mesh.triangles.astype(np.float64)
    signed = float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)
    if signed < 0:
        found.append("the triangles face inwards (the mesh is inside out)")
    return tuple(found)
