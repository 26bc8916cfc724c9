"""Faster reading gives what plain reference implementations give, bit for bit."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.geometry import Mesh, mesh_defects, weld_vertices
from preform_pipeline.geometry import orientation as orientation_module
from preform_pipeline.geometry.orientation import corner_ids, orientation_fault
from preform_pipeline.geometry.projection import (
    _barycentric,
    _extremes_along,
    _unique_rows,
    _weighted,
    convex_hull,
)
from preform_pipeline.simulator.meshops import box_triangles

_Floats = npt.NDArray[np.float64]
# Coordinates that make signed zeros, ties and collinear points common.
_COORDINATE = st.sampled_from([-0.0, 0.0, -1.0, 1.0, -2.5, 3.0, 0.1, -7.25, 1e-300])


def _bits(a: _Floats) -> npt.NDArray[np.uint64]:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _reference_hull(points: _Floats) -> _Floats:
    """Andrew's monotone chain over numpy scalars, after the same thinning and rounding."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) >= 3:
        pts = _extremes_along(pts, 0, 0.25)
    pts = np.unique(np.round(pts, 9), axis=0)
    if len(pts) < 3:
        return pts
    chains = []
    for seq in (pts, pts[::-1]):
        chain: list[_Floats] = []
        for p in seq:
            while len(chain) >= 2 and (
                (chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1])
                - (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0])
            ) <= 0:
                chain.pop()
            chain.append(p)
        chains.append(chain[:-1])
    return np.array(chains[0] + chains[1])


class TestShadowSamples:
    """Grid samples are the sums einsum makes, signed zeros included."""

    @settings(max_examples=60, deadline=None)
    @given(k=st.integers(2, 12), corners=st.lists(_COORDINATE, min_size=6, max_size=6))
    def test_weighted_corners_equal_the_einsum(self, k: int, corners: list[float]) -> None:
        tri = np.array(corners, dtype=np.float64).reshape(1, 3, 2)
        weights = _barycentric(k)
        expected = np.einsum("pv,nvd->npd", weights, tri)
        assert np.array_equal(_bits(_weighted(weights, tri)), _bits(expected))

    def test_a_kept_grid_cannot_be_changed_by_a_caller(self) -> None:
        with pytest.raises(ValueError, match="read-only"):
            _barycentric(3)[0, 0] = 2.0


class TestUniqueRows:
    """Shadow points are de-duplicated and ordered as np.unique orders them."""

    @settings(max_examples=120, deadline=None)
    @given(st.lists(st.tuples(_COORDINATE, _COORDINATE), max_size=40))
    def test_rows_equal_numpys_unique(self, rows: list[tuple[float, float]]) -> None:
        points = np.array(rows, dtype=np.float64).reshape(-1, 2)
        expected = np.unique(points, axis=0)
        assert np.array_equal(_bits(_unique_rows(points)), _bits(expected))

    def test_a_positive_and_a_negative_zero_are_left_to_numpy(self) -> None:
        points = np.array([[0.0, 1.0], [-0.0, 1.0], [2.0, 3.0], [-0.0, 1.0]])
        assert np.array_equal(_bits(_unique_rows(points)), _bits(np.unique(points, axis=0)))


class TestHull:
    """The hull is the reference chain's, vertex for vertex."""

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.tuples(_COORDINATE, _COORDINATE), min_size=1, max_size=40))
    def test_the_hull_equals_the_reference_chain(self, rows: list[tuple[float, float]]) -> None:
        points = np.array(rows, dtype=np.float64)
        assert np.array_equal(_bits(convex_hull(points)), _bits(_reference_hull(points)))


def _box() -> npt.NDArray[np.float32]:
    return np.asarray(box_triangles((0.0, 0.0, 0.0), (10.0, 20.0, 30.0)), dtype=np.float32)


class TestCornerIds:
    """Hashed corner ids group corners as the weld does, or say they cannot."""

    def test_a_box_gets_the_welds_groups(self) -> None:
        mesh = Mesh(_box(), "box")
        ids, exact, manifold = corner_ids(mesh)
        _, welded = weld_vertices(mesh.triangles)
        assert exact and manifold
        # Same partition: as many pairs (hashed id, welded id) as ids of either kind.
        pairs = set(zip(ids.ravel().tolist(), welded.ravel().tolist(), strict=True))
        assert len(pairs) == len(set(ids.ravel().tolist())) == len(set(welded.ravel().tolist()))

    def test_colliding_hashes_fall_back_to_the_weld(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Every point hashed alike: the ids group everything, which the check must notice.
        def one_key(points: npt.NDArray[np.float32]) -> npt.NDArray[np.uint64]:
            return np.zeros(len(points), dtype=np.uint64)

        monkeypatch.setattr(orientation_module, "vertex_keys", one_key)
        inside_out = Mesh(_box()[:, ::-1].copy(), "inside out")
        assert corner_ids(inside_out)[1] is False
        assert orientation_fault(inside_out) == "inverted"

    def test_the_defect_check_and_the_fault_agree_after_sharing(self) -> None:
        inside_out = Mesh(_box()[:, ::-1].copy(), "inside out")
        assert mesh_defects(inside_out) == ("the triangles face inwards (the mesh is inside out)",)
        assert orientation_fault(inside_out) == "inverted"
