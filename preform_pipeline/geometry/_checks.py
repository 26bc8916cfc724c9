"""Checks every reader applies to what it parsed before handing out a :class:`Mesh`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ModelFileError
from .mesh import Mesh

__all__ = ["checked_mesh", "line_number"]


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
