"""The checks made on each case before it shares a build: exact reasons and hints, every
print and output template, labels that may be skipped, drain holes at the limit."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from preform_pipeline.executor.feasibility import CaseProblem, case_problems
from preform_pipeline.executor.runroot import run_values
from preform_pipeline.plan.builds import read_model
from preform_pipeline.recipes import load_recipe
from tests.unit.executor.executor_support import write_box, write_recipe

LABEL = """\
  - label:
      text: "{case_id}"
      font_size_mm: %s
      depth_mm: 0.5
      placement: {face: %s, margin_mm: 1%s}
"""
LONG_CASE = "C-" + "9" * 30
#: Sidecar fields the recipes below may name, one model per build so that they may name them.
FIELDS = "fields: [site, patient, printer, printr]\nbatching: {max_models_per_build: 1}\n"


def _problems(tmp_path: Path, body: str, size: tuple[float, float, float] = (30, 30, 20),
              *, case_id: str | None = "C-1", fields: dict[str, str] | None = None,
              name: str = "upper") -> list[CaseProblem]:
    recipe = load_recipe(write_recipe(tmp_path, FIELDS + body))
    model = read_model(write_box(tmp_path / "m", name, *size),
                       import_spec=recipe.import_options, case_id=case_id,
                       fields=fields or {})
    return case_problems(recipe, [model], run_values(recipe, datetime(2026, 1, 2)))


def _label(font: str = "3", face: str = "front", extra: str = "") -> str:
    return "steps:\n" + LABEL % (font, face, extra)


class TestLabelReasons:
    """A label that does not fit says how large it was, on which face, and what to change."""

    def test_the_reason_names_the_font_and_the_faces_size(self, tmp_path: Path) -> None:
        [problem] = _problems(tmp_path, _label(extra=", fit: fail"), (30, 40, 20),
                              case_id=LONG_CASE)
        assert problem.step == "label" and problem.model == "upper.stl"
        assert " at font 3 mm) does not fit the front face (30.0 x 20.0 mm, margin 1 mm," \
            in problem.reason
        assert problem.hint == ("shorten the text, lower font_size_mm / min_font_size_mm, "
                                "or use a larger face")

    def test_a_side_face_is_measured_across_the_models_depth(self, tmp_path: Path) -> None:
        [problem] = _problems(tmp_path, _label(face="right", font="4", extra=", fit: fail"),
                              (30, 40, 20), case_id=LONG_CASE)
        assert " at font 4 mm) does not fit the right face (40.0 x 20.0 mm," in problem.reason

    def test_a_top_face_is_measured_across_width_and_depth(self, tmp_path: Path) -> None:
        [problem] = _problems(tmp_path, _label(face="top", extra=", fit: fail"),
                              (12, 14, 20), case_id=LONG_CASE)
        assert "does not fit the top face (12.0 x 14.0 mm," in problem.reason

    def test_a_label_allowed_to_be_skipped_is_no_problem(self, tmp_path: Path) -> None:
        assert _problems(tmp_path, _label(extra=", fit: skip"), case_id=LONG_CASE) == []

    def test_without_a_fit_the_label_shrinks_and_a_case_too_long_still_fails(
        self, tmp_path: Path
    ) -> None:
        [problem] = _problems(tmp_path, _label(), case_id=LONG_CASE)
        assert problem.reason.endswith("even at the 2 mm minimum font")

    def test_a_label_at_an_explicit_position_is_left_to_the_scene(self, tmp_path: Path) -> None:
        body = ("steps:\n  - label:\n      text: \"{case_id}\"\n      font_size_mm: 3\n"
                "      depth_mm: 0.5\n      position: {x: 0, y: 0, z: 1}\n"
                "      orientation: {z_direction: [0, -1, 0], x_direction: [1, 0, 0]}\n")
        assert _problems(tmp_path, body, case_id=LONG_CASE) == []


class TestDrainHoleLimit:
    """A drain hole as wide as the part's thinnest side does not fit either."""

    def test_a_hole_exactly_as_wide_as_the_part_is_a_problem_with_a_hint(
        self, tmp_path: Path
    ) -> None:
        body = ("steps:\n  - hollow: {wall_thickness_mm: 1.0}\n  - add_drain_holes:\n"
                "      diameter_mm: 3.0\n      placement: {face: back, count: 1}\n")
        [problem] = _problems(tmp_path, body, (30, 30, 3))
        # With the part's size and how its units were decided (session 47: an arch exported
        # in centimetres was only "1.84 mm thin").
        assert problem.reason == ("a 3 mm drain hole does not fit a part 3.00 mm thin "
                                  "(30.0 x 30.0 x 3.0 mm, read as MILLIMETERS (recipe))")
        assert problem.hint == ("use a smaller diameter_mm, or a recipe without drain holes "
                                "for thin parts; a part smaller than it should be was exported "
                                "in other units: state them (a sidecar's units, or the "
                                "recipe's import units or scale)")


class TestTemplates:
    """Every template the build will render is tried with the case's own fields."""

    def test_the_shipped_output_names_render_for_a_case(self, tmp_path: Path) -> None:
        body = "steps:\n  - auto_layout\n  - save_form\n  - screenshot\n  - print\n"
        assert _problems(tmp_path, body) == []
        assert _problems(tmp_path, body, case_id=None) == []

    def test_a_missing_field_in_a_print_target_names_the_print_step(
        self, tmp_path: Path
    ) -> None:
        for key in ("printer_ip", "fleet_group"):
            body = f"steps:\n  - print:\n      {key}: \"{{site}}\"\n"
            [problem] = _problems(tmp_path, body)
            assert (problem.step, problem.reason) == (
                "print", "template '{site}': no value for field {site}")
            assert problem.hint == "did you mean {stem}?"
            assert _problems(tmp_path, body, fields={"site": "lab"}) == []

    def test_a_missing_field_in_the_job_name_names_the_print_step(self, tmp_path: Path) -> None:
        body = "steps:\n  - print:\n      printer: Form4-A\n      job_name: \"{patient}\"\n"
        [problem] = _problems(tmp_path, body)
        assert (problem.step, problem.reason) == (
            "print", "template '{patient}': no value for field {patient}")
        assert problem.hint == "give the field a value"

    def test_each_output_template_is_checked_at_its_own_step(self, tmp_path: Path) -> None:
        steps = "steps:\n  - auto_layout\n  - save_form\n  - screenshot\n"
        form = steps + "outputs:\n  form: \"{date}/{patient}.form\"\n"
        [problem] = _problems(tmp_path, form)
        assert (problem.step, problem.reason) == (
            "save_form", "template '{date}/{patient}.form': no value for field {patient}")
        shot = steps + "outputs:\n  screenshot: \"{date}/{patient}.png\"\n"
        [problem] = _problems(tmp_path, shot)
        assert (problem.step, problem.reason) == (
            "screenshot", "template '{date}/{patient}.png': no value for field {patient}")

    def test_a_near_miss_field_gets_a_did_you_mean_hint(self, tmp_path: Path) -> None:
        body = "steps:\n  - print:\n      printer: \"{printr}\"\n"
        [problem] = _problems(tmp_path, body, fields={"printer": "Form4-A"})
        assert problem.hint == "did you mean {printer}?"


class TestJobField:
    """The job a case's label and names are checked with is its case id, else its file."""

    def test_a_label_of_the_job_is_checked_with_the_case_id(self, tmp_path: Path) -> None:
        body = ("steps:\n  - label:\n      text: \"{job}\"\n      font_size_mm: 3\n"
                "      depth_mm: 0.5\n      placement: {face: front, margin_mm: 1, fit: fail}\n")
        [problem] = _problems(tmp_path, body, case_id=LONG_CASE)
        assert LONG_CASE[:12] in problem.reason
        assert _problems(tmp_path, body, case_id="C-1") == []

    def test_without_a_case_the_label_of_the_job_is_the_files_stem(
        self, tmp_path: Path
    ) -> None:
        body = ("steps:\n  - label:\n      text: \"{job}\"\n      font_size_mm: 3\n"
                "      depth_mm: 0.5\n      placement: {face: front, margin_mm: 1, fit: fail}\n")
        assert _problems(tmp_path, body, case_id=None) == []
        stem = "a-rather-long-file-name-for-a-part"
        [problem] = _problems(tmp_path, body, case_id=None, name=stem)
        assert problem.model == f"{stem}.stl"
        assert problem.reason.startswith(f"label {stem!r} (")

    def test_a_template_that_cannot_be_formatted_has_no_hint(self, tmp_path: Path) -> None:
        body = "steps:\n  - print:\n      printer: Form4-A\n      job_name: \"{job:d}\"\n"
        [problem] = _problems(tmp_path, body)
        assert problem.reason.startswith("template '{job:d}': cannot format {job:d}: ")
        assert problem.hint == ""
