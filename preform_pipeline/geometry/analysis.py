"""Print-oriented measurements: footprint, overhangs, a support-volume estimate, and a
simple axis-aligned auto-orientation. All O(N) numpy over the triangles.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from .mesh import Mesh
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
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per face: area-weighted normal (cross product), area, and z of the centroid."""
    t = triangles.astype(np.float64)
    cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    area = np.linalg.norm(cross, axis=1) / 2.0
    return cross, area, t[:, :, 2].mean(axis=1)


def _overhang_mask(
    triangles: npt.NDArray[np.float32],
    cross: npt.NDArray[np.float64],
    area: npt.NDArray[np.float64],
    max_angle_deg: float,
) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore", divide="ignore"):
        nz = np.where(area > 0, cross[:, 2] / (2.0 * area), 0.0)
    # Tilt from horizontal of a downward face = angle between its normal and -z.
    downward = -nz > math.cos(math.radians(max_angle_deg))
    z = triangles[:, :, 2].astype(np.float64)
    platform = z.min() if z.size else 0.0
    on_platform = z.max(axis=1) <= platform + DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
    return np.asarray(downward & ~on_platform)


def downward_area(mesh: Mesh, *, max_angle_deg: float = DEFAULT_OVERHANG_ANGLE_DEG) -> float:
    """Area (mm^2) of overhangs: faces pointing down, tilted less than ``max_angle_deg`` from
    horizontal, excluding faces lying on the platform (the model's lowest z)."""
    if mesh.triangle_count == 0:
        return 0.0
    cross, area, _ = _face_data(mesh.triangles)
    return float(area[_overhang_mask(mesh.triangles, cross, area, max_angle_deg)].sum())


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
    cross, area, centroid_z = _face_data(mesh.triangles)
    mask = _overhang_mask(mesh.triangles, cross, area, max_angle_deg)
    projected = np.abs(cross[mask, 2]) / 2.0
    height = centroid_z[mask] - float(mesh.bounds[0][2])
    columns = float((projected * height).sum()) * fill_factor
    fx, fy = footprint(mesh)
    return columns + fx * fy * max(0.0, raft_thickness_mm)


def platform_contact_area(
    mesh: Mesh, *, flat_angle_deg: float = DEFAULT_FLAT_FACE_ANGLE_DEG
) -> float:
    """Area of downward flat faces lying at the model's lowest z (what touches the platform)."""
    if mesh.triangle_count == 0:
        return 0.0
    return _contact_area(mesh.triangles.astype(np.float64), flat_angle_deg)


def _contact_area(t: npt.NDArray[np.float64], flat_angle_deg: float) -> float:
    cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    flat_down = -cross[:, 2] > double_area * math.cos(math.radians(flat_angle_deg))
    z = t[:, :, 2]
    low = z.min()
    touching = z.max(axis=1) <= low + DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
    return float(double_area[flat_down & touching].sum() / 2.0)


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
    t = mesh.triangles.astype(np.float64)
    cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    flat_cos = math.cos(math.radians(DEFAULT_FLAT_FACE_ANGLE_DEG))
    low, high = mesh.bounds
    extent = high - low
    contact_by_up: dict[tuple[int, float], float] = {}
    best: tuple[float, float, float, int] | None = None
    best_index = 0
    for index, rotation in enumerate(AXIS_ALIGNED_ROTATIONS):
        axes = np.abs(rotation).argmax(axis=1)  # model axis that lands on scene x, y, z
        up_axis = int(axes[2])
        sign = float(rotation[2, up_axis])
        if (up_axis, sign) not in contact_by_up:
            z = t[:, :, up_axis] * sign
            flat_down = -cross[:, up_axis] * sign > double_area * flat_cos
            touching = z.max(axis=1) <= z.min() + DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM
            contact_by_up[(up_axis, sign)] = float(double_area[flat_down & touching].sum() / 2)
        contact = contact_by_up[(up_axis, sign)]
        sx, sy, sz = (float(extent[a]) for a in axes)
        # Round so float noise between equivalent rotations does not decide.
        score = (-round(contact, 6), round(sz, 6), 0.0 if sx + 1e-9 >= sy else 1.0, index)
        if best is None or score < best:
            best, best_index = score, index
    return AXIS_ALIGNED_ROTATIONS[best_index].copy()
