"""Euler angles in the Local API convention (z, then x, then y) and their inverse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.geometry import AXIS_ALIGNED_ROTATIONS, euler_matrix, matrix_to_euler

X, Y, Z = np.eye(3)


class TestEulerOrder:
    """Rotations are applied about z first, then x, then y."""

    @pytest.mark.parametrize(
        ("angles", "vector", "expected"),
        [
            ((0, 0, 90), X, Y),  # z alone: x -> y
            ((90, 0, 0), Y, Z),  # x alone: y -> z
            ((0, 90, 0), Z, X),  # y alone: z -> x
            # z first turns x into y, then x turns y into z, then y turns z into x.
            ((90, 90, 90), X, X),
            # If x were applied before z, x would stay x then become y, then stay y.
            ((90, 0, 90), X, Z),
        ],
    )
    def test_where_an_axis_goes(
        self, angles: tuple[float, float, float], vector: np.ndarray, expected: np.ndarray
    ) -> None:
        assert euler_matrix(*angles) @ vector == pytest.approx(expected, abs=1e-12)

    def test_matrix_is_y_times_x_times_z(self) -> None:
        rx, ry, rz = euler_matrix(30, 0, 0), euler_matrix(0, 40, 0), euler_matrix(0, 0, 50)
        assert euler_matrix(30, 40, 50) == pytest.approx(ry @ rx @ rz)


class TestRoundTrip:
    """matrix_to_euler inverts euler_matrix, including at gimbal lock."""

    @settings(max_examples=200, deadline=None)
    @given(
        x=st.floats(-89.9, 89.9),
        y=st.floats(-179.9, 179.9),
        z=st.floats(-179.9, 179.9),
    )
    def test_angles_come_back_in_the_principal_range(self, x: float, y: float, z: float) -> None:
        assert matrix_to_euler(euler_matrix(x, y, z)) == pytest.approx((x, y, z), abs=1e-6)

    @settings(max_examples=200, deadline=None)
    @given(angles=st.tuples(*(st.floats(-720, 720) for _ in range(3))))
    def test_any_angles_give_back_the_same_rotation(
        self, angles: tuple[float, float, float]
    ) -> None:
        matrix = euler_matrix(*angles)
        again = euler_matrix(*matrix_to_euler(matrix))
        assert again == pytest.approx(matrix, abs=1e-9)

    @pytest.mark.parametrize("x", [90.0, -90.0])
    def test_gimbal_lock_reports_z_zero(self, x: float) -> None:
        matrix = euler_matrix(x, 25, 40)
        angles = matrix_to_euler(matrix)
        assert angles[2] == 0.0
        assert euler_matrix(*angles) == pytest.approx(matrix, abs=1e-9)

    def test_every_axis_aligned_rotation_round_trips_to_whole_degrees(self) -> None:
        assert len(AXIS_ALIGNED_ROTATIONS) == 24
        assert np.array_equal(AXIS_ALIGNED_ROTATIONS[0], np.eye(3))
        for rotation in AXIS_ALIGNED_ROTATIONS:
            angles = matrix_to_euler(rotation)
            assert all(abs(a - round(a / 90) * 90) < 1e-9 for a in angles)
            assert euler_matrix(*angles) == pytest.approx(rotation, abs=1e-12)
