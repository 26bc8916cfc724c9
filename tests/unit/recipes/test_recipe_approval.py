"""``print: {approval: required}``: accepted with what the approval needs, refused without."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.recipes.model import requires_approval
from tests.unit.recipes.recipe_cases import SLA_RECIPE, only_problem_at, validate_text

HELD = SLA_RECIPE + """\
  - save_form
  - screenshot
  - print:
      printer: [Bench-A, Bench-B]
      approval: required
"""


class TestApprovalOption:
    """The recipe schema and the semantic checks know the approval option."""

    def test_a_recipe_with_form_screenshot_and_printer_may_require_approval(
        self, tmp_path: Path
    ) -> None:
        report = validate_text(tmp_path, HELD)
        assert report.valid, [str(p) for p in report.problems]
        assert report.recipe is not None and requires_approval(report.recipe)

    def test_approval_without_a_screenshot_step_is_refused_with_why(
        self, tmp_path: Path
    ) -> None:
        report = validate_text(tmp_path, HELD.replace("  - screenshot\n", ""))
        problem = only_problem_at(report, "$.steps[4].print.approval")
        assert "screenshot step before print" in problem.message

    def test_approval_without_a_saved_form_or_named_printer_is_refused(
        self, tmp_path: Path
    ) -> None:
        text = HELD.replace("  - save_form\n", "").replace(
            "      printer: [Bench-A, Bench-B]", "      fleet_group: queue-1")
        report = validate_text(tmp_path, text)
        messages = " ".join(p.message for p in report.problems)
        assert "save_form step before print" in messages and "needs printer:" in messages

    def test_an_unknown_approval_value_is_a_schema_error(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, HELD.replace("approval: required", "approval: maybe"))
        assert not report.valid

    def test_a_recipe_without_the_option_prints_without_asking(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, HELD.replace("      approval: required\n", ""))
        assert report.recipe is not None and not requires_approval(report.recipe)
