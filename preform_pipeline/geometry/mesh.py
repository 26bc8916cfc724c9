"""The in-memory triangle mesh every reader returns and every analysis takes.

A :class:`Mesh` is a triangle soup: an ``(N, 3, 3)`` float32 array, one row of three vertices
per triangle, coordinates exactly as the file stored them (millimetres unless the format says
otherwise; 3MF units are converted to millimetres on reading). Keeping the soup rather than an
indexed mesh makes reading binary STL a single ``np.frombuffer`` and keeps every measurement a
vectorised reduction; the few operations that need connectivity (:meth:`Mesh.is_closed`, the
OBJ and 3MF writers) weld vertices on demand with :func:`weld_vertices`.

Measurements and transforms walk the triangles in slices of :data:`CHUNK_TRIANGLES`
(:func:`triangle_chunks`): a float64 temporary of a 6-million-triangle scan would be over
400 MB per array, a slice's is a few MB. A mesh of one slice is measured exactly as before
(the same arithmetic on the same array); larger ones sum their slices in float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHUNK_TRIANGLES",
    "EXACT_WELD_MAX_TRIANGLES",
    "Columns",
    "Mesh",
    "edge_keys",
    "face_cross",
    "pairs_only",
    "row_max",
    "row_norms",
    "transformed_triangles",
    "triangle_chunks",
    "vertex_keys",
    "weld_vertices",
]

FloatArray = npt.NDArray[np.floating]

#: Triangles measured at a time: float64 temporaries of a slice stay a few MB.
CHUNK_TRIANGLES: Final = 1 << 16


def triangle_chunks(
    triangles: npt.NDArray[np.float32], size: int | None = None
) -> Iterator[npt.NDArray[np.float32]]:
    """Consecutive slices (views, not copies) of at most ``size`` triangles (default
    :data:`CHUNK_TRIANGLES`, looked up at each call); one slice, the whole array, when it is
    no larger."""
    size = CHUNK_TRIANGLES if size is None else size
    count = triangles.shape[0]
    if count <= size:
        yield triangles
        return
    for start in range(0, count, size):
        yield triangles[start:start + size]


#: Larger meshes are checked for closure by hashed edges (see :meth:`Mesh.is_closed`).
EXACT_WELD_MAX_TRIANGLES: Final = 1_000_000
_KEY_MULTIPLIERS: Final = (
    np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)
)


def vertex_keys(points: npt.NDArray[np.float32]) -> npt.NDArray[np.uint64]:
    """Per ``(V, 3)`` float32 point, a 64-bit hash of its coordinates' bits (``-0.0`` taken as
    ``0.0``): equal points get equal keys; different points almost never do."""
    bits = (points + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    a, b, c = _KEY_MULTIPLIERS
    keys: npt.NDArray[np.uint64] = (bits[:, 0] * a) ^ (bits[:, 1] * b) ^ (bits[:, 2] * c)
    return keys


def edge_keys(
    corners: npt.NDArray[np.uint64], *, directed: bool
) -> tuple[npt.NDArray[np.uint64], ...]:
    """Per side of every triangle (``corners``: its three vertex keys, ``(N, 3)``), a 64-bit
    key of the edge: the same for both walks of an edge unless ``directed``."""
    multiplier = _KEY_MULTIPLIERS[0]
    keys = []
    for u, v in ((0, 1), (1, 2), (2, 0)):
        a, b = corners[:, u], corners[:, v]
        if not directed:
            a, b = np.minimum(a, b), np.maximum(a, b)
        keys.append(a * multiplier + b)  # wraps around: a hash, by design
    return tuple(keys)


def pairs_only(keys: npt.NDArray[np.uint64]) -> bool:
    """Whether sorted ``keys`` hold every value exactly twice."""
    if keys.size % 2:
        return False
    return bool(np.array_equal(keys[0::2], keys[1::2])) and not bool(
        (keys[1:-1:2] == keys[2::2]).any()
    )


def _closed_by_edge_keys(triangles: npt.NDArray[np.float32]) -> bool:
    """Every undirected edge, as a hash of its two corners' keys, occurs exactly twice."""
    keys = np.empty(3 * triangles.shape[0], dtype=np.uint64)
    at = 0
    for chunk in triangle_chunks(triangles):
        corners = vertex_keys(np.ascontiguousarray(chunk).reshape(-1, 3)).reshape(-1, 3)
        for side in edge_keys(corners, directed=False):
            keys[at:at + side.size] = side
            at += side.size
    keys.sort()  # in place: no second array of keys
    return pairs_only(keys)


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


Columns = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


def face_cross(t: npt.NDArray[np.float64]) -> Columns:
    """Per triangle of ``(N, 3, 3)`` float64 corners, ``(v1 - v0) x (v2 - v0)`` as its x, y
    and z columns: the normal scaled by twice the area. The same products and differences as
    ``np.cross``, column by column, which numpy runs several times faster."""
    a0, a1, a2 = (t[:, 1, i] - t[:, 0, i] for i in range(3))
    b0, b1, b2 = (t[:, 2, i] - t[:, 0, i] for i in range(3))
    return a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0


def row_norms(v: Columns) -> npt.NDArray[np.float64]:
    """Length of every row given as x, y, z columns: ``sqrt((x*x + y*y) + z*z)``, the sum
    ``np.linalg.norm(v, axis=1)`` makes, without its slow reduction along rows of three."""
    x, y, z = v
    norms: npt.NDArray[np.float64] = np.sqrt(x * x + y * y + z * z)
    return norms


def row_max(v: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """The largest of every row of ``(N, 3)`` ``v`` (``v.max(axis=1)``, faster)."""
    largest: npt.NDArray[np.floating] = np.maximum(np.maximum(v[:, 0], v[:, 1]), v[:, 2])
    return largest


def transformed_triangles(
    triangles: npt.NDArray[np.float32],
    matrix: npt.NDArray[np.float64],
    translation: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """``matrix @ p + translation`` for every vertex, in float64 slice by slice, stored as a new
    float32 array: the only full-size array made is the result."""
    moved = np.empty(triangles.shape, dtype=np.float32)
    start = 0
    for chunk in triangle_chunks(triangles):
        moved[start:start + chunk.shape[0]] = chunk.astype(np.float64) @ matrix.T + translation
        start += chunk.shape[0]
    return moved


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
        # Measured once: a mesh is a value (its array is never changed in place) and every
        # analysis of a large mesh asks for its bounds; callers get their own copies.
        cached: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = (
            self.__dict__.get("_bounds")
        )
        if cached is None:
            cached = self._measure_bounds()
            self.__dict__["_bounds"] = cached
        return cached[0].copy(), cached[1].copy()

    def _measure_bounds(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
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

    def signed_volume(self) -> float:
        """``sum(v0 . (v1 x v2)) / 6``: positive when the triangles face outwards. Measured
        once per mesh (the normals check and the volume both ask)."""
        cached: float | None = self.__dict__.get("_signed_volume")
        if cached is None:
            cached = self.__dict__["_signed_volume"] = self._measure_signed_volume()
        return cached

    def _measure_signed_volume(self) -> float:
        if self.triangle_count == 0:
            return 0.0
        # Measuring relative to the bounding-box centre keeps float64 sums accurate for meshes
        # placed far from the origin (scanner coordinates often are).
        low, high = self.bounds
        centre = (low + high) / 2.0
        total = 0.0
        for chunk in triangle_chunks(self.triangles):
            t = chunk.astype(np.float64) - centre
            total += float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum())
        return total / 6.0

    def volume(self) -> float:
        """Enclosed volume in cubic units: ``|sum(v0 . (v1 x v2)) / 6|`` (divergence theorem).

        Meaningful for closed meshes; for an open surface it is the volume of the cone the
        surface spans to the bounding-box centre.
        """
        return abs(self.signed_volume())

    def surface_area(self) -> float:
        """Total triangle area in square units."""
        total = 0.0
        for chunk in triangle_chunks(self.triangles):
            total += float(row_norms(face_cross(chunk.astype(np.float64))).sum())
        return total / 2.0

    def is_closed(self) -> bool:
        """True when every edge is shared by exactly two triangles (vertices welded exactly).

        Meshes over :data:`EXACT_WELD_MAX_TRIANGLES` compare edges by 64-bit hashes of their
        corners' coordinates (:func:`vertex_keys`) sorted in place, rather than welding: no
        index arrays of millions of entries. Two different edges would have to hash alike to
        change the answer.
        """
        if self.triangle_count == 0:
            return False
        if self.triangle_count > EXACT_WELD_MAX_TRIANGLES:
            return _closed_by_edge_keys(self.triangles)
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
        return Mesh(transformed_triangles(self.triangles, m, t), self.name, self.source)

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
