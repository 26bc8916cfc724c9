"""How a screenshot rasterises large triangles and folds samples into the depth buffer.

The fold's rule (``screenshot._keep_nearest``) decides every pixel of every picture: within a
batch the first of equally near samples wins, across batches a later one must be strictly
nearer. It and ``_raster`` (which pixels a large triangle covers, at what depth) are checked
against the same rules written as plain loops.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from preform_pipeline.simulator import screenshot
from preform_pipeline.simulator.screenshot import _keep_nearest, _raster, _Samples

PIXELS = 50
COLOUR = (100, 150, 200)


def blank() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    depth = np.full(PIXELS, np.inf)
    image = np.zeros((PIXELS, 3), dtype=np.uint8)
    return depth, image


def fold(
    depth: npt.NDArray[np.float64],
    image: npt.NDArray[np.uint8],
    pixels: list[int],
    z: list[float],
    shade: list[float],
) -> None:
    _keep_nearest(
        depth,
        image,
        (np.array(pixels, np.int64), np.array(z, np.float64), np.array(shade, np.float64)),
        COLOUR,
    )


def folded_by_a_loop(
    depth: npt.NDArray[np.float64], image: npt.NDArray[np.uint8], samples: _Samples
) -> None:
    """The rule, one sample at a time: a sample wins if nearer than the batch's earlier ones
    and strictly nearer than what the buffer held before the batch."""
    pixels, z, shade = samples
    best: dict[int, tuple[float, float]] = {}
    for p, d, s in zip(pixels.tolist(), z.tolist(), shade.tolist(), strict=True):
        if d == d and (p not in best or d < best[p][0]):  # d == d: a NaN never wins
            best[p] = (d, s)
    for p, (d, s) in best.items():
        if d < depth[p]:
            depth[p] = d
            image[p] = np.clip(np.array(COLOUR) * s, 0, 255).astype(np.uint8)


class TestEachPixelKeepsItsNearestSample:
    """A pixel shows the nearest of its samples, the first of equally near ones."""

    def test_the_nearest_of_a_pixels_samples_wins(self) -> None:
        depth, image = blank()
        fold(depth, image, [3, 3, 3], [5.0, 2.0, 4.0], [0.2, 0.5, 0.9])
        assert depth[3] == 2.0
        assert image[3].tolist() == [50, 75, 100]

    def test_the_first_of_equally_near_samples_wins(self) -> None:
        depth, image = blank()
        fold(depth, image, [7, 7, 7], [3.0, 1.0, 1.0], [0.9, 0.5, 0.2])
        assert image[7].tolist() == [50, 75, 100]

    def test_a_later_batch_must_be_strictly_nearer(self) -> None:
        depth, image = blank()
        fold(depth, image, [4], [1.0], [0.5])
        fold(depth, image, [4, 4], [1.0, 2.0], [0.2, 0.1])
        assert image[4].tolist() == [50, 75, 100]
        fold(depth, image, [4], [0.5], [1.0])
        assert depth[4] == 0.5
        assert image[4].tolist() == list(COLOUR)

    def test_a_sample_without_a_depth_never_wins_nor_hides_a_later_one(self) -> None:
        depth, image = blank()
        fold(depth, image, [9, 9], [float("nan"), 3.0], [1.0, 0.5])
        fold(depth, image, [9], [2.0], [0.2])
        assert depth[9] == 2.0
        assert image[9].tolist() == [20, 30, 40]

    def test_batches_full_of_ties_fold_as_the_rule_says(self) -> None:
        rng = np.random.default_rng(49)
        depth, image = blank()
        want_depth, want_image = blank()
        for _ in range(20):
            count = int(rng.integers(1, 300))
            pixels = rng.integers(0, PIXELS, count)
            z = rng.integers(0, 6, count).astype(np.float64)  # few depths: ties everywhere
            z[rng.random(count) < 0.05] = np.nan
            shade = rng.random(count)
            _keep_nearest(depth, image, (pixels, z, shade), COLOUR)
            folded_by_a_loop(want_depth, want_image, (pixels, z, shade))
        assert depth.tolist() == want_depth.tolist()
        assert image.tolist() == want_image.tolist()


def pixels_inside_by_a_loop(
    triangle: list[tuple[float, float, float]], width: int, height: int
) -> dict[int, float]:
    """Each pixel whose centre lies in the screen triangle, with the triangle's depth there
    (the plane through its corners), worked out one pixel at a time."""
    (ax, ay, ad), (bx, by, bd), (qx, qy, qd) = triangle
    det = (by - qy) * (ax - qx) + (qx - bx) * (ay - qy)
    found = {}
    for gy in range(height):
        for gx in range(width):
            cx, cy = gx + 0.5, gy + 0.5
            wa = ((by - qy) * (cx - qx) + (qx - bx) * (cy - qy)) / det
            wb = ((qy - ay) * (cx - qx) + (ax - qx) * (cy - qy)) / det
            wc = 1.0 - wa - wb
            if min(wa, wb, wc) >= -1e-9:
                found[gy * width + gx] = wa * ad + wb * bd + wc * qd
    return found


class TestALargeTriangleIsRasterisedExactly:
    """A large triangle covers the pixels whose centres it holds, at its own depth and shade."""

    def test_each_triangle_covers_the_pixels_a_loop_finds(self) -> None:
        width, height = 23, 17
        triangles = [
            [(1.2, 0.7, 3.0), (21.5, 4.1, 9.0), (6.3, 15.8, 1.0)],
            [(22.0, 16.0, 2.0), (3.0, 12.5, 7.5), (14.2, 1.1, 4.0)],
        ]
        shades = np.array([0.25, 0.75])
        found: dict[int, list[tuple[float, float]]] = {}
        for pixels, z, shade in _raster(np.array(triangles), shades, (width, height)):
            for p, d, s in zip(pixels.tolist(), z.tolist(), shade.tolist(), strict=True):
                found.setdefault(p, []).append((d, s))
        want: dict[int, list[tuple[float, float]]] = {}
        for triangle, shade_of_it in zip(triangles, shades.tolist(), strict=True):
            for p, d in pixels_inside_by_a_loop(triangle, width, height).items():
                want.setdefault(p, []).append((d, shade_of_it))
        assert found == want


class TestSamplesAreCutIntoBatches:
    """Each triangle's samples are numbered in a row and cut into batches of a bounded size."""

    @pytest.mark.parametrize("size", range(1, 30), ids=lambda size: f"batches of {size}")
    def test_each_sample_is_its_triangles_next_whatever_the_cuts(
        self, monkeypatch: pytest.MonkeyPatch, size: int
    ) -> None:
        """Every batch size from one sample to more than all of them: so some cut falls on
        each triangle's first sample and on its last, before and after empty ones."""
        monkeypatch.setattr(screenshot, "_BATCH_SAMPLES", size)
        counts = np.array([0, 3, 0, 12, 1, 0, 0, 7, 5, 0], dtype=np.int64)
        batches = list(screenshot._batches(counts))
        lengths = [len(index) for index, _ in batches]
        assert lengths[:-1] == [size] * (len(batches) - 1)
        assert 0 < lengths[-1] <= size and sum(lengths) == 28
        found = [
            (t, n)
            for index, local in batches
            for t, n in zip(index.tolist(), local.tolist(), strict=True)
        ]
        want = [(t, n) for t, count in enumerate(counts.tolist()) for n in range(count)]
        assert found == want

    def test_no_samples_make_no_batch(self) -> None:
        assert list(screenshot._batches(np.array([0, 0], dtype=np.int64))) == []
        assert list(screenshot._batches(np.array([], dtype=np.int64))) == []
