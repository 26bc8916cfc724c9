"""The pure parts of the step functions: names, template fields, drain holes, overflow, splits."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest
from executor_support import plan_for, write_recipe

from preform_pipeline.errors import (
    OperationFailedError,
    RequestRejectedError,
    ServerInternalError,
)
from preform_pipeline.executor import split_build
from preform_pipeline.executor.steps import (
    drain_hole_positions,
    import_names,
    is_layout_overflow,
    model_values,
    shared_values,
)
from preform_pipeline.plan.builds import BuildPlan, ModelInfo
from preform_pipeline.plan.graph import StepGraph

STEPS = "steps:\n  - auto_layout\n  - save_form\nbatching:\n  keep_cases_together: {keep}\n"


def model(path: str, case: str | None = None, **fields: str) -> ModelInfo:
    return ModelInfo(
        path=Path(path),
        name=Path(path).stem,
        size_mm=(10.0, 10.0, 10.0),
        footprint_mm=(10.0, 10.0),
        volume_mm3=1000.0,
        support_estimate_mm3=0.0,
        triangle_count=12,
        case_id=case,
        fields=MappingProxyType(dict(fields)),
    )


def build_of(*models: ModelInfo) -> BuildPlan:
    return BuildPlan(1, "b-001", tuple(models), (), 0.1, 1.0, StepGraph(()))


class TestImportNames:
    """Every model gets a unique scene name, so a loaded checkpoint maps back to its files."""

    def test_stems_are_kept_and_repeats_numbered(self) -> None:
        build = build_of(model("/a/part.stl"), model("/b/part.stl"), model("/c/gear.obj"))
        assert import_names(build) == ("part", "part-2", "gear")

    def test_a_models_case_id_comes_first_so_the_scene_shows_whose_part_it_is(self) -> None:
        build = build_of(model("/in/C-7/upper.stl", "C-7"),
                         model("/in/C-9/upper.stl", "C-9"))
        assert import_names(build) == ("C-7 upper", "C-9 upper")


class TestTemplateValues:
    """Model fields reach a build's templates only when every model of the build agrees."""

    def test_a_model_has_its_stem_name_case_and_sidecar_fields(self) -> None:
        values = model_values(model("/x/crown.stl", "C-1", operator="ann"), {"build": "b"})
        assert values == {
            "build": "b", "stem": "crown", "model": "crown.stl", "case_id": "C-1",
            "operator": "ann",
        }

    def test_shared_values_keep_what_all_models_share(self) -> None:
        build = build_of(model("/x/a.stl", "C-1"), model("/x/b.stl", "C-1"))
        shared = shared_values(build, {"build": "b-001"})
        assert shared["case_id"] == "C-1"
        assert "stem" not in shared
        assert shared["build"] == "b-001"


class TestDrainHolePositions:
    """Drain holes spread along a face of the bounding box, low on side faces."""

    def test_two_holes_on_the_back_face_sit_inset_from_the_ends(self) -> None:
        holes = drain_hole_positions((0, 0, 0), (40, 20, 30), "back", count=2, inset_mm=4)
        assert holes == [
            ((4.0, 20.0, 4.0), (0.0, 1.0, 0.0)),
            ((36.0, 20.0, 4.0), (0.0, 1.0, 0.0)),
        ]

    def test_one_hole_on_the_bottom_is_centred(self) -> None:
        holes = drain_hole_positions((-10, -10, 0), (10, 30, 5), "bottom", count=1, inset_mm=2)
        assert holes == [((0.0, 10.0, 0.0), (0.0, 0.0, -1.0))]

    def test_largest_side_picks_the_wider_vertical_face(self) -> None:
        deep = drain_hole_positions((0, 0, 0), (10, 50, 10), "largest_side", count=1)
        assert deep[0][1] == (1.0, 0.0, 0.0)

    def test_an_unknown_face_is_refused(self) -> None:
        with pytest.raises(ValueError, match="sideways"):
            drain_hole_positions((0, 0, 0), (1, 1, 1), "sideways")


class TestLayoutOverflow:
    """Only a refusal that says the models do not fit counts as overflow."""

    def test_the_simulator_code_counts(self) -> None:
        assert is_layout_overflow(OperationFailedError("x", code="MODELS_DO_NOT_FIT"))

    def test_a_message_saying_it_does_not_fit_counts(self) -> None:
        exc = RequestRejectedError("x", server_message="3 models do not fit on the platform")
        assert is_layout_overflow(exc)

    def test_other_refusals_and_server_faults_do_not(self) -> None:
        assert not is_layout_overflow(RequestRejectedError("x", code="WRONG_TECHNOLOGY"))
        assert not is_layout_overflow(ServerInternalError("does not fit", code="X"))


class TestSplitBuild:
    """Splitting halves a build into two new builds with their own graphs."""

    def test_a_split_halves_in_the_middle_without_cases(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        parts = sorted((sample_models_dir / "batch").glob("part_0*.stl"))[:5]
        plan = plan_for(write_recipe(tmp_path, STEPS.format(keep="false")), parts)
        first, second = split_build(plan.recipe, plan.builds[0], 7)
        assert (first.name, second.name) == ("unit-001.1", "unit-001.2")
        assert (first.index, second.index) == (7, 8)
        assert len(first.models) == 2 and len(second.models) == 3
        assert first.models + second.models == plan.builds[0].models
        assert first.graph.ids == plan.builds[0].graph.ids
        assert second.graph["import_models"].options["files"] == tuple(
            str(m.path) for m in second.models
        )

    def test_with_cases_kept_together_the_cut_follows_a_case_boundary(
        self, tmp_path: Path
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, STEPS.format(keep="true")), [])
        build = build_of(
            model("/a/1.stl", "A"), model("/a/2.stl", "A"), model("/a/3.stl", "A"),
            model("/b/1.stl", "B"),
        )
        first, second = split_build(plan.recipe, build, 2)
        assert [m.case_id for m in first.models] == ["A", "A", "A"]
        assert [m.case_id for m in second.models] == ["B"]

    def test_a_single_model_cannot_be_split(self, tmp_path: Path) -> None:
        plan = plan_for(write_recipe(tmp_path, STEPS.format(keep="true")), [])
        with pytest.raises(ValueError, match="one model"):
            split_build(plan.recipe, build_of(model("/a/1.stl")), 2)
