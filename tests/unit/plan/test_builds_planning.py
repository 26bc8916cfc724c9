"""Planning builds: up-front rejection, platform packing, cases, overflow, SLS, volumes."""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.errors import PlanningError, StepGraphError
from preform_pipeline.plan.builds import (
    DEFAULT_SLS_PACKING_DENSITY,
    ModelInfo,
    Plan,
    Rejection,
    plan_builds,
)
from preform_pipeline.recipes.model import Recipe
from tests.unit.plan.planning_factories import make_model, make_recipe, make_step

FORM4 = (200.0, 125.0, 210.0)
FUSE = (165.0, 165.0, 300.0)


def _turned_rectangle(
    size: tuple[float, float], angle_deg: float, centre: tuple[float, float]
) -> np.ndarray:
    """Corners of a ``size`` box turned ``angle_deg`` about its centre, then moved so its
    bounding box is centred on ``centre``."""
    w, d = size
    corners = np.array([[-w / 2, -d / 2], [w / 2, -d / 2], [w / 2, d / 2], [-w / 2, d / 2]])
    a = np.radians(angle_deg)
    points = corners @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    middle = (points.min(axis=0) + points.max(axis=0)) / 2
    return points - middle + np.asarray(centre)


def _separated(a: np.ndarray, b: np.ndarray) -> bool:
    """Convex polygons with a separating axis among their edge normals (they do not meet)."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for nx, ny in np.column_stack([-edges[:, 1], edges[:, 0]]):
            pa, pb = a @ (nx, ny), b @ (nx, ny)
            if pa.max() < pb.min() or pb.max() < pa.min():
                return True
    return False


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two separated convex polygons: nearest corner to the other's edges."""
    best = np.inf
    for p, q in ((a, b), (b, a)):
        start, end = q, np.roll(q, -1, axis=0)
        seg = end - start
        for point in p:
            t = np.clip(((point - start) * seg).sum(axis=1) / (seg**2).sum(axis=1), 0, 1)
            nearest = start + t[:, None] * seg
            best = min(best, float(np.sqrt(((nearest - point) ** 2).sum(axis=1)).min()))
    return best


def _all_paths(plan: Plan) -> list[str]:
    return [str(m.path) for b in plan.builds for m in b.models]


class TestOversizedRejection:
    """Models larger than the build volume are reported with their sizes, not raised."""

    @pytest.mark.parametrize(
        ("size", "rejected"),
        [
            ((201.0, 50.0, 50.0), True),  # too wide in x and in y when turned
            ((50.0, 130.0, 50.0), False),  # too deep in y, fits turned 90 degrees
            ((110.0, 185.0, 50.0), False),  # only fits turned
            ((130.0, 130.0, 50.0), True),  # square larger than the platform depth
            ((50.0, 50.0, 211.0), True),  # too tall
            ((200.0, 125.0, 210.0), True),  # exactly the build volume: no room for margin
            ((180.0, 110.0, 210.0), False),  # fits inside the 5 mm margin, full height
        ],
    )
    def test_sizes_against_the_form4_build_volume(
        self, size: tuple[float, float, float], rejected: bool
    ) -> None:
        plan = plan_builds(make_recipe(), [make_model("part", size), make_model("ok")])
        assert [r.path.stem for r in plan.rejected] == (["part"] if rejected else [])
        assert "ok" in [m.name for b in plan.builds for m in b.models]

    def test_a_rejection_carries_the_sizes_and_the_model_too_large_text(self) -> None:
        plan = plan_builds(make_recipe(), [make_model("huge", (250.0, 40.0, 300.0))])
        (rejection,) = plan.rejected
        assert rejection.size_mm == (250.0, 40.0, 300.0)
        assert rejection.build_volume_mm == FORM4
        assert "250.0 x 40.0 x 300.0 mm" in rejection.reason
        assert "200 x 125 x 210 mm build volume of FORM-4-0" in rejection.reason
        assert plan.builds == () and not plan.ok

    def test_a_model_inside_the_build_volume_but_not_the_margin_is_rejected(self) -> None:
        plan = plan_builds(make_recipe(margin_mm=10.0), [make_model("wide", (190.0, 50.0, 10.0))])
        (rejection,) = plan.rejected
        assert "180 x 105 mm platform area inside the recipe's 10 mm margin" in rejection.reason

    def test_without_rotation_a_model_that_only_fits_turned_is_rejected(self) -> None:
        model = make_model("deep", (50.0, 150.0, 10.0))
        assert plan_builds(make_recipe(), [model]).ok
        plan = plan_builds(make_recipe(allow_rotation=False), [model])
        assert "without rotation" in plan.rejected[0].reason

    def test_rejections_are_logged(self) -> None:
        with capture_logs() as logs:
            plan_builds(make_recipe(), [make_model("huge", (400.0, 40.0, 40.0))])
        events = [e for e in logs if e["event"] == "model_rejected"]
        assert events and events[0]["path"].endswith("huge.stl")

    def test_rejections_passed_in_come_first(self) -> None:
        unreadable = Rejection(make_model("broken").path, "truncated")
        plan = plan_builds(
            make_recipe(), [make_model("huge", (400.0, 1.0, 1.0))], rejected=[unreadable]
        )
        assert [r.path.stem for r in plan.rejected] == ["broken", "huge"]


class TestPlatformGrouping:
    """SLA builds never exceed the platform or the maximum number of models."""

    @pytest.mark.parametrize(
        ("machine", "count", "max_models", "seed"),
        [
            ("FORM-4-0", 60, None, 1),
            ("FORM-4-0", 60, 7, 2),
            ("FORM-3-1", 40, 5, 3),
            ("FORM-4L-0", 120, None, 4),
        ],
    )
    def test_random_batches_fit_their_platforms(
        self, machine: str, count: int, max_models: int | None, seed: int
    ) -> None:
        rng = random.Random(seed)
        models = [
            make_model(f"m{i}", (rng.uniform(5, 70), rng.uniform(5, 70), rng.uniform(5, 50)))
            for i in range(count)
        ]
        recipe = make_recipe(machine=machine, max_models_per_build=max_models, spacing_mm=2.0)
        plan = plan_builds(recipe, models)
        bx, by, _ = DEFAULT_CATALOGUE.machine(machine).build_volume_mm  # type: ignore[union-attr]
        margin = recipe.batching.margin_mm
        assert plan.ok
        assert sorted(_all_paths(plan)) == sorted(str(m.path) for m in models)
        for build in plan.builds:
            assert max_models is None or len(build.models) <= max_models
            assert len(build.placements) == len(build.models)
            sizes = {str(m.path): m.footprint_mm for m in build.models}
            outlines = [
                _turned_rectangle(sizes[str(p.path)], p.angle_deg, (p.x_mm, p.y_mm))
                for p in build.placements
            ]
            for points in outlines:
                # The model keeps the margin; its 2 mm raft stays inside it.
                assert points[:, 0].min() >= -bx / 2 + margin - 1e-6
                assert points[:, 0].max() <= bx / 2 - margin + 1e-6
                assert points[:, 1].min() >= -by / 2 + margin - 1e-6
                assert points[:, 1].max() <= by / 2 - margin + 1e-6
            for a, b in itertools.combinations(outlines, 2):
                # Spacing 2 mm between rafts reaching 2 mm beyond each model.
                assert _separated(a, b), "footprints overlap"
                assert _gap(a, b) >= 2.0 + 2 * 2.0 - 1e-6, "footprints closer than spacing"
            assert 0 < build.fill_ratio <= 1

    def test_builds_are_numbered_and_named_after_the_recipe(self) -> None:
        models = [make_model(f"m{i}", (60.0, 60.0, 10.0)) for i in range(9)]
        plan = plan_builds(make_recipe(name="jobs"), models)
        assert [b.index for b in plan.builds] == list(range(1, len(plan.builds) + 1))
        assert plan.builds[0].name == "jobs-001"
        assert len(plan.builds) > 1

    def test_each_build_has_a_graph_importing_exactly_its_models(self) -> None:
        models = [make_model(f"m{i}", (90.0, 60.0, 10.0)) for i in range(5)]
        plan = plan_builds(make_recipe(), models)
        for build in plan.builds:
            files = build.graph["import_models"].options["files"]
            assert list(files) == [str(p) for p in build.paths]

    def test_plan_answers_which_build_a_model_is_in(self) -> None:
        models = [make_model(f"m{i}", (90.0, 60.0, 10.0)) for i in range(5)]
        plan = plan_builds(make_recipe(), models)
        for build in plan.builds:
            for model in build.models:
                assert plan.build_of(model.path) is build
        assert plan.build_of("elsewhere.stl") is None
        assert plan.model_count == 5


class TestCases:
    """Files of one case land in one build when keep_cases_together is on."""

    @staticmethod
    def _cases(count: int, per_case: int) -> list[ModelInfo]:
        return [
            make_model(f"c{c}-{k}", (45.0, 40.0, 15.0), case=f"case-{c:02d}")
            for c in range(count)
            for k in range(per_case)
        ]

    @pytest.mark.parametrize(("count", "per_case", "max_models"), [(12, 3, None), (10, 2, 5)])
    def test_every_case_is_in_exactly_one_build(
        self, count: int, per_case: int, max_models: int | None
    ) -> None:
        recipe = make_recipe(max_models_per_build=max_models)
        plan = plan_builds(recipe, self._cases(count, per_case))
        assert plan.ok and len(plan.builds) > 1
        homes: dict[str | None, set[int]] = {}
        for build in plan.builds:
            for model in build.models:
                homes.setdefault(model.case_id, set()).add(build.index)
        assert len(homes) == count
        assert all(len(builds) == 1 for builds in homes.values())

    def test_a_case_with_more_files_than_a_build_takes_is_split_with_a_warning(self) -> None:
        models = [*self._cases(1, 4), make_model("solo")]
        with capture_logs() as logs:
            plan = plan_builds(make_recipe(max_models_per_build=3), models)
        assert plan.ok and plan.model_count == 5
        assert all(len(b.models) <= 3 for b in plan.builds)
        (warning,) = plan.warnings
        assert "case 'case-00' (4 models) is split" in warning
        assert "max_models_per_build (3)" in warning
        assert [e["case_id"] for e in logs if e["event"] == "case_split"] == ["case-00"]

    def test_a_case_too_large_for_one_platform_together_is_split(self) -> None:
        models = [make_model(f"p{k}", (150.0, 100.0, 10.0), case="big") for k in range(2)]
        plan = plan_builds(make_recipe(), models)
        assert plan.ok and len(plan.builds) == 2
        assert "too large together" in plan.warnings[0]

    def test_other_cases_stay_together_when_one_is_split(self) -> None:
        models = [*self._cases(3, 2), *[make_model(f"x{k}", case="many") for k in range(5)]]
        plan = plan_builds(make_recipe(max_models_per_build=4), models)
        for build in plan.builds:
            for model in build.models:
                if model.case_id != "many":
                    assert sum(m.case_id == model.case_id for m in build.models) == 2
        assert len(plan.warnings) == 1

    def test_without_keep_cases_together_cases_are_ignored(self) -> None:
        models = self._cases(4, 2)
        plan = plan_builds(make_recipe(keep_cases_together=False, max_models_per_build=3), models)
        assert plan.ok and not plan.warnings
        assert [len(b.models) for b in plan.builds] == [3, 3, 2]


class TestCaseWithAnUnplaceableModel:
    """A case member that fits no platform with its raft is rejected; the case plans on."""

    def test_the_unplaceable_member_is_rejected_not_raised(self) -> None:
        # 197 mm long: inside the 1 mm margin (198 mm), but its 2 mm rafts may reach only
        # 1 mm into the margin: it needs 201 mm of the 200 mm platform, at no turn.
        recipe = make_recipe(margin_mm=1.0, spacing_mm=0.0, keep_cases_together=True)
        small = make_model("small", (1.0, 1.0, 1.0), case="case-a")
        long = make_model("long", (26.0, 197.0, 1.0), case="case-a")
        plan = plan_builds(recipe, [small, long])
        assert [b.paths for b in plan.builds] == [(small.path,)]
        assert [r.path for r in plan.rejected] == [long.path]
        assert "does not fit" in plan.rejected[0].reason


class TestOverflow:
    """on_overflow: fail refuses batches that need more than one build."""

    def test_fail_raises_naming_the_number_of_builds(self) -> None:
        models = [make_model(f"m{i}", (90.0, 60.0, 10.0)) for i in range(8)]
        with pytest.raises(PlanningError) as caught:
            plan_builds(make_recipe(on_overflow="fail"), models)
        assert "on_overflow: fail" in str(caught.value)
        assert "8 models need" in str(caught.value)

    def test_fail_allows_a_batch_that_fits_one_build(self) -> None:
        models = [make_model(f"m{i}", (40.0, 40.0, 10.0)) for i in range(3)]
        plan = plan_builds(make_recipe(on_overflow="fail"), models)
        assert len(plan.builds) == 1

    def test_fail_counts_max_models_too(self) -> None:
        models = [make_model(f"m{i}", (10.0, 10.0, 10.0)) for i in range(3)]
        with pytest.raises(PlanningError):
            plan_builds(make_recipe(on_overflow="fail", max_models_per_build=2), models)


class TestSlsGrouping:
    """Powder (SLS) builds are grouped by part volume against the chamber, not footprint."""

    @staticmethod
    def _recipe(**batching: Any) -> Recipe:
        return make_recipe(
            machine="FS30-1-0",
            material="FLP12G01",
            technology="SLS",
            steps=("auto_pack",),
            **batching,
        )

    def test_builds_stay_under_the_packing_density_limit(self) -> None:
        capacity = FUSE[0] * FUSE[1] * FUSE[2] * DEFAULT_SLS_PACKING_DENSITY
        # Each part is a flat plate: 25 of them would cover a platform many times over, but
        # their volume decides the grouping.
        models = [
            make_model(f"s{i}", (150.0, 150.0, 10.0), volume=capacity / 4.5) for i in range(9)
        ]
        plan = plan_builds(self._recipe(), models)
        assert plan.ok
        assert [len(b.models) for b in plan.builds] == [4, 4, 1]
        for build in plan.builds:
            assert sum(m.volume_mm3 for m in build.models) <= capacity
            assert build.placements == ()
            expected = sum(m.volume_mm3 for m in build.models) / (FUSE[0] * FUSE[1] * FUSE[2])
            assert build.fill_ratio == pytest.approx(expected)

    def test_the_density_limit_can_be_changed(self) -> None:
        chamber = FUSE[0] * FUSE[1] * FUSE[2]
        models = [make_model(f"s{i}", (20.0, 20.0, 20.0), volume=chamber * 0.05) for i in range(6)]
        dense = plan_builds(self._recipe(), models, sls_packing_density=0.3)
        sparse = plan_builds(self._recipe(), models, sls_packing_density=0.1)
        assert (len(dense.builds), len(sparse.builds)) == (1, 3)

    def test_footprints_that_overlap_a_platform_do_not_force_a_split(self) -> None:
        models = [make_model(f"s{i}", (160.0, 160.0, 5.0), volume=1000.0) for i in range(10)]
        plan = plan_builds(self._recipe(), models)
        assert len(plan.builds) == 1

    def test_sls_honours_max_models_and_cases(self) -> None:
        models = [
            make_model(f"s{i}", (20.0, 20.0, 20.0), volume=100.0, case=f"k{i // 2}")
            for i in range(8)
        ]
        plan = plan_builds(self._recipe(max_models_per_build=3), models)
        assert all(len(b.models) <= 3 for b in plan.builds)
        for build in plan.builds:
            cases = {m.case_id for m in build.models}
            for case in cases:
                assert sum(m.case_id == case for m in build.models) == 2

    def test_an_sls_case_above_one_build_volume_is_split_with_a_warning(self) -> None:
        capacity = FUSE[0] * FUSE[1] * FUSE[2] * DEFAULT_SLS_PACKING_DENSITY
        models = [
            make_model(f"s{i}", (20.0, 20.0, 20.0), volume=capacity / 2.5, case="bulk")
            for i in range(4)
        ]
        plan = plan_builds(self._recipe(), models)
        assert plan.ok and len(plan.builds) == 2
        assert "case 'bulk' (4 models) is split" in plan.warnings[0]

    def test_an_sls_part_taller_than_the_chamber_is_rejected(self) -> None:
        plan = plan_builds(self._recipe(), [make_model("tall", (20.0, 20.0, 301.0))])
        assert plan.rejected[0].build_volume_mm == FUSE


class TestVolumes:
    """Resin estimates add supports only when the recipe supports; SLS counts parts only."""

    @pytest.mark.parametrize(
        ("steps", "expected_ml"),
        [(("auto_orient", "auto_support", "auto_layout"), 2 * 1.5), (("auto_layout",), 2 * 1.0)],
    )
    def test_sla_volume_with_and_without_supports(
        self, steps: tuple[str, ...], expected_ml: float
    ) -> None:
        models = [make_model(f"m{i}", volume=1000.0, support=500.0) for i in range(2)]
        plan = plan_builds(make_recipe(steps=steps), models)
        assert plan.builds[0].estimated_volume_ml == pytest.approx(expected_ml)
        assert plan.total_volume_ml == pytest.approx(expected_ml)

    def test_sls_volume_is_the_sintered_part_volume(self) -> None:
        recipe = make_recipe(
            machine="FS30-1-0", material="FLP12G01", technology="SLS", steps=("auto_pack",)
        )
        models = [make_model(f"m{i}", volume=2000.0, support=500.0) for i in range(3)]
        assert plan_builds(recipe, models).total_volume_ml == pytest.approx(6.0)

    def test_total_volume_sums_the_builds(self) -> None:
        models = [make_model(f"m{i}", (90.0, 60.0, 10.0), volume=1000.0) for i in range(5)]
        plan = plan_builds(make_recipe(steps=("auto_layout",)), models)
        assert len(plan.builds) > 1
        assert plan.total_volume_ml == pytest.approx(5.0)


class TestRecipeProblems:
    """Recipes planning cannot work with raise PlanningError saying what to change."""

    def test_an_unknown_machine_type_is_named(self) -> None:
        with pytest.raises(PlanningError, match="FORM-9-0"):
            plan_builds(make_recipe(machine="FORM-9-0"), [make_model("a")])

    def test_a_recipe_without_machine_type_cannot_plan(self) -> None:
        with pytest.raises(PlanningError, match="machine_type"):
            plan_builds(make_recipe(machine=None), [make_model("a")])

    def test_a_broken_step_graph_is_reported_even_without_models(self) -> None:
        steps = (make_step("auto_orient", after=("auto_layout",)), make_step("auto_layout"))
        with pytest.raises(StepGraphError, match="cycle"):
            plan_builds(make_recipe(steps=steps), [])

    def test_no_models_is_an_empty_plan(self) -> None:
        plan = plan_builds(make_recipe(), [])
        assert plan.builds == () and plan.ok and plan.total_volume_ml == 0
