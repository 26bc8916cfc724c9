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
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .scene import atomic_write_bytes

__all__ = [
    "DEFAULT_IMAGE_SIZE_PX",
    "DEFAULT_PITCH_DEG",
    "DEFAULT_YAW_DEG",
    "MAX_IMAGE_SIZE_PX",
    "PNG_SIGNATURE",
    "RenderItem",
    "View",
    "encode_png",
    "render",
    "write_png",
]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
DEFAULT_IMAGE_SIZE_PX: Final = 820
MAX_IMAGE_SIZE_PX: Final = 4096
DEFAULT_YAW_DEG: Final = 45.0
DEFAULT_PITCH_DEG: Final = 35.264
#: Samples per covered pixel per triangle; ~e^-density of pixels stay unsampled.
_SAMPLE_DENSITY: Final = 6.0
#: Bound on samples per image so a huge mesh costs bounded time and memory.
_MAX_SAMPLES: Final = 4_000_000
_PADDING: Final = 0.05
#: Triangles covering more pixels than this are rasterised exactly instead of sampled.
_EXACT_RASTER_MIN_AREA_PX: Final = 48.0
_BACKGROUND: Final = (246, 246, 246)
_PLATFORM: Final = (196, 198, 204)
_MODEL: Final = (70, 130, 200)
_OUT_OF_BOUNDS: Final = (210, 70, 60)
_AMBIENT: Final = 0.35
_DIFFUSE: Final = 0.65


@dataclass(frozen=True)
class RenderItem:
    """Triangles to draw ``(N, 3, 3)`` in platform coordinates, and whether they fit."""

    triangles: npt.NDArray[np.float32]
    in_bounds: bool = True


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
    items: Sequence[RenderItem],
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
        stacked = np.concatenate([i.triangles.reshape(-1, 3) for i in items]).astype(np.float64)
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
    u0, v0, u1, v1 = _frame(items, build_volume, view, axes)
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
    for item in items:
        colour = _MODEL if item.in_bounds else _OUT_OF_BOUNDS
        layers.append((item.triangles.astype(np.float64), colour, 0.0))

    depth = np.full(width * height, np.inf)
    image = np.empty((width * height, 3), dtype=np.float64)
    image[:] = _BACKGROUND
    budget = _MAX_SAMPLES
    for triangles, colour, bias in layers:
        if triangles.size == 0:
            continue
        pixels, z, shade = _splat(triangles, axes, (u0, v0), scale, (width, height), budget)
        z = z + bias
        # Nearest sample per pixel: sort by depth, keep each pixel's first occurrence.
        order = np.argsort(z, kind="stable")
        pixels, z, shade = pixels[order], z[order], shade[order]
        unique_pixels, first = np.unique(pixels, return_index=True)
        nearer = z[first] < depth[unique_pixels]
        hit = unique_pixels[nearer]
        depth[hit] = z[first][nearer]
        image[hit] = np.outer(shade[first][nearer], colour)
    rgb = np.clip(image, 0, 255).astype(np.uint8).reshape(height, width, 3)
    return np.ascontiguousarray(rgb[::-1])  # image rows run top-down, screen v runs up


_Samples = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _splat(
    triangles: npt.NDArray[np.float64],
    axes: tuple[npt.NDArray[np.float64], ...],
    origin: tuple[float, float],
    scale: float,
    size: tuple[int, int],
    budget: int,
) -> _Samples:
    """Pixel index, depth and shade per sample: large triangles are rasterised exactly (one
    sample per pixel centre), small ones are sampled at random points."""
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
    parts = [_raster(screen[i], float(shades[i]), size) for i in np.flatnonzero(large)]
    parts.append(_sample(screen[~large], area_px[~large], shades[~large], size, budget))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _raster(tri: npt.NDArray[np.float64], shade: float, size: tuple[int, int]) -> _Samples:
    """Pixels whose centres lie in one screen triangle, with interpolated depth."""
    width, height = size
    x0 = max(0, math.floor(tri[:, 0].min()))
    x1 = min(width - 1, math.ceil(tri[:, 0].max()))
    y0 = max(0, math.floor(tri[:, 1].min()))
    y1 = min(height - 1, math.ceil(tri[:, 1].max()))
    if x0 > x1 or y0 > y1:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    gx, gy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
    cx, cy = gx.ravel() + 0.5, gy.ravel() + 0.5
    (ax, ay, ad), (bx, by, bd), (qx, qy, qd) = tri
    det = (by - qy) * (ax - qx) + (qx - bx) * (ay - qy)
    if abs(det) < 1e-12:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    wa = ((by - qy) * (cx - qx) + (qx - bx) * (cy - qy)) / det
    wb = ((qy - ay) * (cx - qx) + (ax - qx) * (cy - qy)) / det
    wc = 1.0 - wa - wb
    inside = (wa >= -1e-9) & (wb >= -1e-9) & (wc >= -1e-9)
    depth = wa * ad + wb * bd + wc * qd
    pixels = (gy.ravel() * width + gx.ravel())[inside].astype(np.int64)
    return pixels, depth[inside], np.full(int(inside.sum()), shade)


def _sample(
    screen: npt.NDArray[np.float64],
    area_px: npt.NDArray[np.float64],
    shades: npt.NDArray[np.float64],
    size: tuple[int, int],
    budget: int,
) -> _Samples:
    counts = np.ceil(area_px * _SAMPLE_DENSITY).astype(np.int64) + 1
    total = int(counts.sum())
    if total > budget:
        counts = np.maximum(1, (counts * (budget / total)).astype(np.int64))
    index = np.repeat(np.arange(len(screen)), counts)
    rng = np.random.default_rng(0)  # fixed seed: the same scene renders the same image
    r1, r2 = np.sqrt(rng.random(len(index))), rng.random(len(index))
    a, b, c = 1.0 - r1, r1 * (1.0 - r2), r1 * r2
    tri = screen[index]
    points = a[:, None] * tri[:, 0] + b[:, None] * tri[:, 1] + c[:, None] * tri[:, 2]
    shade = shades[index]
    width, height = size
    px = np.floor(points[:, 0]).astype(np.int64)
    py = np.floor(points[:, 1]).astype(np.int64)
    inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    return (py * width + px)[inside], points[inside, 2], shade[inside]


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
