"""Footprint prediction: the orientation the orient step gives, raft borders, spacing."""

from __future__ import annotations

import numpy as np
import pytest

from preform_pipeline.geometry import Mesh
from preform_pipeline.plan.footprint import measure_shadow, predict
from tests.unit.plan.planning_factories import box_triangles, make_recipe, make_step


def standing_bar() -> Mesh:
    """A 10 x 12 x 60 mm bar standing on end: auto_orient lays it down flat."""
    return Mesh(np.array(box_triangles(10.0, 12.0, 60.0), dtype=np.float32), "bar")


def span(points: np.ndarray) -> tuple[float, float]:
    extent = np.ptp(points, axis=0)
    return round(float(extent[0]), 3), round(float(extent[1]), 3)


class TestOrientation:
    """The planner uses the shadow the recipe's orient step will give."""

    def test_a_standing_bar_is_planned_lying_down_when_the_recipe_orients(self) -> None:
        shadow = measure_shadow(standing_bar())
        oriented = predict(shadow, make_recipe(), supported=False)
        assert sorted(span(oriented.points)) == [12.0, 60.0]
        assert oriented.hull_mm2 == pytest.approx(720.0, rel=1e-3)

    def test_without_an_orient_step_the_file_s_own_shadow_is_used(self) -> None:
        shadow = measure_shadow(standing_bar())
        as_is = predict(shadow, make_recipe(steps=("auto_support",)), supported=False)
        assert span(as_is.points) == (10.0, 12.0)


class TestRaftAndSpacing:
    """Supported models grow by the raft border; all grow by half the spacing."""

    @pytest.mark.parametrize(
        ("support", "layout", "grow"),
        [
            ({}, {}, 2.0 + 1.0),  # full raft 2 mm + half the 2 mm server spacing
            ({"raft_type": "MINI_RAFT"}, {}, 1.0 + 1.0),
            ({}, {"allow_overlapping_supports": True}, 1.0),  # rafts may overlap: none
            ({}, {"model_spacing_mm": 5.0}, 2.0 + 2.5),  # the larger spacing wins
        ],
    )
    def test_growth_per_side(
        self, support: dict[str, object], layout: dict[str, object], grow: float
    ) -> None:
        recipe = make_recipe(
            steps=(make_step("auto_support", options=support),
                   make_step("auto_layout", options=layout)),
            spacing_mm=2.0,
        )
        footprint = predict(measure_shadow(standing_bar()), recipe, supported=True)
        assert footprint.grow_mm == pytest.approx(grow)

    def test_an_unsupported_model_has_no_raft(self) -> None:
        recipe = make_recipe(steps=("auto_layout",), spacing_mm=3.0)
        footprint = predict(measure_shadow(standing_bar()), recipe, supported=True)
        assert footprint.grow_mm == pytest.approx(1.5)
