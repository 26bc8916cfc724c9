"""Session 22, seed 40: what a recipe whose scene is an .fps file means, as the loaded recipe
carries it (its technology, the findings a validate step fails on). Since session 47 such a
scene names its machine type too (the planner needs its build volume), which tells the
technology."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.recipes.model import SUPPORT_FINDINGS, VALIDATION_FINDINGS
from tests.unit.recipes.recipe_cases import validate_text


class TestAnFpsSceneWithResinSteps:
    """On a resin (SLA) machine its validate step fails a build on support findings too."""

    def test_the_recipe_is_sla_and_validate_fails_on_every_finding(
        self, tmp_path: Path
    ) -> None:
        report = validate_text(tmp_path, "scene:\n  fps_file: grey.fps\n  machine_type: FORM-4-0\n"
                               "steps:\n  - auto_orient\n  - auto_support\n  - auto_layout\n"
                               "  - validate\n")
        assert report.problems == ()
        assert report.recipe is not None
        assert report.recipe.technology == "SLA"
        validate = report.recipe.step("validate")
        assert validate is not None
        assert tuple(validate.options["fail_on"]) == VALIDATION_FINDINGS
        assert set(validate.options["fail_on"]) >= SUPPORT_FINDINGS

    def test_a_powder_machine_makes_it_sls_without_support_findings(self, tmp_path: Path) -> None:
        report = validate_text(tmp_path, "scene:\n  fps_file: grey.fps\n  machine_type: FS30-1-0\n"
                               "steps:\n  - auto_pack\n  - validate\n")
        assert report.problems == ()
        assert report.recipe is not None
        assert report.recipe.technology == "SLS"
        validate = report.recipe.step("validate")
        assert validate is not None
        assert tuple(validate.options["fail_on"]) == ("interferences", "out_of_bounds")
