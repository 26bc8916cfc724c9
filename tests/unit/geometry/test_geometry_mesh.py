"""Mesh measurements and transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_factories import box_triangles, tetrahedron_triangles
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.geometry import Mesh, euler_matrix, weld_vertices

SQRT3 = math.sqrt(3.0)


class TestMeasurements:
    """Volume, area, size and closedness match closed-form values."""

    @pytest.mark.parametrize(
        ("triangles", "volume", "area", "size"),
        [
            (box_triangles(1, 1, 1), 1.0, 6.0, (1.0, 1.0, 1.0)),
            (box_triangles(2, 3, 4), 24.0, 52.0, (2.0, 3.0, 4.0)),
            (box_triangles(10, 10, 1, (100, -50, 7)), 100.0, 240.0, (10.0, 10.0, 1.0)),
            (tetrahedron_triangles(), 1.0 / 6.0, 1.5 + SQRT3 / 2.0, (1.0, 1.0, 1.0)),
        ],
        ids=["unit-cube", "box-2x3x4", "offset-plate", "tetrahedron"],
    )
    def test_known_solids(
        self, triangles: np.ndarray, volume: float, area: float, size: tuple[float, ...]
    ) -> None:
        mesh = Mesh(triangles, "solid")
        assert mesh.volume() == pytest.approx(volume, rel=1e-6)
        assert mesh.surface_area() == pytest.approx(area, rel=1e-6)
        assert mesh.size == pytest.approx(size)
        assert mesh.is_closed()

    def test_volume_is_positive_for_inward_facing_triangles(self, cube: np.ndarray) -> None:
        assert Mesh(cube[:, ::-1], "inside-out").volume() == pytest.approx(1.0)

    def test_bounds_are_float64_min_and_max(self) -> None:
        low, high = Mesh(box_triangles(2, 3, 4, (1, 2, 3)), "b").bounds
        assert low.dtype == np.float64
        assert low.tolist() == [1, 2, 3]
        assert high.tolist() == [3, 5, 7]

    def test_a_missing_face_makes_the_mesh_open(self, cube: np.ndarray) -> None:
        assert not Mesh(cube[:-1], "open").is_closed()

    def test_a_duplicated_face_makes_the_mesh_non_manifold(self, cube: np.ndarray) -> None:
        assert not Mesh(np.concatenate([cube, cube[:1]]), "extra").is_closed()

    def test_negative_zero_welds_with_zero(self, cube: np.ndarray) -> None:
        signed = cube.copy()
        signed[signed == 0] = -0.0
        signed[0] = cube[0]  # a few corners keep +0.0
        assert Mesh(signed, "zeros").is_closed()

    def test_empty_mesh_measures_zero(self) -> None:
        mesh = Mesh(np.zeros((0, 3, 3), np.float32), "empty")
        assert (mesh.triangle_count, mesh.volume(), mesh.surface_area()) == (0, 0.0, 0.0)
        assert mesh.size == (0.0, 0.0, 0.0)
        assert not mesh.is_closed()

    def test_wrong_shape_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"\(N, 3, 3\)"):
            Mesh(np.zeros((4, 3), np.float32), "flat")

    def test_triangles_are_stored_as_float32(self) -> None:
        assert Mesh(box_triangles(1, 1, 1).astype(np.float64), "f64").triangles.dtype == np.float32


class TestWelding:
    """Vertices are merged by exact coordinates."""

    def test_cube_has_eight_vertices_and_keeps_face_order(self, cube: np.ndarray) -> None:
        vertices, faces = weld_vertices(cube)
        assert vertices.shape == (8, 3)
        assert np.array_equal(vertices[faces], cube)


class TestTransforms:
    """Transforms return new meshes and move every vertex as stated."""

    def test_translated_moves_bounds(self, cube: np.ndarray) -> None:
        moved = Mesh(cube, "c").translated(1, 2, 3)
        assert moved.bounds[0].tolist() == [1, 2, 3]

    def test_transforms_keep_name_and_source_and_leave_the_original(self, cube: np.ndarray) -> None:
        original = Mesh(cube, "c")
        scaled = original.scaled(2)
        assert scaled.name == "c"
        assert scaled.volume() == pytest.approx(8.0)
        assert original.volume() == pytest.approx(1.0)

    def test_transformed_applies_matrix_then_translation(self, cube: np.ndarray) -> None:
        swap_xy = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
        mesh = Mesh(box_triangles(2, 3, 4), "b").transformed(swap_xy, (10, 0, 0))
        assert mesh.size == pytest.approx((3, 2, 4))
        assert mesh.bounds[0].tolist() == [10, 0, 0]

    def test_placed_on_platform_centres_xy_and_rests_on_zero(self) -> None:
        mesh = Mesh(box_triangles(4, 6, 2, (10, 20, 30)), "b").placed_on_platform()
        low, high = mesh.bounds
        assert low.tolist() == [-2, -3, 0]
        assert high.tolist() == [2, 3, 2]

    @settings(max_examples=40, deadline=None)
    @given(
        angles=st.tuples(*(st.floats(-180, 180) for _ in range(3))),
        offset=st.tuples(*(st.floats(-500, 500) for _ in range(3))),
        factor=st.floats(0.1, 10),
    )
    def test_volume_is_invariant_under_rigid_motion_and_cubic_in_scale(
        self, angles: tuple[float, float, float], offset: tuple[float, float, float],
        factor: float,
    ) -> None:
        mesh = Mesh(box_triangles(3, 4, 5), "b")
        moved = mesh.transformed(euler_matrix(*angles), offset)
        assert moved.volume() == pytest.approx(60.0, rel=1e-4)
        assert moved.surface_area() == pytest.approx(mesh.surface_area(), rel=1e-4)
        assert mesh.scaled(factor).volume() == pytest.approx(60.0 * factor**3, rel=1e-4)
