"""Where auto-layout (SLA platform) and auto-pack / pack-and-cage (SLS volume) put models.

Both compute new transforms first and return them; the engine applies them only when every
model found a place, so a failed layout leaves the scene exactly as it was.

* Platform layout: each model's footprint is its shadow on the platform (grown by its raft
  border when it has supports and rafts may not overlap), placed by the simulator's own
  packer (:mod:`.outline_pack`) onto the platform (or the requested custom bounds) with the
  requested spacing; a model the packer turned is rotated about z.
* Volume packing (SLS): models are packed in horizontal layers. The first layer starts at the
  chamber floor; the packer fills it with as many footprints as fit; the next layer starts
  above the tallest model of the previous one plus the spacing; and so on until every model
  is placed, or a layer would reach above the build volume (then nothing fits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from preform_pipeline.geometry import Mesh, best_flat_orientation, euler_matrix, matrix_to_euler
from preform_pipeline.geometry.mesh import triangle_chunks
from preform_pipeline.wording import counted

from .meshops import box_frame_triangles
from .outline_pack import PackedShape, Shape, pack_shapes
from .protocol import SimError
from .scene import SimModel, new_id

__all__ = [
    "DEFAULT_LAYOUT_MARGIN_MM",
    "DEFAULT_MODEL_SPACING_MM",
    "DEFAULT_RAFT_BORDER_MM",
    "RAFT_BORDERS_MM",
    "MODELS_DO_NOT_FIT",
    "Bounds2D",
    "Move",
    "boxes_overlap",
    "build_cage",
    "dental_rotation",
    "orient_rotation",
    "layout_on_platform",
    "pack_in_volume",
    "raft_border",
]

MODELS_DO_NOT_FIT: Final = "MODELS_DO_NOT_FIT"
#: The server's ``model_spacing_mm`` when a request gives none (and the gap between copies).
DEFAULT_MODEL_SPACING_MM: Final = 2.0
#: Gap kept between footprints and the edge of the layout area.
DEFAULT_LAYOUT_MARGIN_MM: Final = 0.0
#: How far a full raft reaches beyond the model's shadow on each side. PreForm draws the raft
#: under the support roots with a sloped rim; the Local API contract states no figure, so the
#: simulator takes the rim as wide as the default raft is thick (2 mm, 45-degree slope).
DEFAULT_RAFT_BORDER_MM: Final = 2.0
#: Raft border by raft type: mini rafts hug the part; rafts on the platform per support
#: root reach out only by a root's radius.
RAFT_BORDERS_MM: Final = MappingProxyType(
    {"FULL_RAFT": DEFAULT_RAFT_BORDER_MM, "MINI_RAFT": 1.0, "MINI_RAFTS_ON_BP": 0.5}
)


@dataclass(frozen=True)
class Bounds2D:
    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def size(self) -> tuple[float, float]:
        return self.x_max - self.x_min, self.y_max - self.y_min

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x_min + self.x_max) / 2.0, (self.y_min + self.y_max) / 2.0


@dataclass(frozen=True)
class Move:
    """A model's new transform."""

    orientation: tuple[float, float, float]
    position: tuple[float, float, float]


def _turned(model: SimModel, angle_deg: float) -> tuple[float, float, float]:
    if angle_deg == 0.0:
        return model.orientation
    return matrix_to_euler(euler_matrix(0.0, 0.0, angle_deg) @ euler_matrix(*model.orientation))


def raft_border(model: SimModel, full_raft_mm: float | None = None) -> float:
    """How far the model's raft reaches beyond its shadow: by raft type (``full_raft_mm``
    overrides the full raft's), 0 when unsupported."""
    if not model.has_supports:
        return 0.0
    kind = str(model.support.get("raft_type", "FULL_RAFT"))
    if kind == "FULL_RAFT" and full_raft_mm is not None:
        return full_raft_mm
    return RAFT_BORDERS_MM.get(kind, DEFAULT_RAFT_BORDER_MM)


def _shapes(
    models: Sequence[SimModel], spacing: float, rafts: bool, full_raft_mm: float | None = None
) -> list[Shape]:
    return [
        Shape(m.id, m.shadow(), spacing / 2.0 + (raft_border(m, full_raft_mm) if rafts else 0.0))
        for m in models
    ]


def _too_big(models: Sequence[SimModel], unplaced: Sequence[str], where: str) -> SimError:
    names = [m.name for m in models if m.id in set(unplaced)]
    listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
    # People read this; the client reads only the code and the names in parentheses.
    which = f"{len(names)} of {counted(len(models), 'model')}"
    verb = "does" if len(names) == 1 else "do"
    return SimError(
        400,
        MODELS_DO_NOT_FIT,
        f"{which} {verb} not fit {where} ({listed}); the scene is unchanged",
    )


def _moves(
    models: Sequence[SimModel],
    placed: Sequence[PackedShape],
    corner: tuple[float, float],
    z: dict[str, float],
    inside: Bounds2D | None = None,
    borders: dict[str, float] | None = None,
) -> dict[str, Move]:
    """Turn each packed shape into the model's new orientation and footprint centre.

    Shadow points are relative to the footprint centre; after the turn, the new footprint
    centre is the centre of the turned mesh's box, found exactly from the turned vertices.
    """
    by_id = {m.id: m for m in models}
    moves: dict[str, Move] = {}
    for item in placed:
        model = by_id[item.key]
        orientation = _turned(model, item.angle_deg)
        before = _box_centre(_turned_box(model.mesh.triangles, model.linear()))
        turned = euler_matrix(*orientation) * (model.scale * model.unit_factor)
        turned_box = _turned_box(model.mesh.triangles, turned)
        after = _box_centre(turned_box)
        # The packer turned the shadow about the old footprint centre; the turned model's
        # footprint centre sits (after - turn(before)) away from where that centre went.
        a = math.radians(item.angle_deg)
        c, s = math.cos(a), math.sin(a)
        went = (c * before[0] - s * before[1], s * before[0] + c * before[1])
        x = corner[0] + item.dx + after[0] - went[0]
        y = corner[1] + item.dy + after[1] - went[1]
        if inside is not None:
            # The shadow's points are a sample: a turned corner may poke out of the area by
            # a fraction of a millimetre. Keep the model and its raft inside.
            border = (borders or {}).get(model.id, 0.0)
            low, high = turned_box
            hx, hy = (float(v) for v in (high - low) / 2.0 + border)
            x = _clamp(x, inside.x_min + hx, inside.x_max - hx)
            y = _clamp(y, inside.y_min + hy, inside.y_max - hy)
        moves[model.id] = Move(orientation, (x, y, z[model.id]))
    return moves


def _clamp(value: float, low: float, high: float) -> float:
    return float(value if low > high else min(max(value, low), high))


_Box2D = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _turned_box(triangles: npt.NDArray[np.float32], linear: npt.NDArray[np.float64]) -> _Box2D:
    """The xy box ``(low, high)`` of the vertices mapped by ``linear``, slice by slice (a
    float64 copy of a scan's vertices would be twice the mesh)."""
    low = np.full(2, np.inf)
    high = np.full(2, -np.inf)
    for chunk in triangle_chunks(triangles):
        points = chunk.reshape(-1, 3).astype(np.float64) @ linear.T
        low = np.minimum(low, points[:, :2].min(axis=0))
        high = np.maximum(high, points[:, :2].max(axis=0))
    return low, high


def _box_centre(box: _Box2D) -> tuple[float, float]:
    low, high = box
    return float(low[0] + high[0]) / 2.0, float(low[1] + high[1]) / 2.0


def _useful_spacing(spacing: float, *extents: float) -> float:
    """``spacing``, no wider than twice the diagonal of the space laid out. Past its diagonal
    a gap keeps every second model out, and a lone model lands in the same place (within the
    raster's 1 mm cell); a wider gap would only widen the packing raster, to seconds and
    gigabytes (a hostile 1e308 could not be allocated at all)."""
    return min(spacing, 2 * math.hypot(*extents))


def layout_on_platform(
    models: Sequence[SimModel],
    area: Bounds2D,
    *,
    spacing: float,
    allow_rotation: bool,
    rafts: bool,
    full_raft_mm: float | None = None,
) -> dict[str, Move]:
    """New transforms placing every model's shadow (grown by its raft border when ``rafts``)
    inside ``area``, at least ``spacing`` apart, or 400 MODELS_DO_NOT_FIT."""
    if not models:
        return {}
    # Half the spacing may reach past the area's edge: only the gap between models counts.
    width, depth = area.size
    spacing = _useful_spacing(spacing, width, depth)
    placed, unplaced = pack_shapes(
        _shapes(models, spacing, rafts, full_raft_mm), (width + spacing, depth + spacing),
        allow_rotation=allow_rotation,
    )
    if unplaced:
        raise _too_big(models, unplaced, "on the build platform")
    corner = (area.x_min - spacing / 2.0, area.y_min - spacing / 2.0)
    borders = {m.id: raft_border(m, full_raft_mm) if rafts else 0.0 for m in models}
    return _moves(models, placed, corner, {m.id: m.position[2] for m in models}, area, borders)


def pack_in_volume(
    models: Sequence[SimModel],
    volume: tuple[float, float, float],
    *,
    spacing: float,
    allow_rotation: bool,
    inset: float = 0.0,
) -> dict[str, Move]:
    """New transforms stacking every model in layers inside the build volume (less ``inset``
    on every side, e.g. for a cage), or 400 MODELS_DO_NOT_FIT."""
    if not models:
        return {}
    bx, by, bz = volume
    spacing = _useful_spacing(spacing, bx, by, bz)
    area = (bx - 2 * inset, by - 2 * inset)
    if min(area) <= 0:
        raise SimError(400, MODELS_DO_NOT_FIT, "the cage leaves no room inside the build volume")
    heights = {m.id: float(m.bounds()[1][2] - m.bounds()[0][2]) for m in models}
    remaining = list(models)
    floor = inset
    moves: dict[str, Move] = {}
    corner = (-area[0] / 2.0 - spacing / 2.0, -area[1] / 2.0 - spacing / 2.0)
    while remaining:
        placed, unplaced = pack_shapes(
            _shapes(remaining, spacing, False), (area[0] + spacing, area[1] + spacing),
            allow_rotation=allow_rotation,
        )
        if not placed:
            raise _too_big(models, unplaced, "in the build volume")
        layer_height = max(heights[p.key] for p in placed)
        if floor + layer_height > bz - inset + 1e-9:
            left = [p.key for p in placed] + list(unplaced)
            raise _too_big(models, left, "in the build volume")
        moves.update(_moves(remaining, placed, corner, {m.id: floor for m in remaining},
                            Bounds2D(-area[0] / 2, area[0] / 2, -area[1] / 2, area[1] / 2)))
        floor += layer_height + spacing
        left_over = set(unplaced)
        remaining = [m for m in remaining if m.id in left_over]
    return moves


_Box = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def boxes_overlap(a: _Box, b: _Box, gap: float) -> bool:
    """Axis-aligned boxes closer than ``gap`` (touching counts when ``gap`` > 0)."""
    (alo, ahi), (blo, bhi) = a, b
    return bool(np.all(alo - gap < bhi) and np.all(blo - gap < ahi))



def dental_rotation(base_down: Mesh, tilt_deg: float) -> npt.NDArray[np.float64]:
    """Dental rule, applied once the base is down: turn the arch so its widest extent (the
    principal axis of the surface in x/y, area-weighted so tessellation does not matter)
    runs along x, then tilt the occlusal plane by ``tilt_deg`` about x."""
    t = base_down.triangles.astype(np.float64)
    area = np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1) / 2.0
    total = float(area.sum())
    xy = t[:, :, :2]
    if total <= 0:
        return euler_matrix(float(tilt_deg), 0.0, 0.0)
    # Exact second moment of each triangle: A/12 * (sum of v v^T + s s^T), s = vertex sum.
    s = xy.sum(axis=1)
    second = np.einsum("nvi,nvj->nij", xy, xy) + np.einsum("ni,nj->nij", s, s)
    moment = np.einsum("n,nij->ij", area / 12.0, second) / total
    mean = np.einsum("n,ni->i", area, s / 3.0) / total
    cov = moment - np.outer(mean, mean)
    angle = 0.5 * math.degrees(math.atan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))
    return euler_matrix(float(tilt_deg), 0.0, 0.0) @ euler_matrix(0.0, 0.0, -angle)


def orient_rotation(model: SimModel, *, dental: bool, tilt_deg: float) -> npt.NDArray[np.float64]:
    """The model's new rotation. Standard rule: the largest flat face down (ties: the lower
    height, then wider in x), :func:`~preform_pipeline.geometry.best_flat_orientation` applied
    to the model as it stands. DENTAL: the same, then :func:`dental_rotation`."""
    current = euler_matrix(*model.orientation)
    shaped = model.mesh.transformed(model.linear())
    best = best_flat_orientation(shaped)
    rotation: npt.NDArray[np.float64] = best @ current
    if dental:
        rotation = dental_rotation(shaped.transformed(best), tilt_deg) @ rotation
    return rotation


def build_cage(
    models: Sequence[SimModel],
    moves: dict[str, Move],
    volume: tuple[float, float, float],
    *,
    bar_mm: float,
    distance_mm: float,
    label: str,
) -> SimModel:
    """A part cage around ``models`` as ``moves`` will place them: square bars of ``bar_mm``
    along the edges of their bounding box grown by ``distance_mm`` plus the bar, or 400
    MODELS_DO_NOT_FIT when that box leaves the build volume."""
    placed = [m.copy(m.id) for m in models]  # copies: nothing changes until all is known
    for model in placed:
        if model.id in moves:
            model.orientation = moves[model.id].orientation
            model.position = moves[model.id].position
    grow = bar_mm + distance_mm
    low = np.min([m.bounds()[0] for m in placed], axis=0) - grow
    high = np.max([m.bounds()[1] for m in placed], axis=0) + grow
    low[2] = max(0.0, float(low[2]))
    lo = (float(low[0]), float(low[1]), float(low[2]))
    hi = (float(high[0]), float(high[1]), float(high[2]))
    cage = SimModel(
        model_id=new_id(),
        name=f"Cage {label}".strip(),
        mesh=Mesh(box_frame_triangles(lo, hi, bar_mm).astype(np.float32), "cage"),
        original_file="",
        position=((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]),
        lock="FULLY_LOCKED",
    )
    if not cage.in_bounds(volume):
        raise SimError(
            400,
            MODELS_DO_NOT_FIT,
            "the cage around the models does not fit the build volume; the scene is unchanged",
        )
    return cage
