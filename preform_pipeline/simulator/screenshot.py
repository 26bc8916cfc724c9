"""Screenshots of a scene as real PNG files (stdlib ``zlib`` + ``struct``, numpy rendering).

The camera follows the Local API's save-screenshot options: ``yaw`` 0 looks down the negative
x axis, positive ``pitch`` looks down onto the platform (90 = straight down), orthographic
projection. ``view_type`` frames the models (ZOOM_ON_MODELS), the whole build volume or the
platform width; ``image_size_px`` is the larger image side; ``crop_to_models`` false frames the
models' bounding sphere, so the zoom is the same from every angle.

Rendering uses a depth buffer and point splatting: every triangle is sampled with a density of
a few samples per covered pixel (large triangles are rasterised exactly), the nearest sample
wins each pixel, and flat shading comes from the angle between the face normal and a light
over the viewer's left shoulder. Out-of-bounds models are drawn red, the platform grey.
Samples are made and folded into the depth buffer a bounded batch at a time, so a
screenshot's memory is the image's (at most :data:`MAX_IMAGE_SIZE_PX` a side) and the mesh's,
never the covered pixels' count times the triangles': a metre-wide model costs what a
centimetre-wide one does.

A supported model stands on what PreForm would give it (:func:`support_geometry`): a raft
under its footprint (tan) and a pillar (pale yellow) under each patch of its down-facing
surface; each label is a dark plate on the face it was placed on, as long as its text and as
high as its font (:class:`LabelPlate`). Nobody can read a flat solid's screenshot, so these
are what make one build's image tell its models apart from another's.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .atomic import atomic_write_bytes
from .editing import LABEL_CHAR_WIDTH
from .estimates import DEFAULT_RAFT_THICKNESS_MM
from .scene import SimModel

__all__ = [
    "DEFAULT_IMAGE_SIZE_PX",
    "DEFAULT_PITCH_DEG",
    "DEFAULT_YAW_DEG",
    "FLYAROUND_FRAME_MS",
    "LabelPlate",
    "MAX_FLYAROUND_FRAMES",
    "MAX_IMAGE_SIZE_PX",
    "PNG_SIGNATURE",
    "RenderItem",
    "View",
    "encode_png",
    "encode_webp",
    "flyaround_views",
    "item_for",
    "render",
    "support_geometry",
    "write_png",
    "write_webp",
]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
DEFAULT_IMAGE_SIZE_PX: Final = 820
MAX_IMAGE_SIZE_PX: Final = 4096
#: Most frames one flyaround renders: each is a full render of the selected models.
MAX_FLYAROUND_FRAMES: Final = 120
#: How long each frame of a flyaround shows; the animation loops.
FLYAROUND_FRAME_MS: Final = 100
DEFAULT_YAW_DEG: Final = 45.0
DEFAULT_PITCH_DEG: Final = 35.264
#: Samples per covered pixel per triangle; ~e^-density of pixels stay unsampled.
_SAMPLE_DENSITY: Final = 6.0
#: Bound on samples per image so a huge mesh costs bounded time and memory.
_MAX_SAMPLES: Final = 4_000_000
#: Samples made and folded into the depth buffer at once: bounds the memory of a screenshot
#: whatever the pixels its triangles cover (each sample costs some 200 bytes while made).
_BATCH_SAMPLES: Final = 1 << 17
_PADDING: Final = 0.05
#: Triangles covering more pixels than this are rasterised exactly instead of sampled.
_EXACT_RASTER_MIN_AREA_PX: Final = 48.0
_BACKGROUND: Final = (246, 246, 246)
_PLATFORM: Final = (196, 198, 204)
_MODEL: Final = (70, 130, 200)
_OUT_OF_BOUNDS: Final = (210, 70, 60)
_RAFT: Final = (200, 160, 90)
_SUPPORT: Final = (235, 220, 150)
_LABEL: Final = (30, 30, 40)
#: One pillar per cell of this size under the model's down-facing surface.
_PILLAR_SPACING_MM: Final = 3.0
#: At most this many pillar cells under one model: a wider model gets wider cells, so its
#: pillars (twelve triangles each) stay a bounded mesh, however large the model.
_MAX_PILLAR_CELLS: Final = 10_000
_PILLAR_WIDTH_MM: Final = 0.8
#: How far the raft reaches beyond the model's footprint, and the thinnest raft drawn.
_RAFT_BORDER_MM: Final = 1.5
_MIN_RAFT_MM: Final = 0.5
#: A face counts as down-facing (needs support) when its normal points this far down.
_DOWN_FACING: Final = -0.3
#: Bound on the points sampled to place pillars, so a huge mesh costs bounded time.
_MAX_SUPPORT_POINTS: Final = 200_000
#: Labels are drawn at least this proud of their face, so an engraved one shows too.
_MIN_LABEL_RELIEF_MM: Final = 0.3
_AMBIENT: Final = 0.35
_DIFFUSE: Final = 0.65


@dataclass(frozen=True)
class LabelPlate:
    """A label as drawn: centred on ``centre`` (on the model's surface), ``width_mm`` along
    the face, ``height_mm`` across it, ``relief_mm`` out of it."""

    centre: tuple[float, float, float]
    width_mm: float
    height_mm: float
    relief_mm: float


@dataclass(frozen=True)
class RenderItem:
    """Triangles to draw ``(N, 3, 3)`` in platform coordinates, whether they fit, and what
    stands with them: supports on a raft of ``raft_thickness_mm``, labels."""

    triangles: npt.NDArray[np.float32]
    in_bounds: bool = True
    supported: bool = False
    raft_thickness_mm: float = 0.0
    labels: tuple[LabelPlate, ...] = ()


def item_for(model: SimModel, build_volume: tuple[float, float, float]) -> RenderItem:
    """What a scene's model draws: its placed mesh, supports if it has them, its labels."""
    raft = float(model.support.get("raft_thickness_mm", DEFAULT_RAFT_THICKNESS_MM))
    low = model.bounds()[0]
    plates: list[LabelPlate] = []
    for label in model.labels:
        centre = np.array([float(label["position"][k]) for k in "xyz"])
        on_model, then = label.get("model_point"), label.get("model_min_corner")
        if isinstance(on_model, dict):  # wherever the model went since, turned or moved
            centre = np.array(model.in_scene([float(on_model[k]) for k in "xyz"]))
        elif isinstance(then, dict):  # an older record: the model's move alone is followed
            centre += low - np.array([float(then[k]) for k in "xyz"])
        font = float(label["font_size_mm"])
        plates.append(LabelPlate(
            centre=(float(centre[0]), float(centre[1]), float(centre[2])),
            width_mm=len(str(label["label"])) * LABEL_CHAR_WIDTH * font,
            height_mm=font,
            relief_mm=float(label["depth_mm"]),
        ))
    return RenderItem(
        model.world_mesh().triangles,
        model.in_bounds(build_volume),
        supported=model.has_supports,
        raft_thickness_mm=raft,
        labels=tuple(plates),
    )


def _boxes(lows: npt.NDArray[np.float64], highs: npt.NDArray[np.float64]) -> npt.NDArray[
    np.float64
]:
    """The triangles of many axis-aligned boxes at once, ``(12 * len(lows), 3, 3)``."""
    corners = np.stack(
        [np.where(np.array(bits, dtype=bool), highs, lows) for bits in _CORNER_BITS], axis=1
    )
    return corners[:, _BOX_FACES].reshape(-1, 3, 3)


#: Box corners as (x, y, z) high/low choices, and the 12 triangles over them.
_CORNER_BITS: Final = tuple((x, y, z) for z in (0, 1) for y in (0, 1) for x in (0, 1))
_BOX_FACES: Final = np.array(
    [
        (0, 3, 1), (0, 2, 3), (4, 5, 7), (4, 7, 6), (0, 1, 5), (0, 5, 4),
        (1, 3, 7), (1, 7, 5), (3, 2, 6), (3, 6, 7), (2, 0, 4), (2, 4, 6),
    ]
)


def support_geometry(
    triangles: npt.NDArray[np.float64], raft_thickness_mm: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The raft and the pillars under a supported model: ``(raft, pillars)`` triangles.

    The raft covers the model's footprint plus a border; a pillar rises from the raft to the
    lowest point of each :data:`_PILLAR_SPACING_MM` cell of down-facing surface.
    """
    raft_top = max(raft_thickness_mm, _MIN_RAFT_MM)
    points = triangles.reshape(-1, 3)
    low, high = points.min(axis=0), points.max(axis=0)
    raft = _boxes(
        np.array([[low[0] - _RAFT_BORDER_MM, low[1] - _RAFT_BORDER_MM, 0.0]]),
        np.array([[high[0] + _RAFT_BORDER_MM, high[1] + _RAFT_BORDER_MM, raft_top]]),
    )
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    down = normals[:, 2] < _DOWN_FACING * np.where(lengths > 0, lengths, np.inf)
    centres = _surface_points(triangles[down], lengths[down] / 2)
    centres = centres[centres[:, 2] > raft_top + 0.1]
    if len(centres) == 0:
        return raft, np.zeros((0, 3, 3))
    footprint = float((high[0] - low[0]) * (high[1] - low[1]))
    spacing = max(_PILLAR_SPACING_MM, math.sqrt(footprint / _MAX_PILLAR_CELLS))
    cells = np.floor(centres[:, :2] / spacing).astype(np.int64)
    order = np.lexsort((centres[:, 2], cells[:, 1], cells[:, 0]))
    cells, centres = cells[order], centres[order]
    first = np.ones(len(cells), dtype=bool)
    first[1:] = np.any(cells[1:] != cells[:-1], axis=1)  # lowest point of each cell
    tips = centres[first]
    half = _PILLAR_WIDTH_MM / 2
    pillars = _boxes(
        np.column_stack([tips[:, 0] - half, tips[:, 1] - half, np.full(len(tips), raft_top)]),
        np.column_stack([tips[:, 0] + half, tips[:, 1] + half, tips[:, 2]]),
    )
    return raft, pillars


def _surface_points(
    triangles: npt.NDArray[np.float64], areas: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Points spread over ``triangles``, a few per pillar cell, so a large flat underside
    gets a pillar in every cell and not only where its two triangles' centres happen to be."""
    if len(triangles) == 0:
        return np.zeros((0, 3))
    counts = np.ceil(areas / _PILLAR_SPACING_MM**2 * 4).astype(np.int64) + 1
    total = int(counts.sum())
    if total > _MAX_SUPPORT_POINTS:
        counts = np.maximum(1, (counts * (_MAX_SUPPORT_POINTS / total)).astype(np.int64))
    index = np.repeat(np.arange(len(triangles)), counts)
    rng = np.random.default_rng(1)  # fixed: the same scene gets the same pillars
    r1, r2 = np.sqrt(rng.random(len(index))), rng.random(len(index))
    tri = triangles[index]
    return (
        (1.0 - r1)[:, None] * tri[:, 0]
        + (r1 * (1.0 - r2))[:, None] * tri[:, 1]
        + (r1 * r2)[:, None] * tri[:, 2]
    )


def _label_geometry(
    plate: LabelPlate, low: npt.NDArray[np.float64], high: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """A label's plate on the model's bounding-box face nearest its centre."""
    centre = np.array(plate.centre, dtype=np.float64)
    distances = np.concatenate([np.abs(centre - low), np.abs(high - centre)])
    face = int(np.argmin(distances))
    axis, outward = face % 3, (1.0 if face >= 3 else -1.0)
    along = 1 if axis == 0 else 0  # the text runs along x, or along y on an x face
    across = 1 if axis == 2 else 2  # and is as high as the font along z, or y on top/bottom
    relief = max(plate.relief_mm, _MIN_LABEL_RELIEF_MM)
    lo, hi = centre.copy(), centre.copy()
    surface = high[axis] if outward > 0 else low[axis]
    lo[axis], hi[axis] = sorted((surface, surface + outward * relief))
    # Embossed text stays on its face: a plate longer than the face is drawn as long as it.
    lo[along] = max(low[along], centre[along] - plate.width_mm / 2)
    hi[along] = min(high[along], centre[along] + plate.width_mm / 2)
    lo[across] = max(low[across], centre[across] - plate.height_mm / 2)
    hi[across] = min(high[across], centre[across] + plate.height_mm / 2)
    return _boxes(lo[None, :], hi[None, :])


def _item_layers(
    item: RenderItem,
) -> list[tuple[npt.NDArray[np.float64], tuple[int, int, int]]]:
    """What one item draws, as (triangles, colour): the model, its raft, pillars, labels."""
    triangles = item.triangles.astype(np.float64)
    layers = [(triangles, _MODEL if item.in_bounds else _OUT_OF_BOUNDS)]
    if triangles.size == 0:
        return layers
    if item.supported:
        raft, pillars = support_geometry(triangles, item.raft_thickness_mm)
        layers += [(raft, _RAFT), (pillars, _SUPPORT)]
    if item.labels:
        points = triangles.reshape(-1, 3)
        low, high = points.min(axis=0), points.max(axis=0)
        layers += [(_label_geometry(plate, low, high), _LABEL) for plate in item.labels]
    return layers


@dataclass(frozen=True)
class View:
    view_type: str = "ZOOM_ON_MODELS"
    yaw_deg: float = DEFAULT_YAW_DEG
    pitch_deg: float = DEFAULT_PITCH_DEG
    image_size_px: int = DEFAULT_IMAGE_SIZE_PX
    crop_to_models: bool = True


def _camera(view: View) -> tuple[npt.NDArray[np.float64], ...]:
    yaw, pitch = math.radians(view.yaw_deg), math.radians(view.pitch_deg)
    forward0 = np.array([-math.cos(pitch), 0.0, -math.sin(pitch)])
    right0 = np.array([0.0, 1.0, 0.0])
    rz = np.array(
        [[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0, 0, 1.0]]
    )
    forward, right = rz @ forward0, rz @ right0
    up = np.cross(right, forward)
    return right, up, forward


def _box_corners(low: Sequence[float], high: Sequence[float]) -> npt.NDArray[np.float64]:
    return np.array(
        [[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    )


def _frame(
    items: Sequence[npt.NDArray[np.float64]],
    build_volume: tuple[float, float, float],
    view: View,
    axes: tuple[npt.NDArray[np.float64], ...],
) -> tuple[float, float, float, float]:
    """Screen rectangle ``(u_min, v_min, u_max, v_max)`` in mm to show."""
    right, up, _ = axes
    bx, by, bz = build_volume
    if view.view_type == "FULL_BUILD_VOLUME":
        points = _box_corners((-bx / 2, -by / 2, 0.0), (bx / 2, by / 2, bz))
    elif view.view_type == "FULL_PLATFORM_WIDTH" or not items:
        points = _box_corners((-bx / 2, -by / 2, 0.0), (bx / 2, by / 2, 0.0))
    else:
        stacked = np.concatenate([t.reshape(-1, 3) for t in items])
        low, high = stacked.min(axis=0), stacked.max(axis=0)
        if view.crop_to_models:
            points = _box_corners(low, high)
        else:
            centre, radius = (low + high) / 2, float(np.linalg.norm(high - low)) / 2
            u, v = float(centre @ right), float(centre @ up)
            return u - radius, v - radius, u + radius, v + radius
    us, vs = points @ right, points @ up
    return float(us.min()), float(vs.min()), float(us.max()), float(vs.max())


def render(
    items: Sequence[RenderItem], build_volume: tuple[float, float, float], view: View
) -> npt.NDArray[np.uint8]:
    """An ``(height, width, 3)`` RGB image of ``items`` on the platform."""
    axes = _camera(view)
    drawn = [layer for item in items for layer in _item_layers(item)]
    # The frame holds everything drawn: a raft reaches past its model's footprint.
    u0, v0, u1, v1 = _frame(
        [t for t, _ in drawn if t.size], build_volume, view, axes
    )
    span_u, span_v = max(u1 - u0, 1e-6), max(v1 - v0, 1e-6)
    pad = _PADDING * max(span_u, span_v)
    u0, v0, span_u, span_v = u0 - pad, v0 - pad, span_u + 2 * pad, span_v + 2 * pad
    scale = view.image_size_px / max(span_u, span_v)  # pixels per mm
    width = max(1, round(span_u * scale))
    height = max(1, round(span_v * scale))

    bx, by, _ = build_volume
    corners = _box_corners((-bx / 2, -by / 2, 0.0), (bx / 2, by / 2, 0.0))[::2]
    c0, c1, c3, c2 = corners  # (-,-), (-,+), (+,-), (+,+) in x, y
    platform = np.array([[c0, c3, c2], [c0, c2, c1]], dtype=np.float64)
    layers: list[tuple[npt.NDArray[np.float64], tuple[int, int, int], float]] = [
        # The platform is drawn slightly behind coincident model faces so models win ties.
        (platform, _PLATFORM, 1e-3)
    ]
    layers.extend((triangles, colour, 0.0) for triangles, colour in drawn)

    depth = np.full(width * height, np.inf)
    image = np.empty((width * height, 3), dtype=np.uint8)
    image[:] = _BACKGROUND
    budget = _MAX_SAMPLES
    for triangles, colour, bias in layers:
        if triangles.size == 0:
            continue
        for pixels, z, shade in _splat(
            triangles, axes, (u0, v0), scale, (width, height), budget
        ):
            _keep_nearest(depth, image, (pixels, z + bias, shade), colour)
    rgb = image.reshape(height, width, 3)
    return np.ascontiguousarray(rgb[::-1])  # image rows run top-down, screen v runs up


def _keep_nearest(
    depth: npt.NDArray[np.float64],
    image: npt.NDArray[np.uint8],
    samples: _Samples,
    colour: tuple[int, int, int],
) -> None:
    """Fold a batch of samples into the depth buffer: each pixel keeps its nearest sample.

    Within a batch the first of equally near samples wins, and across batches the earlier
    (a later one must be strictly nearer), so batching does not change the picture.
    """
    pixels, z, shade = samples
    # The nearest depth per pixel in one unsorted pass (``fmin.at``); only the samples
    # that won a pixel are then sorted to find each one's first. Sorting the whole batch by
    # depth, then again by pixel, was a screenshot's largest cost.
    before = depth[pixels]
    np.fmin.at(depth, pixels, z)  # fmin: a NaN depth (a non-finite vertex) never wins
    after = depth[pixels]
    won = np.flatnonzero((z == after) & (after < before))
    hit, first = np.unique(pixels[won], return_index=True)
    image[hit] = np.clip(np.outer(shade[won[first]], colour), 0, 255).astype(np.uint8)


_Samples = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _splat(
    triangles: npt.NDArray[np.float64],
    axes: tuple[npt.NDArray[np.float64], ...],
    origin: tuple[float, float],
    scale: float,
    size: tuple[int, int],
    budget: int,
) -> Iterator[_Samples]:
    """Pixel index, depth and shade per sample, in batches of at most :data:`_BATCH_SAMPLES`:
    large triangles are rasterised exactly (one sample per pixel centre), small ones are
    sampled at random points."""
    right, up, forward = axes
    basis = np.stack([right, up, forward], axis=1)  # world -> (u, v, depth)
    screen = triangles @ basis
    screen[..., 0] = (screen[..., 0] - origin[0]) * scale
    screen[..., 1] = (screen[..., 1] - origin[1]) * scale
    e1, e2 = screen[:, 1, :2] - screen[:, 0, :2], screen[:, 2, :2] - screen[:, 0, :2]
    area_px = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) / 2.0
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    # Light from over the viewer's left shoulder, so faces at equal angles to the view (an
    # isometric cube) still differ in shade. abs(): tolerate meshes wound inside out.
    light = -forward + 0.6 * up - 0.4 * right
    light /= np.linalg.norm(light)
    facing = np.abs(normals @ light) / np.where(lengths > 0, lengths, 1.0)
    shades = _AMBIENT + _DIFFUSE * facing
    large = area_px > _EXACT_RASTER_MIN_AREA_PX
    yield from _raster(screen[large], shades[large], size)
    yield from _sample(screen[~large], area_px[~large], shades[~large], size, budget)


def _batches(counts: npt.NDArray[np.int64]) -> Iterator[tuple[npt.NDArray[np.int64], ...]]:
    """``counts[i]`` samples of triangle ``i``, numbered in a row and cut into batches of at
    most :data:`_BATCH_SAMPLES`: per batch, each sample's triangle and its number within it
    (one triangle's samples may span batches)."""
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    starts = ends - counts
    for start in range(0, total, _BATCH_SAMPLES):
        stop = min(start + _BATCH_SAMPLES, total)
        # A batch's samples run through its triangles in order: each triangle's number
        # repeated for its share of the batch, rather than a search for every sample.
        first = int(np.searchsorted(ends, start, side="right"))
        last = int(np.searchsorted(ends, stop - 1, side="right"))
        share = np.minimum(ends[first : last + 1], stop) - np.maximum(
            starts[first : last + 1], start
        )
        index = np.repeat(np.arange(first, last + 1), share)
        yield index, np.arange(start, stop, dtype=np.int64) - starts[index]


def _raster(
    tris: npt.NDArray[np.float64], shades: npt.NDArray[np.float64], size: tuple[int, int]
) -> Iterator[_Samples]:
    """Pixels whose centres lie in each screen triangle, with interpolated depth: every
    triangle's bounding-box pixels at once (one array pass, not a loop per triangle; a
    supported model brings hundreds of pillar faces)."""
    width, height = size
    if len(tris) == 0:
        return
    x0 = np.maximum(0, np.floor(tris[:, :, 0].min(axis=1))).astype(np.int64)
    x1 = np.minimum(width - 1, np.ceil(tris[:, :, 0].max(axis=1))).astype(np.int64)
    y0 = np.maximum(0, np.floor(tris[:, :, 1].min(axis=1))).astype(np.int64)
    y1 = np.minimum(height - 1, np.ceil(tris[:, :, 1].max(axis=1))).astype(np.int64)
    (ax, ay, ad), (bx, by, bd), (qx, qy, qd) = (tris[:, k].T for k in range(3))
    det = (by - qy) * (ax - qx) + (qx - bx) * (ay - qy)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    counts = np.where((w > 0) & (h > 0) & (np.abs(det) >= 1e-12), w * h, 0)
    # What each pixel's weights need of its triangle, worked out once per triangle (not once
    # per pixel) into contiguous arrays a batch gathers from: the same numbers, so the same
    # weights to the last bit.
    per_triangle = (by - qy, qx - bx, qy - ay, ax - qx, qx, qy, det, ad, bd, qd, shades)
    columns = [np.ascontiguousarray(c) for c in per_triangle]
    for index, local in _batches(counts):
        row, column = np.divmod(local, w.take(index))
        gx, gy = x0.take(index) + column, y0.take(index) + row
        cx, cy = gx + 0.5, gy + 0.5
        bq_y, qb_x, qa_y, aq_x, tqx, tqy, tdet, tad, tbd, tqd, shade = (
            c.take(index) for c in columns
        )
        wa = (bq_y * (cx - tqx) + qb_x * (cy - tqy)) / tdet
        wb = (qa_y * (cx - tqx) + aq_x * (cy - tqy)) / tdet
        wc = 1.0 - wa - wb
        inside = (wa >= -1e-9) & (wb >= -1e-9) & (wc >= -1e-9)
        depth = wa * tad + wb * tbd + wc * tqd
        yield (gy * width + gx)[inside], depth[inside], shade[inside]


def _sample(
    screen: npt.NDArray[np.float64],
    area_px: npt.NDArray[np.float64],
    shades: npt.NDArray[np.float64],
    size: tuple[int, int],
    budget: int,
) -> Iterator[_Samples]:
    counts = np.ceil(area_px * _SAMPLE_DENSITY).astype(np.int64) + 1
    total = int(counts.sum())
    if total > budget:
        counts = np.maximum(1, (counts * (budget / total)).astype(np.int64))
    rng = np.random.default_rng(0)  # fixed seed: the same scene renders the same image
    width, height = size
    for index, _ in _batches(counts):
        r1, r2 = np.sqrt(rng.random(len(index))), rng.random(len(index))
        a, b, c = 1.0 - r1, r1 * (1.0 - r2), r1 * r2
        tri = screen[index]
        points = a[:, None] * tri[:, 0] + b[:, None] * tri[:, 1] + c[:, None] * tri[:, 2]
        px = np.floor(points[:, 0]).astype(np.int64)
        py = np.floor(points[:, 1]).astype(np.int64)
        inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        yield (py * width + px)[inside], points[inside, 2], shades[index][inside]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(rgb: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of an ``(height, width, 3)`` uint8 image: 8-bit RGB, filter 0 per row."""
    height, width, _ = rgb.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, -1)], axis=1)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def write_png(path: Path, rgb: npt.NDArray[np.uint8]) -> None:
    atomic_write_bytes(path, encode_png(rgb))


def flyaround_views(view: View, angles: Sequence[tuple[float, float]], frames: int) -> list[View]:
    """``frames`` views of ``view`` spaced evenly along the path through ``angles`` (yaw,
    pitch pairs, at least two), its first and last angle included."""
    segments = len(angles) - 1
    views = []
    for i in range(frames):
        at = i * segments / (frames - 1) if frames > 1 else 0.0
        k = min(int(at), segments - 1)
        part = at - k
        (yaw0, pitch0), (yaw1, pitch1) = angles[k], angles[k + 1]
        views.append(
            replace(
                view,
                yaw_deg=yaw0 + (yaw1 - yaw0) * part,
                pitch_deg=pitch0 + (pitch1 - pitch0) * part,
            )
        )
    return views


def _on_one_canvas(frames: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.uint8]]:
    """Each frame centred on a canvas as large as the largest: an animation has one size,
    and each view's crop around the models differs."""
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    placed = []
    for frame in frames:
        canvas = np.empty((height, width, 3), dtype=np.uint8)
        canvas[:] = _BACKGROUND
        top, left = (height - frame.shape[0]) // 2, (width - frame.shape[1]) // 2
        canvas[top : top + frame.shape[0], left : left + frame.shape[1]] = frame
        placed.append(canvas)
    return placed


def encode_webp(frames: Sequence[npt.NDArray[np.uint8]]) -> bytes:
    """Lossless WebP bytes of one image, or of a looping animation of several."""
    # Pillow is imported for the first image, not at the simulator's start (~20 modules that
    # most simulators the pool and the suite start never use).
    from PIL import Image

    images = [Image.fromarray(f, "RGB") for f in _on_one_canvas(frames)]
    out = io.BytesIO()
    if len(images) == 1:
        images[0].save(out, format="WEBP", lossless=True)
    else:
        images[0].save(
            out,
            format="WEBP",
            lossless=True,
            save_all=True,
            append_images=images[1:],
            duration=FLYAROUND_FRAME_MS,
            loop=0,
        )
    return out.getvalue()


def write_webp(path: Path, frames: Sequence[npt.NDArray[np.uint8]]) -> None:
    atomic_write_bytes(path, encode_webp(frames))
