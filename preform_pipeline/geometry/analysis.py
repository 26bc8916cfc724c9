"""Print-oriented measurements: footprint, overhangs, a support-volume estimate, and a
simple axis-aligned auto-orientation. All O(N) numpy over the triangles, slice by slice
(:func:`~preform_pipeline.geometry.mesh.triangle_chunks`), so a scan of millions of triangles
costs a few MB of temporaries, not gigabytes.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from .mesh import Columns, Mesh, face_cross, row_max, row_norms, triangle_chunks
from .transforms import AXIS_ALIGNED_ROTATIONS

__all__ = [
    "DEFAULT_FLAT_FACE_ANGLE_DEG",
    "DEFAULT_OVERHANG_ANGLE_DEG",
    "DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM",
    "DEFAULT_SUPPORT_FILL_FACTOR",
    "best_flat_orientation",
    "downward_area",
    "footprint",
    "platform_contact_area",
    "support_volume_estimate",
]

#: A downward-facing surface tilted less than this from horizontal is an overhang that needs
#: supports; steeper surfaces print unsupported (SLA self-supports from roughly 30 degrees).
DEFAULT_OVERHANG_ANGLE_DEG: Final = 30.0
#: Faces whose lowest and highest vertices are within this of the model's lowest point lie on
#: the build platform and need no support.
DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM: Final = 0.05
#: Fraction of the space under an overhang that support pillars fill (thin touchpoints and
#: struts; PreForm's default density is a sparse forest).
DEFAULT_SUPPORT_FILL_FACTOR: Final = 0.08
#: A face counts as flat (for contact with the platform) within this angle of horizontal.
DEFAULT_FLAT_FACE_ANGLE_DEG: Final = 1.0


def footprint(mesh: Mesh) -> tuple[float, float]:
    """Size of the xy bounding box: what the model covers on the platform, as oriented."""
    sx, sy, _ = mesh.size
    return sx, sy


def _face_data(
    triangles: npt.NDArray[np.float32],
) -> tuple[Columns, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per face: area-weighted normal (cross product, as columns), area, and z of the
    centroid."""
    t = triangles.astype(np.float64)
    cross = face_cross(t)
    area = row_norms(cross) / 2.0
    return cross, area, (t[:, 0, 2] + t[:, 1, 2] + t[:, 2, 2]) / 3.0


def _overhang_mask(
    triangles: npt.NDArray[np.float32],
    cross: Columns,
    area: npt.NDArray[np.float64],
    max_angle_deg: float,
    platform: float,
) -> npt.NDArray[np.bool_]:
    """Overhang faces of one slice; ``platform`` is the whole mesh's lowest z."""
    with np.errstate(invalid="ignore", divide="ignore"):
        nz = np.where(area > 0, cross[2] / (2.0 * area), 0.0)
    # Tilt from horizontal of a downward face = angle between its normal and -z.
    downward = -nz > math.cos(math.radians(max_angle_deg))
    top = row_max(triangles[:, :, 2]).astype(np.float64)
    on_platform = top <= platform + DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
    return np.asarray(downward & ~on_platform)


def _lowest_z(mesh: Mesh) -> float:
    return float(mesh.bounds[0][2])


def downward_area(mesh: Mesh, *, max_angle_deg: float = DEFAULT_OVERHANG_ANGLE_DEG) -> float:
    """Area (mm^2) of overhangs: faces pointing down, tilted less than ``max_angle_deg`` from
    horizontal, excluding faces lying on the platform (the model's lowest z)."""
    if mesh.triangle_count == 0:
        return 0.0
    platform = _lowest_z(mesh)
    total = 0.0
    for chunk in triangle_chunks(mesh.triangles):
        cross, area, _ = _face_data(chunk)
        total += float(area[_overhang_mask(chunk, cross, area, max_angle_deg, platform)].sum())
    return total


def support_volume_estimate(
    mesh: Mesh,
    *,
    max_angle_deg: float = DEFAULT_OVERHANG_ANGLE_DEG,
    fill_factor: float = DEFAULT_SUPPORT_FILL_FACTOR,
    raft_thickness_mm: float = 0.0,
) -> float:
    """Rough support material volume in mm^3, as oriented (platform = the model's lowest z).

    Rule: for every overhang face (see :func:`downward_area`), the column under it down to the
    platform — its xy-projected area times its centroid height — filled at ``fill_factor``;
    plus, when ``raft_thickness_mm`` > 0, a solid raft of that thickness under the xy
    bounding box. A box lying flat has no overhangs and no raft by default, so it scores 0.
    """
    if mesh.triangle_count == 0:
        return 0.0
    platform = _lowest_z(mesh)
    column_sum = 0.0
    for chunk in triangle_chunks(mesh.triangles):
        cross, area, centroid_z = _face_data(chunk)
        mask = _overhang_mask(chunk, cross, area, max_angle_deg, platform)
        projected = np.abs(cross[2][mask]) / 2.0
        height = centroid_z[mask] - platform
        column_sum += float((projected * height).sum())
    columns = column_sum * fill_factor
    fx, fy = footprint(mesh)
    return columns + fx * fy * max(0.0, raft_thickness_mm)


def platform_contact_area(
    mesh: Mesh, *, flat_angle_deg: float = DEFAULT_FLAT_FACE_ANGLE_DEG
) -> float:
    """Area of downward flat faces lying at the model's lowest z (what touches the platform)."""
    if mesh.triangle_count == 0:
        return 0.0
    platform = _lowest_z(mesh)
    flat_cos = math.cos(math.radians(flat_angle_deg))
    total = 0.0
    for chunk in triangle_chunks(mesh.triangles):
        t = chunk.astype(np.float64)
        total += _contact_double_area(face_cross(t), t[:, :, 2], 2, 1.0, flat_cos, platform)
    return total / 2.0


def _contact_double_area(
    cross: Columns,
    heights: npt.NDArray[np.float64],
    up_axis: int,
    sign: float,
    flat_cos: float,
    lowest: float,
) -> float:
    """Twice the area of one slice's faces that face down (along ``sign`` times ``up_axis``)
    within the flat angle and lie within the contact tolerance of ``lowest``."""
    double_area = row_norms(cross)
    flat_down = -cross[up_axis] * sign > double_area * flat_cos
    touching = row_max(heights) <= lowest + DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
    return float(double_area[flat_down & touching].sum())


def best_flat_orientation(mesh: Mesh) -> npt.NDArray[np.float64]:
    """The axis-aligned rotation (of 24) that puts the largest flat face on the platform.

    Ties (the four turns about z share a contact area) are broken by the lower height, then by
    a footprint wider in x than in y (build platforms are wider than deep), then by the fixed
    candidate order, identity first, so the result is deterministic.

    Each candidate's third row is the (signed) model axis that becomes +z, so contact areas
    are computed once per axis direction: six O(N) passes, not 24.
    """
    if mesh.triangle_count == 0:
        return np.eye(3)
    flat_cos = math.cos(math.radians(DEFAULT_FLAT_FACE_ANGLE_DEG))
    low, high = mesh.bounds
    extent = high - low
    ups = []
    for rotation in AXIS_ALIGNED_ROTATIONS:
        axis = int(np.abs(rotation[2]).argmax())
        up = (axis, float(rotation[2, axis]))
        if up not in ups:
            ups.append(up)
    doubled = dict.fromkeys(ups, 0.0)
    for chunk in triangle_chunks(mesh.triangles):
        t = chunk.astype(np.float64)
        cross = face_cross(t)
        for axis, sign in ups:
            # The lowest point along the up direction: the bounds, exactly (the float32
            # coordinates widened to float64, as the slice's are).
            lowest = float(low[axis]) if sign > 0 else -float(high[axis])
            heights = t[:, :, axis] * sign
            doubled[(axis, sign)] += _contact_double_area(
                cross, heights, axis, sign, flat_cos, lowest
            )
    best: tuple[float, float, float, int] | None = None
    best_index = 0
    for index, rotation in enumerate(AXIS_ALIGNED_ROTATIONS):
        axes = np.abs(rotation).argmax(axis=1)  # model axis that lands on scene x, y, z
        up_axis = int(axes[2])
        contact = doubled[(up_axis, float(rotation[2, up_axis]))] / 2
        sx, sy, sz = (float(extent[a]) for a in axes)
        # Round so float noise between equivalent rotations does not decide.
        score = (-round(contact, 6), round(sz, 6), 0.0 if sx + 1e-9 >= sy else 1.0, index)
        if best is None or score < best:
            best, best_index = score, index
    return AXIS_ALIGNED_ROTATIONS[best_index].copy()
