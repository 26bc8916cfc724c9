"""Which way a closed mesh's triangles face, and turning the wrong ones round.

A solid's triangles list their corners counter-clockwise seen from outside, so every edge is
walked once in each direction by the two triangles that share it. Two faults break that:

- **inconsistent**: some triangles are flipped relative to their neighbours (an edge is
  walked twice in the same direction);
- **inverted**: all are consistent, but they face inwards (the signed volume is negative).

:func:`orientation_fault` names the fault; :func:`reoriented` returns the mesh with every
triangle of each connected shell turned to agree with the shell's first triangle, and each
shell turned outwards (positive signed volume). Open or non-manifold meshes are not judged
here (:func:`preform_pipeline.geometry.mesh_defects` reports them).

Meshes over :data:`ORIENTATION_CHECK_MAX_TRIANGLES` (scans of millions of triangles) are
judged on a sample: the edges whose hashed key falls in one :data:`EDGE_SAMPLE_SHARE` of the
key space, so both walks of a sampled edge are in the sample, checked exactly as above; and
the whole mesh's signed volume. A flipped patch is found unless none of its edges is sampled
(a patch of a few hundred triangles almost never escapes). Re-orienting such a mesh face by
face would take minutes: an inverted one is turned whole, an inconsistent one is left to the
server's repair on import.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from .mesh import Mesh, edge_keys, pairs_only, triangle_chunks, vertex_keys, weld_vertices

__all__ = [
    "EDGE_SAMPLE_SHARE",
    "ORIENTATION_CHECK_MAX_TRIANGLES",
    "ORIENTATION_PHRASES",
    "OrientationFault",
    "corner_ids",
    "hashed_manifold",
    "orientation_fault",
    "reoriented",
]

#: Larger meshes are judged on a sample of their edges (the exact bookkeeping costs a sort
#: of every corner and, to repair, a walk over every triangle).
ORIENTATION_CHECK_MAX_TRIANGLES: Final = 200_000
#: Share of a large mesh's edges the sampled judgement looks at.
EDGE_SAMPLE_SHARE: Final = 1 / 16
# Edge keys are uniform over 64 bits: the sampled ones are the lowest sixteenth.
_SAMPLE_LIMIT: Final = np.uint64(2**64 * EDGE_SAMPLE_SHARE - 1)

OrientationFault = Literal["inverted", "inconsistent"]
#: Each fault as a user reads it.
ORIENTATION_PHRASES: Final[dict[str, str]] = {
    "inverted": "the triangles face inwards (the mesh is inside out)",
    "inconsistent": "some triangles face the wrong way (inconsistent normals)",
}


# Marks a large mesh whose sampled fault has not been judged yet (None is a judgement).
_NOT_JUDGED: Final = object()


def corner_ids(mesh: Mesh) -> tuple[npt.NDArray[np.int64], bool, bool]:
    """Per corner ``(N, 3)``, an id shared by corners with the same coordinates, from a 64-bit
    hash of their bits (:func:`vertex_keys`); whether those ids are exact; and whether every
    edge they make is shared by exactly two triangles.

    Exact means no two different points hashed alike: every corner equals one chosen corner of
    its id, checked point by point, so the ids then group the corners exactly as
    :func:`weld_vertices` does (``-0.0`` and ``0.0`` alike). Hashed ids sort several times
    faster than the 12-byte records a weld sorts.
    """
    points = mesh.triangles.reshape(-1, 3)
    keys, inverse = np.unique(vertex_keys(points), return_inverse=True)
    # One corner of each id (any will do: all of an id's corners must equal it).
    some = np.empty(keys.size, dtype=np.int64)
    some[inverse] = np.arange(inverse.size)
    exact = bool((points[some][inverse] == points).all())
    faces = inverse.reshape(-1, 3).astype(np.int64)
    return faces, exact, _manifold(faces)


def hashed_manifold(mesh: Mesh) -> bool:
    """Whether every edge is shared by exactly two triangles, corners grouped by their hashed
    coordinates (:func:`corner_ids`), for a mesh of at most
    :data:`ORIENTATION_CHECK_MAX_TRIANGLES` triangles."""
    return _corner_facts(mesh)[0]


def _corner_facts(mesh: Mesh) -> tuple[bool, OrientationFault | None]:
    """:func:`hashed_manifold` and :func:`orientation_fault` of a mesh of 1 to
    :data:`ORIENTATION_CHECK_MAX_TRIANGLES` triangles, from one grouping of its corners.

    Kept on the mesh (a value, as its bounds are): the defect check and the normals check
    both ask. Only the two answers are kept, not the ids: scenes keep their meshes.
    """
    cached: tuple[bool, OrientationFault | None] | None = mesh.__dict__.get("_corner_facts")
    if cached is None:
        faces, exact, hashed = corner_ids(mesh)
        manifold = hashed
        if not exact:  # two points hashed alike: weld them exactly (never seen in practice)
            faces = _faces(mesh)
            manifold = _manifold(faces)
        fault = _fault(mesh, faces) if manifold else None
        cached = mesh.__dict__["_corner_facts"] = (hashed, fault)
    return cached


def _faces(mesh: Mesh) -> npt.NDArray[np.int64]:
    _, faces = weld_vertices(mesh.triangles)
    return faces.astype(np.int64)


def _directed_codes(faces: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    n = np.int64(faces.max() + 1)
    a = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    b = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    codes: npt.NDArray[np.int64] = a * n + b
    return codes


def _manifold(faces: npt.NDArray[np.int64]) -> bool:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges.sort(axis=1)
    codes = edges[:, 0] * np.int64(faces.max() + 1) + edges[:, 1]
    _, counts = np.unique(codes, return_counts=True)
    return bool(np.all(counts == 2))


def _signed_volume(triangles: npt.NDArray[np.float64]) -> float:
    t = triangles - triangles.reshape(-1, 3).mean(axis=0)
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def _sampled_fault(mesh: Mesh) -> OrientationFault | None:
    """:func:`orientation_fault` of a large mesh, judged on a sample of its edges."""
    undirected: list[npt.NDArray[np.uint64]] = []
    directed: list[npt.NDArray[np.uint64]] = []
    for chunk in triangle_chunks(mesh.triangles):
        corners = vertex_keys(np.ascontiguousarray(chunk).reshape(-1, 3)).reshape(-1, 3)
        for either, walked in zip(
            edge_keys(corners, directed=False), edge_keys(corners, directed=True), strict=True
        ):
            sampled = either <= _SAMPLE_LIMIT
            undirected.append(either[sampled])
            directed.append(walked[sampled])
    edges = np.concatenate(undirected)
    edges.sort()
    if not pairs_only(edges):
        return None  # open or non-manifold where sampled: not judged
    walks = np.concatenate(directed)
    walks.sort()
    if bool((walks[1:] == walks[:-1]).any()):  # an edge walked twice the same way
        return "inconsistent"
    return "inverted" if mesh.signed_volume() < 0 else None


def orientation_fault(mesh: Mesh) -> OrientationFault | None:
    """``inconsistent``, ``inverted`` or None (consistent and outward, or not judged: empty,
    open or non-manifold). Meshes over :data:`ORIENTATION_CHECK_MAX_TRIANGLES` are judged on
    a sample of their edges. Judged once per mesh: reading a model and checking its normals
    both ask."""
    if mesh.triangle_count == 0:
        return None
    if mesh.triangle_count <= ORIENTATION_CHECK_MAX_TRIANGLES:
        return _corner_facts(mesh)[1]
    sampled = mesh.__dict__.get("_sampled_fault", _NOT_JUDGED)
    if sampled is _NOT_JUDGED:
        sampled = mesh.__dict__["_sampled_fault"] = _sampled_fault(mesh)
    fault: OrientationFault | None = sampled
    return fault


def _fault(mesh: Mesh, faces: npt.NDArray[np.int64]) -> OrientationFault | None:
    """The fault of a manifold mesh whose corners ``faces`` groups exactly."""
    codes = _directed_codes(faces)
    if np.unique(codes).size != codes.size:
        return "inconsistent"
    if _signed_volume(mesh.triangles.astype(np.float64)) < 0:
        return "inverted"
    return None


def reoriented(mesh: Mesh) -> tuple[Mesh, int]:
    """The mesh with consistent, outward-facing triangles, and how many were turned.

    Each connected shell is walked breadth-first from its first triangle: a neighbour that
    walks the shared edge in the same direction is flipped. A shell whose signed volume is
    then negative is flipped whole. A mesh :func:`orientation_fault` does not judge is
    returned as it is. A mesh over :data:`ORIENTATION_CHECK_MAX_TRIANGLES` is turned whole
    when inverted and returned as it is (0 turned) when inconsistent.
    """
    fault = orientation_fault(mesh)
    if fault is None:
        return mesh, 0
    if mesh.triangle_count > ORIENTATION_CHECK_MAX_TRIANGLES:
        if fault == "inconsistent":
            return mesh, 0
        return Mesh(mesh.triangles[:, ::-1].copy(), mesh.name, mesh.source), mesh.triangle_count
    faces = _faces(mesh)
    count = faces.shape[0]
    flip = np.zeros(count, dtype=bool)
    seen = np.zeros(count, dtype=bool)
    # Undirected edge -> the (one or two) triangles holding it, with the edge's direction.
    holders: dict[tuple[int, int], list[tuple[int, bool]]] = {}
    for index, (a, b, c) in enumerate(faces.tolist()):
        for u, v in ((a, b), (b, c), (c, a)):
            holders.setdefault((min(u, v), max(u, v)), []).append((index, u < v))
    shells: list[list[int]] = []
    for start in range(count):
        if seen[start]:
            continue
        seen[start] = True
        shell = [start]
        queue = deque([start])
        while queue:
            face = queue.popleft()
            a, b, c = faces[face].tolist()
            for u, v in ((a, b), (b, c), (c, a)):
                forward = (u < v) != bool(flip[face])
                for other, other_forward in holders[(min(u, v), max(u, v))]:
                    if other == face or seen[other]:
                        continue
                    # Neighbours must walk the shared edge in opposite directions.
                    flip[other] = other_forward == forward
                    seen[other] = True
                    shell.append(other)
                    queue.append(other)
        shells.append(shell)
    triangles = mesh.triangles.copy()
    triangles[flip] = triangles[flip][:, ::-1]
    for shell in shells:
        members = np.asarray(shell)
        if _signed_volume(triangles[members].astype(np.float64)) < 0:
            triangles[members] = triangles[members][:, ::-1]
            flip[members] = ~flip[members]
    return Mesh(triangles, mesh.name, mesh.source), int(flip.sum())
