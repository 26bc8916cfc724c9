"""Checks shared by the packing tests: a packing is valid when nothing overlaps or leaves."""

from __future__ import annotations

import itertools

import pytest

from preform_pipeline.plan.packing import PackResult, Placement, Rect

__all__ = ["assert_valid"]

EPS = 1e-6


def assert_valid(result: PackResult, items: list[Rect], spacing: float, margin: float) -> None:
    """No overlaps, gaps of at least ``spacing``, inside the platform less ``margin``."""
    by_key = {item.key: item for item in items}
    width, depth = result.platform
    for p in result.placements:
        item = by_key[p.key]
        expected = (item.depth, item.width) if p.rotated else (item.width, item.depth)
        assert (p.width, p.depth) == pytest.approx(expected)
        x0, y0, x1, y1 = p.bounds
        assert x0 >= -width / 2 + margin - EPS and x1 <= width / 2 - margin + EPS, p
        assert y0 >= -depth / 2 + margin - EPS and y1 <= depth / 2 - margin + EPS, p
    for a, b in itertools.combinations(result.placements, 2):
        assert _gap(a, b) >= spacing - EPS, (a, b)


def _gap(a: Placement, b: Placement) -> float:
    ax0, ay0, ax1, ay1 = a.bounds
    bx0, by0, bx1, by1 = b.bounds
    gap_x = max(bx0 - ax1, ax0 - bx1)
    gap_y = max(by0 - ay1, ay0 - by1)
    # Rectangles are separated when they are apart along at least one axis.
    return max(gap_x, gap_y)
