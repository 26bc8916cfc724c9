"""Mesh edits the simulated server makes: closing holes, scan-to-model, cages and plugs.

Holes are found as boundary edges (edges used by one triangle after welding equal vertices)
and chained into loops. Each loop is closed with a fan of triangles to the loop's centroid;
a fan over a non-convex loop may overlap itself in the plane, but it is topologically closed
and its signed area is exact, so ``is_closed()`` holds and the divergence-theorem volume is
right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.geometry import Mesh, weld_vertices

__all__ = [
    "ScanResult",
    "box_frame_triangles",
    "box_triangles",
    "boundary_edges",
    "close_holes",
    "cylinder_triangles",
    "scan_to_solid",
]

FloatArray = npt.NDArray[np.float64]
#: Facets of the simulated drain-hole plugs.
_CYLINDER_SEGMENTS: Final = 24


def boundary_edges(
    mesh: Mesh,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(vertices, boundary, loop_ids)``: welded vertices, directed boundary edges ``(E, 2)``
    as their triangle runs them, and a loop number per boundary edge."""
    vertices, faces = weld_vertices(mesh.triangles)
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    codes = undirected[:, 0] * np.int64(max(1, len(vertices))) + undirected[:, 1]
    _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    boundary = directed[counts[inverse.ravel()] == 1]
    return vertices, boundary, _loop_ids(boundary)


def _loop_ids(boundary: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Chain boundary edges head to tail; an edge whose chain cannot be followed (a vertex
    with several outgoing boundary edges) starts a loop of its own."""
    outgoing: dict[int, int] = {}
    for index, start in enumerate(boundary[:, 0].tolist()):
        outgoing.setdefault(start, index)
    loop = np.full(len(boundary), -1, dtype=np.int64)
    current = 0
    for first in range(len(boundary)):
        if loop[first] >= 0:
            continue
        edge: int | None = first
        while edge is not None and loop[edge] < 0:
            loop[edge] = current
            edge = outgoing.get(int(boundary[edge, 1]))
        current += 1
    return loop


def _signed_volume(triangles: FloatArray) -> float:
    t = triangles - triangles.reshape(-1, 3).mean(axis=0)
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def _outward(triangles: FloatArray) -> FloatArray:
    """Flip every triangle when the closed surface's normals point inwards."""
    if _signed_volume(triangles) < 0:
        return triangles[:, [0, 2, 1]]
    return triangles


def _fan_caps(
    rim: FloatArray, boundary: npt.NDArray[np.int64], loops: npt.NDArray[np.int64]
) -> FloatArray:
    """One triangle per boundary edge ``a -> b`` (rim points), ``(centroid, b, a)``: the
    reverse direction of the edge, so the cap pairs with the surface it closes."""
    caps = np.empty((len(boundary), 3, 3))
    for loop in np.unique(loops):
        mask = loops == loop
        edges = boundary[mask]
        centroid = rim[edges[:, 0]].mean(axis=0)
        caps[mask, 0] = centroid
        caps[mask, 1] = rim[edges[:, 1]]
        caps[mask, 2] = rim[edges[:, 0]]
    return caps


def close_holes(mesh: Mesh) -> tuple[Mesh, int]:
    """The mesh with every hole capped, and how many holes there were (REPAIR on import)."""
    vertices, boundary, loops = boundary_edges(mesh)
    if len(boundary) == 0:
        return mesh, 0
    rim = vertices.astype(np.float64)
    caps = _fan_caps(rim, boundary, loops)
    closed = np.concatenate([mesh.triangles.astype(np.float64), caps])
    return Mesh(_outward(closed).astype(np.float32), mesh.name, mesh.source), int(loops.max() + 1)


@dataclass(frozen=True)
class ScanResult:
    """A solid made from an open scan, and how it was made."""

    mesh: Mesh
    cutoff_z: float
    base_z: float
    removed_triangles: int
    holes_closed: int


def scan_to_solid(
    mesh: Mesh,
    *,
    cutoff_height_mm: float,
    extrude_distance_mm: float = 0.0,
    cutoff_below_gumline_mm: float | None = None,
) -> ScanResult:
    """Close an open scan surface into a solid by extruding its rim down to a flat base.

    Heights are measured from the scan's lowest point. Triangles with any vertex at or below
    the cutoff height are removed. Every boundary vertex of what remains is dropped
    vertically to the base plane, ``extrude_distance_mm`` below the cutoff; side walls join
    each rim edge to its dropped copy and a base cap closes each dropped loop.

    With ``cutoff_below_gumline_mm`` the cutoff is that far below the gumline instead; the
    simulator has no tooth segmentation and takes the mean height of the scan's rim (where a
    dental scan ends, in the gums) as the gumline.

    Raises ``ValueError`` when the cutoff removes the whole scan.
    """
    tri = mesh.triangles.astype(np.float64)
    z0 = float(tri[:, :, 2].min())
    cutoff_z = z0 + cutoff_height_mm
    if cutoff_below_gumline_mm is not None:
        vertices, boundary, _ = boundary_edges(mesh)
        if len(boundary):
            gumline = float(vertices[np.unique(boundary[:, 0]), 2].astype(np.float64).mean())
        else:
            gumline = float(tri[:, :, 2].max())
        cutoff_z = gumline - cutoff_below_gumline_mm
    keep = tri[:, :, 2].min(axis=1) > cutoff_z
    if not keep.any():
        raise ValueError(
            f"the cutoff at {cutoff_z - z0:.3f} mm above the scan's lowest point removes the "
            "whole scan"
        )
    kept = Mesh(tri[keep].astype(np.float32), mesh.name, mesh.source)
    base_z = cutoff_z - extrude_distance_mm
    vertices, boundary, loops = boundary_edges(kept)
    if len(boundary) == 0:
        return ScanResult(kept, cutoff_z, base_z, int((~keep).sum()), 0)
    rim = vertices.astype(np.float64)
    dropped = rim.copy()
    dropped[:, 2] = base_z
    a, b = boundary[:, 0], boundary[:, 1]
    walls = np.concatenate(
        [
            np.stack([rim[b], rim[a], dropped[a]], axis=1),
            np.stack([rim[b], dropped[a], dropped[b]], axis=1),
        ]
    )
    caps = _fan_caps(dropped, boundary, loops)
    solid = np.concatenate([kept.triangles.astype(np.float64), walls, caps])
    return ScanResult(
        Mesh(_outward(solid).astype(np.float32), mesh.name, mesh.source),
        cutoff_z,
        base_z,
        int((~keep).sum()),
        int(loops.max() + 1),
    )


def box_triangles(low: tuple[float, float, float], high: tuple[float, float, float]) -> FloatArray:
    """The 12 outward-facing triangles of an axis-aligned box."""
    x0, y0, z0 = low
    x1, y1, z1 = high
    p = np.array(
        [
            [x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
            [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1],
        ]
    )
    faces = [
        (0, 2, 1), (0, 3, 2), (4, 5, 6), (4, 6, 7), (0, 1, 5), (0, 5, 4),
        (1, 2, 6), (1, 6, 5), (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7),
    ]
    out: FloatArray = p[np.array(faces)]
    return out


def _triple(values: FloatArray) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def box_frame_triangles(
    low: tuple[float, float, float], high: tuple[float, float, float], bar: float
) -> FloatArray:
    """A cage: square bars of width ``bar`` along the 12 edges of the box ``low``-``high``
    (bars lie inside the box)."""
    lo, hi = np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)
    bars = []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        for first in (lo[others[0]], hi[others[0]] - bar):
            for second in (lo[others[1]], hi[others[1]] - bar):
                start, end = lo.copy(), hi.copy()
                start[others[0]], end[others[0]] = first, first + bar
                start[others[1]], end[others[1]] = second, second + bar
                bars.append(box_triangles(_triple(start), _triple(end)))
    return np.concatenate(bars)


def cylinder_triangles(radius: float, height: float) -> FloatArray:
    """A closed, outward-facing cylinder standing on z = 0, axis along z (a drain-hole plug)."""
    angles = np.linspace(0.0, 2.0 * math.pi, _CYLINDER_SEGMENTS, endpoint=False)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    nxt = np.roll(ring, -1, axis=0)
    zeros, tops = np.zeros(len(ring)), np.full(len(ring), height)

    def pts(xy: FloatArray, z: FloatArray) -> FloatArray:
        return np.concatenate([xy, z[:, None]], axis=1)

    bottom_c, top_c = np.zeros((len(ring), 3)), pts(np.zeros_like(ring), tops)
    side1 = np.stack([pts(ring, zeros), pts(nxt, zeros), pts(nxt, tops)], axis=1)
    side2 = np.stack([pts(ring, zeros), pts(nxt, tops), pts(ring, tops)], axis=1)
    bottom = np.stack([bottom_c, pts(nxt, zeros), pts(ring, zeros)], axis=1)
    top = np.stack([top_c, pts(ring, tops), pts(nxt, tops)], axis=1)
    return np.concatenate([side1, side2, bottom, top])
