"""Units guess, overhang area, support estimate, footprint and auto-orientation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_factories import box_triangles

from preform_pipeline.geometry import (
    DEFAULT_INCH_DETECTION_MAX_EXTENT,
    DEFAULT_OVERHANG_ANGLE_DEG,
    DEFAULT_SUPPORT_FILL_FACTOR,
    INCH_MM,
    Mesh,
    best_flat_orientation,
    detect_units,
    downward_area,
    euler_matrix,
    footprint,
    platform_contact_area,
    support_volume_estimate,
)


def _box(sx: float, sy: float, sz: float, origin: tuple[float, float, float] = (0, 0, 0)) -> Mesh:
    return Mesh(box_triangles(sx, sy, sz, origin), "box")


def _mushroom() -> Mesh:
    """A 2x2x10 stem under a 10x10x1 cap: the cap's underside (100 mm^2) overhangs at z=10."""
    return Mesh(
        np.concatenate([box_triangles(2, 2, 10, (4, 4, 0)), box_triangles(10, 10, 1, (0, 0, 10))]),
        "mushroom",
    )


def _tilted_plate(tilt_deg: float) -> Mesh:
    """A single downward-facing 10x10 square tilted ``tilt_deg`` from horizontal, above z=5."""
    square = np.array([[[0, 0, 0], [0, 10, 0], [10, 10, 0]], [[0, 0, 0], [10, 10, 0], [10, 0, 0]]])
    tilted = square @ euler_matrix(0, tilt_deg, 0).T + [0, 0, 20]
    floor = np.array([[[0, 0, 5], [1, 0, 5], [0, 1, 5]]])  # something lower defines the platform
    return Mesh(np.concatenate([tilted, floor]).astype(np.float32), "plate")


class TestDetectUnits:
    """Below the named threshold a unitless model is taken as inches."""

    @pytest.mark.parametrize(
        ("size", "expected"),
        [
            ((2.0, 1.25, 0.75), "INCHES"),
            ((DEFAULT_INCH_DETECTION_MAX_EXTENT - 0.01, 1, 1), "INCHES"),
            ((DEFAULT_INCH_DETECTION_MAX_EXTENT, 1, 1), "MILLIMETERS"),
            ((10, 8, 6), "MILLIMETERS"),
            ((60, 50, 20), "MILLIMETERS"),
        ],
    )
    def test_rule(self, size: tuple[float, float, float], expected: str) -> None:
        assert detect_units(_box(*size)) == expected

    def test_the_threshold_can_be_changed(self) -> None:
        assert detect_units(_box(10, 8, 6), max_inch_extent=12.0) == "INCHES"

    def test_inch_model_scaled_by_inch_mm_reads_as_millimetres(self) -> None:
        assert detect_units(_box(2, 1, 1).scaled(INCH_MM)) == "MILLIMETERS"


class TestOverhangs:
    """Downward faces flatter than the overhang angle count, the platform contact does not."""

    def test_box_lying_flat_has_no_overhang_and_no_support(self) -> None:
        box = _box(20, 10, 5, (3, 4, 7))
        assert downward_area(box) == 0.0
        assert support_volume_estimate(box) == 0.0

    def test_mushroom_cap_underside_overhangs(self) -> None:
        mushroom = _mushroom()
        assert downward_area(mushroom) == pytest.approx(100.0)
        assert support_volume_estimate(mushroom) == pytest.approx(
            100.0 * 10.0 * DEFAULT_SUPPORT_FILL_FACTOR
        )

    @pytest.mark.parametrize(
        ("tilt", "overhangs"),
        [(0.0, True), (DEFAULT_OVERHANG_ANGLE_DEG - 5, True), (DEFAULT_OVERHANG_ANGLE_DEG + 5,
                                                                False), (80.0, False)],
    )
    def test_tilt_from_horizontal_decides(self, tilt: float, overhangs: bool) -> None:
        # Tilting the square about y by `tilt` keeps its normal pointing down (-z) for < 90.
        plate = _tilted_plate(tilt)
        assert (downward_area(plate) == pytest.approx(100.0)) is overhangs
        assert (downward_area(plate) == 0.0) is not overhangs

    def test_projected_area_and_centroid_height_set_the_support_volume(self) -> None:
        plate = _tilted_plate(20.0)
        square = np.array([[0, 0, 0], [0, 10, 0], [10, 10, 0], [10, 0, 0]], float)
        centroid_z = float((square @ euler_matrix(0, 20, 0).T)[:, 2].mean() + 20 - 5)
        expected = 100.0 * math.cos(math.radians(20.0)) * centroid_z * DEFAULT_SUPPORT_FILL_FACTOR
        assert support_volume_estimate(plate) == pytest.approx(expected, rel=1e-5)

    def test_raft_adds_footprint_times_thickness(self) -> None:
        assert support_volume_estimate(_box(20, 10, 5), raft_thickness_mm=2.0) == pytest.approx(
            400.0
        )

    def test_upside_down_box_keeps_its_top_on_the_platform(self) -> None:
        flipped = _box(20, 10, 5).transformed(euler_matrix(180, 0, 0))
        assert downward_area(flipped) == 0.0
        assert platform_contact_area(flipped) == pytest.approx(200.0)


class TestFootprintAndOrientation:
    """Footprint is the xy box; auto-orientation lays the largest flat face down."""

    def test_footprint(self) -> None:
        assert footprint(_box(20, 10, 5)) == (20.0, 10.0)

    @pytest.mark.parametrize("angles", [(90, 0, 0), (0, 90, 0), (90, 0, 90), (0, 0, 0)])
    def test_a_plate_on_its_edge_is_laid_flat(self, angles: tuple[float, float, float]) -> None:
        standing = _box(40, 20, 2).transformed(euler_matrix(*angles))
        rotation = best_flat_orientation(standing)
        laid = standing.transformed(rotation)
        assert laid.size == pytest.approx((40, 20, 2))  # lowest, wider in x than in y
        assert np.allclose(rotation @ rotation.T, np.eye(3))
        assert np.linalg.det(rotation) == pytest.approx(1.0)

    def test_l_bracket_lies_on_its_largest_face(self) -> None:
        # Legs: 60 x 25 base (5 thick) and 40 tall upright; the outer back of the upright is
        # 40 x 25 = 1000, the base underside 60 x 25 = 1500: the base stays down.
        bracket = Mesh(
            np.concatenate(
                [box_triangles(60, 25, 5), box_triangles(5, 25, 40, (0, 0, 0))]
            ),
            "bracket",
        )
        assert np.array_equal(best_flat_orientation(bracket), np.eye(3))
