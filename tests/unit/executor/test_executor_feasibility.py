"""Per-case checks before batching: each problem names its case, model and step."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from preform_pipeline.executor.feasibility import (
    CaseProblem,
    case_problems,
    missing_case_id,
    refused_cases,
)
from preform_pipeline.executor.runroot import run_values
from preform_pipeline.plan.builds import ModelInfo, read_model
from preform_pipeline.recipes import load_recipe
from tests.unit.executor.executor_support import write_box, write_recipe

STEPS = """\
steps:
  - hollow: {wall_thickness_mm: 1.0}
  - add_drain_holes:
      diameter_mm: 4.0
      placement: {face: back, count: 1}
  - label:
      text: "{case_id}"
      font_size_mm: 3
      depth_mm: 0.5
      placement: {face: front, margin_mm: 1, fit: shrink, min_font_size_mm: 2}
  - print:
      printer: "{printer}"
batching: {max_models_per_build: 1}
"""


def _problems(tmp_path: Path, size: tuple[float, float, float], case_id: str,
              fields: dict[str, str] | None = None, steps: str = STEPS) -> list[str]:
    recipe = load_recipe(write_recipe(tmp_path, steps))
    model = read_model(write_box(tmp_path / "m", "upper", *size),
                       import_spec=recipe.import_options, case_id=case_id,
                       fields=fields if fields is not None else {"printer": "Form4-A"})
    return [p.message for p in case_problems(recipe, [model],
                                             run_values(recipe, datetime(2026, 1, 2)))]


class TestCaseProblems:
    """A case that cannot be done is found before it shares a build."""

    def test_a_case_that_fits_every_step_has_no_problem(self, tmp_path: Path) -> None:
        assert _problems(tmp_path, (30.0, 30.0, 20.0), "C-1") == []

    def test_a_case_id_too_long_for_its_label_names_the_label_step(
        self, tmp_path: Path
    ) -> None:
        [problem] = _problems(tmp_path, (30.0, 30.0, 20.0), "C-" + "9" * 40)
        assert problem.startswith(f"case C-{'9' * 40}: model upper.stl: step label: ")
        assert "does not fit" in problem

    def test_a_part_thinner_than_its_drain_hole_names_the_drain_step(
        self, tmp_path: Path
    ) -> None:
        [problem] = _problems(tmp_path, (30.0, 30.0, 2.0), "C-2")
        assert problem == ("case C-2: model upper.stl: step add_drain_holes: a 4 mm drain "
                           "hole does not fit a part 2.00 mm thin (30.0 x 30.0 x 2.0 mm, read "
                           "as MILLIMETERS (recipe))")

    def test_a_missing_template_field_names_the_print_step(self, tmp_path: Path) -> None:
        [problem] = _problems(tmp_path, (30.0, 30.0, 20.0), "C-3", fields={})
        assert problem.startswith("case C-3: model upper.stl: step print: ")
        assert "printer" in problem

    def test_an_oriented_model_passes_when_any_face_takes_the_label(
        self, tmp_path: Path
    ) -> None:
        steps = STEPS.replace("steps:\n", "steps:\n  - auto_orient\n")
        # 3 mm tall: the front face is too low for the text, a 60 x 60 face is not.
        label = "C-" + "7" * 12
        assert _problems(tmp_path, (60.0, 60.0, 3.0), label, steps=steps.replace(
            "diameter_mm: 4.0", "diameter_mm: 1.0")) == []
        assert len(_problems(tmp_path, (60.0, 60.0, 3.0), label, steps=STEPS.replace(
            "diameter_mm: 4.0", "diameter_mm: 1.0"))) == 1

    def test_explicit_drain_holes_are_left_to_the_scene(self, tmp_path: Path) -> None:
        steps = STEPS.replace("      placement: {face: back, count: 1}\n", (
            "      drain_holes:\n"
            "        - position: {x: 0, y: 0, z: 1}\n"
            "          orientation: {z_direction: [0, 0, 1], x_direction: [1, 0, 0]}\n"))
        assert _problems(tmp_path, (30.0, 2.0, 30.0), "C-4", steps=steps) == []


LABEL = ("steps:\n  - label: {{text: '{text}', font_size_mm: 3, depth_mm: 0.5, "
         "placement: {{face: front}}}}\n")


class TestRefusedCases:
    """The rule ``watch`` and ``run`` both refuse by: a case with a problem, with its first."""

    def test_each_refused_case_has_its_first_problem_and_good_cases_none(
        self, tmp_path: Path
    ) -> None:
        recipe = load_recipe(write_recipe(tmp_path, STEPS))

        def model(name: str, height: float, case_id: str) -> ModelInfo:
            return read_model(write_box(tmp_path / case_id, name, 30.0, 30.0, height),
                              import_spec=recipe.import_options, case_id=case_id,
                              fields={"printer": "Form4-A"})

        cases = {"C-1": [model("a", 20.0, "C-1")],
                 "C-2": [model("fine", 20.0, "C-2"), model("thin", 2.0, "C-2"),
                         model("thinner", 1.0, "C-2")]}
        refused = refused_cases(recipe, cases, run_values(recipe, datetime(2026, 1, 2)))
        assert list(refused) == ["C-2"]
        assert refused["C-2"].message == (
            "case C-2: model thin.stl: step add_drain_holes: a 4 mm drain hole does not fit "
            "a part 2.00 mm thin (30.0 x 30.0 x 2.0 mm, read as MILLIMETERS (recipe))")


class TestMissingCaseId:
    """A model with no case id is refused where, and only where, a template needs one."""

    def _problem(self, tmp_path: Path, steps: str, case_id: str | None,
                 fields: dict[str, str] | None = None) -> CaseProblem | None:
        recipe = load_recipe(write_recipe(tmp_path, steps))
        model = read_model(write_box(tmp_path / "m", "loose", 30.0, 30.0, 20.0),
                           import_spec=recipe.import_options, case_id=case_id, fields=fields)
        return missing_case_id(recipe, model)

    def test_the_reason_says_why_and_what_helps(self, tmp_path: Path) -> None:
        problem = self._problem(tmp_path, LABEL.format(text="{case_id}"), None)
        assert problem is not None
        assert problem.message == (
            "model loose.stl: step label: the label text needs {case_id}, and loose.stl has "
            "none: it is not in a case folder, and no sidecar gives it one")
        assert problem.hint == (
            "put it in a folder named by its case id (C-1042/loose.stl; `run` takes the "
            "folder above it), or give it a sidecar with case_id, or take {case_id} out of the "
            "label text")

    def test_each_template_that_needs_it_is_named(self, tmp_path: Path) -> None:
        # Model fields in build templates need one model a build.
        one = "batching: {max_models_per_build: 1}\n"
        for steps, step, what in (
            (LABEL.format(text="{case_id}"), "label", "the label text"),
            (LABEL.format(text="{stem}") + "  - print: {printer: F, job_name: '{case_id}'}\n"
             + one, "print", "the print job name"),
            ("steps:\n  - print: {fleet_group: 'q-{case_id}'}\n" + one, "print",
             "the print step's fleet_group"),
            ("steps:\n  - save_form\noutputs: {form: '{case_id}/{build}.form'}\n" + one,
             "save_form", "outputs.form"),
            ("steps:\n  - screenshot\noutputs: {screenshot: '{case_id}.png'}\n" + one,
             "screenshot", "outputs.screenshot"),
        ):
            problem = self._problem(tmp_path, steps, None)
            assert problem is not None
            assert (problem.case_id, problem.model, problem.step) == (None, "loose.stl", step)
            assert problem.reason.startswith(f"{what} needs {{case_id}}, and loose.stl has none")
            assert problem.hint.endswith(f"or take {{case_id}} out of {what}")

    def test_a_case_id_or_a_recipe_without_it_passes(self, tmp_path: Path) -> None:
        assert self._problem(tmp_path, LABEL.format(text="{case_id}"), "C-1") is None
        assert self._problem(tmp_path, LABEL.format(text="{stem}"), None) is None
        # A case id among the model's fields fills the template as well (model_values).
        assert self._problem(tmp_path, LABEL.format(text="{case_id}"), None,
                             fields={"case_id": "C-9"}) is None
