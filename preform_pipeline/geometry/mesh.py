"""The in-memory triangle mesh every reader returns and every analysis takes.

A :class:`Mesh` is a triangle soup: an ``(N, 3, 3)`` float32 array, one row of three vertices
per triangle, coordinates exactly as the file stored them (millimetres unless the format says
otherwise; 3MF units are converted to millimetres on reading). Keeping the soup rather than an
indexed mesh makes reading binary STL a single ``np.frombuffer`` and keeps every measurement a
vectorised reduction; the few operations that need connectivity (:meth:`Mesh.is_closed`, the
OBJ and 3MF writers) weld vertices on demand with :func:`weld_vertices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Mesh", "weld_vertices"]

FloatArray = npt.NDArray[np.floating]


def weld_vertices(
    triangles: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Merge vertices with exactly equal coordinates.

    Returns ``(vertices, faces)``: unique vertices ``(V, 3)`` float32 in sorted order and face
    indices ``(N, 3)`` int64. Equality is exact (bit pattern after turning ``-0.0`` into
    ``0.0``), which is what STL exporters produce for shared corners; no tolerance is applied,
    so nearly-equal vertices stay distinct.
    """
    tri = np.ascontiguousarray(np.asarray(triangles, dtype=np.float32).reshape(-1, 3))
    # Adding 0.0 maps -0.0 to +0.0 so the byte comparison below agrees with float equality.
    tri = tri + np.float32(0.0)
    if tri.shape[0] == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    # Compare the three float32 coordinates as one 12-byte record: one sort, no Python loop.
    keys = tri.view(np.dtype((np.void, 12))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    vertices = tri[first]
    faces = inverse.reshape(-1, 3).astype(np.int64)
    return vertices, faces


@dataclass(frozen=True, eq=False)
class Mesh:
    """A named triangle mesh: ``triangles`` is ``(N, 3, 3)`` float32.

    Instances are values: every transform returns a new mesh and leaves this one untouched.
    Equality is identity (``eq=False``) because comparing arrays element-wise is rarely what a
    caller means; compare ``triangles`` with numpy when needed.
    """

    triangles: npt.NDArray[np.float32]
    name: str
    source: Path | None = None

    def __post_init__(self) -> None:
        tri = np.asarray(self.triangles, dtype=np.float32)
        if tri.ndim != 3 or tri.shape[1:] != (3, 3):
            raise ValueError(f"triangles must have shape (N, 3, 3), got {tri.shape}")
        object.__setattr__(self, "triangles", tri)

    # -- size ---------------------------------------------------------------------------------

    @property
    def triangle_count(self) -> int:
        return int(self.triangles.shape[0])

    @property
    def bounds(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(min_xyz, max_xyz)`` as float64; zeros for an empty mesh."""
        if self.triangle_count == 0:
            return np.zeros(3), np.zeros(3)
        points = self.triangles.reshape(-1, 3)
        # Column by column: numpy reduces a strided column about 20 times faster than it
        # reduces a (V, 3) array along axis 0.
        low = np.array([points[:, i].min() for i in range(3)], dtype=np.float64)
        high = np.array([points[:, i].max() for i in range(3)], dtype=np.float64)
        return low, high

    @property
    def size(self) -> tuple[float, float, float]:
        """Extent along x, y and z."""
        low, high = self.bounds
        extent = high - low
        return float(extent[0]), float(extent[1]), float(extent[2])

    # -- measurements -------------------------------------------------------------------------

    def _centred64(self) -> npt.NDArray[np.float64]:
        # Measuring relative to the bounding-box centre keeps float64 sums accurate for meshes
        # placed far from the origin (scanner coordinates often are).
        low, high = self.bounds
        return self.triangles.astype(np.float64) - (low + high) / 2.0

    def volume(self) -> float:
        """Enclosed volume in cubic units: ``|sum(v0 . (v1 x v2)) / 6|`` (divergence theorem).

        Meaningful for closed meshes; for an open surface it is the volume of the cone the
        surface spans to the bounding-box centre.
        """
        if self.triangle_count == 0:
            return 0.0
        t = self._centred64()
        signed = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0
        return float(abs(signed))

    def surface_area(self) -> float:
        """Total triangle area in square units."""
        if self.triangle_count == 0:
            return 0.0
        t = self.triangles.astype(np.float64)
        cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        return float(np.linalg.norm(cross, axis=1).sum() / 2.0)

    def is_closed(self) -> bool:
        """True when every edge is shared by exactly two triangles (vertices welded exactly)."""
        if self.triangle_count == 0:
            return False
        vertices, faces = weld_vertices(self.triangles)
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        edges.sort(axis=1)
        codes = edges[:, 0] * np.int64(vertices.shape[0]) + edges[:, 1]
        _, counts = np.unique(codes, return_counts=True)
        return bool(np.all(counts == 2))

    # -- transforms ---------------------------------------------------------------------------

    def transformed(
        self,
        matrix: npt.ArrayLike,
        translation: tuple[float, float, float] | npt.ArrayLike = (0.0, 0.0, 0.0),
    ) -> Mesh:
        """Apply ``p' = matrix @ p + translation`` to every vertex (column-vector convention)."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (3, 3):
            raise ValueError(f"matrix must be 3x3, got {m.shape}")
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        moved = self.triangles.astype(np.float64) @ m.T + t
        return Mesh(moved.astype(np.float32), self.name, self.source)

    def scaled(self, factor: float) -> Mesh:
        """Uniformly scaled about the origin."""
        return self.transformed(np.eye(3) * float(factor))

    def translated(self, dx: float, dy: float, dz: float) -> Mesh:
        return self.transformed(np.eye(3), (dx, dy, dz))

    def placed_on_platform(self) -> Mesh:
        """Moved so that its lowest point is at z = 0 and its xy bounding box centred on 0, 0."""
        low, high = self.bounds
        centre = (low + high) / 2.0
        return self.translated(-float(centre[0]), -float(centre[1]), -float(low[2]))

    def __repr__(self) -> str:
        sx, sy, sz = self.size
        return (
            f"Mesh(name={self.name!r}, triangles={self.triangle_count}, "
            f"size=({sx:.3g}, {sy:.3g}, {sz:.3g}), source={self.source!r})"
        )
