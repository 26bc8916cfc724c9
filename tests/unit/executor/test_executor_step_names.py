"""The names and fields steps give a person: scene names per model, a case's failure
message, template fields per model and per build, and which errors mean "does not fit"."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.errors import PermanentApiError, ServerInternalError
from preform_pipeline.executor.steps import (
    case_step_message,
    import_names,
    is_layout_overflow,
    model_values,
    shared_values,
)
from preform_pipeline.plan.builds import BuildPlan, ModelInfo
from preform_pipeline.plan.graph import compile_graph
from tests.unit.plan.planning_factories import make_model, make_recipe

RECIPE = make_recipe()


def _build(*models: ModelInfo) -> BuildPlan:
    return BuildPlan(index=1, name="r-001", models=models, placements=(), fill_ratio=0.5,
                     estimated_volume_ml=1.0, graph=compile_graph(RECIPE, models))


def _model(path: str, case: str | None = None, **fields: str) -> ModelInfo:
    base = make_model("x", case=case)
    return ModelInfo(path=Path(path), name=base.name, size_mm=base.size_mm,
                     footprint_mm=base.footprint_mm, volume_mm3=base.volume_mm3,
                     support_estimate_mm3=0.0, triangle_count=12, case_id=case, fields=fields)


class TestImportNames:
    """Each model gets a scene name of its own: case id and stem, numbered on repeats."""

    def test_names_carry_the_case_and_repeats_are_numbered(self) -> None:
        build = _build(_model("a/upper.stl", "C-1"), _model("b/upper.stl", "C-1"),
                       _model("c/upper.stl", "C-1"), _model("lower.obj"),
                       _model("d/lower.stl"))
        assert import_names(build) == ("C-1 upper", "C-1 upper-2", "C-1 upper-3", "lower",
                                       "lower-2")

    def test_a_file_without_a_stem_is_a_model(self) -> None:
        assert import_names(_build(_model("/"), _model("/"))) == ("model", "model-2")


class TestCaseStepMessage:
    """A case's failure names the case, the model and the step."""

    def test_with_and_without_a_case(self) -> None:
        assert case_step_message("C-7", "upper.stl", "label", "too long") == (
            "case C-7: model upper.stl: step label: too long")
        assert case_step_message(None, "upper.stl", "label", "too long") == (
            "model upper.stl: step label: too long")


class TestTemplateFields:
    """A model's fields add its own to the build's; a build keeps those its models share."""

    def test_a_models_fields(self) -> None:
        values = model_values(_model("in/upper.stl", "C-1", patient="Ann"), {"build": "r-001"})
        assert values == {"build": "r-001", "stem": "upper", "model": "upper.stl",
                          "case_id": "C-1", "patient": "Ann"}
        assert "case_id" not in model_values(_model("in/upper.stl"), {})

    def test_a_build_keeps_only_the_fields_every_model_agrees_on(self) -> None:
        build = _build(_model("a.stl", "C-1", patient="Ann", site="lab"),
                       _model("b.stl", "C-1", patient="Ann", site="home"))
        assert shared_values(build, {"build": "r-001"}) == {
            "build": "r-001", "case_id": "C-1", "patient": "Ann"}

    def test_the_builds_own_fields_win(self) -> None:
        build = _build(_model("a.stl", build="mine"))
        assert shared_values(build, {"build": "r-001"})["build"] == "r-001"
        assert shared_values(_build(), {"build": "r-001"}) == {"build": "r-001"}


class TestLayoutOverflow:
    """Only a refusal that says the models do not fit counts as an overflow."""

    def test_the_code_or_the_words_make_an_overflow(self) -> None:
        assert is_layout_overflow(PermanentApiError("refused", code="MODELS_DO_NOT_FIT"))
        assert is_layout_overflow(PermanentApiError("x", server_message="3 models DO NOT FIT"))
        assert is_layout_overflow(PermanentApiError("the part does not fit the platform"))

    def test_other_refusals_and_other_errors_do_not(self) -> None:
        assert not is_layout_overflow(PermanentApiError("bad mesh", code="INVALID_MODEL"))
        assert not is_layout_overflow(
            PermanentApiError("does not fit", server_message="scene is locked"))
        assert not is_layout_overflow(ServerInternalError("models do not fit"))
        assert not is_layout_overflow(ValueError("does not fit"))
