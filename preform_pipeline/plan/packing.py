"""Packing model footprints onto a build platform: MaxRects with best-short-side-fit.

Every item is an axis-aligned rectangle (a model's xy footprint). Spacing and margin are
handled by inflation: each item is grown by ``spacing`` and the usable area by ``spacing``
minus twice the ``margin``; rectangles that do not overlap in that inflated space are at
least ``spacing`` apart in reality and at least ``margin`` from every platform edge.

Coordinates follow the Local API: ``(0, 0)`` is the platform centre, x to the right, y away
from the user; a :class:`Placement` gives the centre of the placed footprint.

MaxRects keeps the list of maximal free rectangles; an item goes into the free rectangle
where it leaves the shortest leftover side (ties: the longer leftover side, then lowest y,
then lowest x), trying both orientations when rotation is allowed. Items are placed largest
area first; all choices are deterministic functions of the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import PlanningError
from ..recipes.model import DEFAULT_SPACING_MM

__all__ = [
    "DEFAULT_MARGIN_MM",
    "DEFAULT_SPACING_MM",
    "PackResult",
    "Placement",
    "Rect",
    "pack",
    "pack_into_bins",
]

#: Minimum gap between a footprint and the platform edge.
DEFAULT_MARGIN_MM: Final = 3.0
# Comparisons tolerate float noise of this size (mm), e.g. items exactly filling the platform.
_EPSILON: Final = 1e-9


@dataclass(frozen=True)
class Rect:
    """An item to place: its footprint. Items sharing a ``group`` must share a build."""

    key: str
    width: float
    depth: float
    group: str | None = None

    @property
    def area(self) -> float:
        return self.width * self.depth


@dataclass(frozen=True)
class Placement:
    """Where an item went: ``x, y`` is the footprint centre (platform centre is 0, 0).

    ``width`` and ``depth`` are the placed footprint; ``rotated`` means the item was turned
    90 degrees about z, so ``width`` is the item's depth and vice versa.
    """

    key: str
    x: float
    y: float
    width: float
    depth: float
    rotated: bool

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` of the placed footprint."""
        hw, hd = self.width / 2.0, self.depth / 2.0
        return self.x - hw, self.y - hd, self.x + hw, self.y + hd


@dataclass(frozen=True)
class PackResult:
    """One platform's worth: what was placed and the keys that did not fit."""

    placements: tuple[Placement, ...]
    unplaced: tuple[str, ...]
    platform: tuple[float, float] = (0.0, 0.0)

    @property
    def fill_ratio(self) -> float:
        """Placed footprint area over platform area (0 when the platform size is unknown)."""
        total = self.platform[0] * self.platform[1]
        if total <= 0:
            return 0.0
        return sum(p.width * p.depth for p in self.placements) / total


_Free = tuple[float, float, float, float]  # x, y, w, h in the inflated packing space


@dataclass
class _Slot:
    key: str
    x: float
    y: float
    width: float
    depth: float
    rotated: bool


class _Bin:
    """MaxRects state for one platform, in the inflated packing space."""

    def __init__(self, width: float, depth: float) -> None:
        self.free: list[_Free] = [(0.0, 0.0, width, depth)] if width > 0 and depth > 0 else []
        self.slots: list[_Slot] = []

    def snapshot(self) -> tuple[list[_Free], int]:
        return list(self.free), len(self.slots)

    def restore(self, state: tuple[list[_Free], int]) -> None:
        self.free = state[0]
        del self.slots[state[1] :]

    def insert(self, key: str, w: float, h: float, allow_rotation: bool) -> bool:
        best: tuple[float, float, float, float] | None = None
        choice: tuple[float, float, float, float, bool] | None = None
        orientations = [(w, h, False)]
        if allow_rotation and w != h:
            orientations.append((h, w, True))
        for fx, fy, fw, fh in self.free:
            for iw, ih, rotated in orientations:
                if iw <= fw + _EPSILON and ih <= fh + _EPSILON:
                    left_w, left_h = fw - iw, fh - ih
                    score = (min(left_w, left_h), max(left_w, left_h), fy, fx)
                    if best is None or score < best:
                        best, choice = score, (fx, fy, iw, ih, rotated)
        if choice is None:
            return False
        x, y, iw, ih, rotated = choice
        self.slots.append(_Slot(key, x, y, iw, ih, rotated))
        self._split(x, y, iw, ih)
        return True

    def _split(self, x: float, y: float, w: float, h: float) -> None:
        right, top = x + w, y + h
        kept: list[_Free] = []
        for free in self.free:
            fx, fy, fw, fh = free
            fr, ft = fx + fw, fy + fh
            if x >= fr - _EPSILON or right <= fx + _EPSILON or y >= ft - _EPSILON or (
                top <= fy + _EPSILON
            ):
                kept.append(free)
                continue
            # Up to four maximal pieces of the free rectangle around the placed one.
            if x > fx + _EPSILON:
                kept.append((fx, fy, x - fx, fh))
            if right < fr - _EPSILON:
                kept.append((right, fy, fr - right, fh))
            if y > fy + _EPSILON:
                kept.append((fx, fy, fw, y - fy))
            if top < ft - _EPSILON:
                kept.append((fx, top, fw, ft - top))
        self.free = _prune(kept)


def _prune(rects: list[_Free]) -> list[_Free]:
    """Drop free rectangles contained in another (keeping the first of equal ones)."""
    # Larger first: a rectangle can only be contained in one at least as large.
    order = sorted(rects, key=lambda r: -(r[2] * r[3]))
    kept: list[_Free] = []
    for rect in order:
        x, y, w, h = rect
        r, t = x + w, y + h
        contained = False
        for ox, oy, ow, oh in kept:
            if (
                ox <= x + _EPSILON
                and oy <= y + _EPSILON
                and ox + ow >= r - _EPSILON
                and oy + oh >= t - _EPSILON
            ):
                contained = True
                break
        if not contained:
            kept.append(rect)
    return kept


@dataclass(frozen=True)
class _Unit:
    """Items that are placed together or not at all: a group, or one ungrouped item."""

    items: tuple[Rect, ...]
    group: str | None

    @property
    def area(self) -> float:
        return sum(item.area for item in self.items)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.items)


def _by_area(item: Rect) -> tuple[float, float, str]:
    return (-item.area, -max(item.width, item.depth), item.key)


def _validate(
    items: Sequence[Rect], platform: tuple[float, float], spacing: float, margin: float
) -> None:
    if not all(math.isfinite(v) and v > 0 for v in platform):
        raise ValueError(f"platform size must be two positive numbers, got {platform}")
    if not (math.isfinite(spacing) and spacing >= 0):
        raise ValueError(f"spacing must be >= 0, got {spacing}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be >= 0, got {margin}")
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise PlanningError(
                f"item key {item.key!r} appears more than once",
                hint="give every model copy its own key",
            )
        seen.add(item.key)
        if not (
            math.isfinite(item.width)
            and math.isfinite(item.depth)
            and item.width > 0
            and item.depth > 0
        ):
            raise PlanningError(
                f"item {item.key!r} has an invalid footprint {item.width} x {item.depth} mm",
                hint="footprints must be positive and finite; check the model file",
            )


def _units(items: Sequence[Rect]) -> list[_Unit]:
    groups: dict[str, list[Rect]] = {}
    units: list[_Unit] = []
    for item in items:
        if item.group is None:
            units.append(_Unit((item,), None))
        else:
            groups.setdefault(item.group, []).append(item)
    units.extend(_Unit(tuple(members), name) for name, members in groups.items())
    units = [_Unit(tuple(sorted(u.items, key=_by_area)), u.group) for u in units]
    # First-fit decreasing: largest units first; the key breaks ties deterministically.
    units.sort(key=lambda u: (-u.area, u.keys[0]))
    return units


class _Packer:
    def __init__(
        self, platform: tuple[float, float], spacing: float, margin: float, allow_rotation: bool
    ) -> None:
        self.platform = platform
        self.spacing = spacing
        self.margin = margin
        self.allow_rotation = allow_rotation
        self.inner = (platform[0] - 2 * margin + spacing, platform[1] - 2 * margin + spacing)

    def new_bin(self) -> _Bin:
        return _Bin(*self.inner)

    def place_unit(self, target: _Bin, unit: _Unit) -> bool:
        """Place every item of ``unit`` in ``target`` or leave ``target`` unchanged."""
        state = target.snapshot()
        for item in unit.items:
            fits = target.insert(
                item.key,
                item.width + self.spacing,
                item.depth + self.spacing,
                self.allow_rotation,
            )
            if not fits:
                target.restore(state)
                return False
        return True

    def result(self, target: _Bin, unplaced: Sequence[str], order: dict[str, int]) -> PackResult:
        left = -self.platform[0] / 2.0 + self.margin
        front = -self.platform[1] / 2.0 + self.margin
        placements = []
        for slot in sorted(target.slots, key=lambda s: order[s.key]):
            width, depth = slot.width - self.spacing, slot.depth - self.spacing
            placements.append(
                Placement(
                    key=slot.key,
                    x=left + slot.x + width / 2.0,
                    y=front + slot.y + depth / 2.0,
                    width=width,
                    depth=depth,
                    rotated=slot.rotated,
                )
            )
        unplaced_sorted = tuple(sorted(unplaced, key=lambda k: order[k]))
        return PackResult(tuple(placements), unplaced_sorted, self.platform)


def pack(
    items: Sequence[Rect],
    platform: tuple[float, float],
    *,
    spacing: float = DEFAULT_SPACING_MM,
    margin: float = DEFAULT_MARGIN_MM,
    allow_rotation: bool = True,
) -> PackResult:
    """Pack as many items as fit onto one platform of ``platform = (width, depth)`` mm.

    Items of one ``group`` are placed all together or not at all. Items that do not fit are
    listed in ``unplaced`` (input order); placements are reported in input order too.
    """
    _validate(items, platform, spacing, margin)
    order = {item.key: i for i, item in enumerate(items)}
    packer = _Packer(platform, spacing, margin, allow_rotation)
    target = packer.new_bin()
    unplaced: list[str] = []
    for unit in _units(items):
        if not packer.place_unit(target, unit):
            unplaced.extend(unit.keys)
    return packer.result(target, unplaced, order)


def pack_into_bins(
    items: Sequence[Rect],
    platform: tuple[float, float],
    *,
    spacing: float = DEFAULT_SPACING_MM,
    margin: float = DEFAULT_MARGIN_MM,
    max_items: int | None = None,
    allow_rotation: bool = True,
) -> list[PackResult]:
    """Pack every item onto as few platforms as first-fit decreasing finds.

    Groups are packed as units and always share a platform; each platform holds at most
    ``max_items`` items. Raises :class:`~preform_pipeline.errors.PlanningError` naming the
    item (or group) that does not fit an empty platform, or a group larger than ``max_items``.
    Every returned result has an empty ``unplaced``.
    """
    _validate(items, platform, spacing, margin)
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    order = {item.key: i for i, item in enumerate(items)}
    packer = _Packer(platform, spacing, margin, allow_rotation)
    units = _units(items)
    for unit in units:
        _check_fits_empty(packer, unit, max_items)

    bins: list[_Bin] = []
    for unit in units:
        size = len(unit.items)
        for target in bins:
            if max_items is not None and len(target.slots) + size > max_items:
                continue
            if packer.place_unit(target, unit):
                break
        else:
            fresh = packer.new_bin()
            placed = packer.place_unit(fresh, unit)
            assert placed, "checked to fit an empty platform"
            bins.append(fresh)
    return [packer.result(b, (), order) for b in bins]


def _check_fits_empty(packer: _Packer, unit: _Unit, max_items: int | None) -> None:
    pw, pd = packer.platform
    usable = f"{pw:g} x {pd:g} mm platform (margin {packer.margin:g} mm)"
    for item in unit.items:
        if not packer.place_unit(packer.new_bin(), _Unit((item,), None)):
            raise PlanningError(
                f"item {item.key!r} ({item.width:.1f} x {item.depth:.1f} mm) does not fit "
                f"an empty {usable}",
                hint="scale, rotate or split the model, or use a machine with a larger platform",
            )
    if max_items is not None and len(unit.items) > max_items:
        raise PlanningError(
            f"group {unit.group!r} has {len(unit.items)} items, more than max_items="
            f"{max_items} per build",
            hint="raise max_items or split the group",
        )
    if not packer.place_unit(packer.new_bin(), unit):
        raise PlanningError(
            f"group {unit.group!r} ({len(unit.items)} items: {', '.join(unit.keys)}) does not "
            f"fit together on an empty {usable}",
            hint="split the group across builds or use a machine with a larger platform",
        )
