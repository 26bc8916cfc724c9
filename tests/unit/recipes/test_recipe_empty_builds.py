"""``batching.empty_builds``: off unless the recipe asks, a boolean or a clear problem."""

from __future__ import annotations

from pathlib import Path

from tests.unit.recipes.recipe_cases import only_problem_at, validate_text
from tests.unit.recipes.test_recipe_semantic import sla

STEPS = "  - auto_orient\n  - auto_support\n  - auto_layout\n"


class TestEmptyBuilds:
    def test_a_recipe_that_does_not_ask_plans_without_emptying(self, tmp_path: Path) -> None:
        recipe = validate_text(tmp_path, sla(STEPS)).recipe
        assert recipe is not None
        assert recipe.batching.empty_builds is False

    def test_a_recipe_that_asks_gets_it(self, tmp_path: Path) -> None:
        recipe = validate_text(tmp_path, sla(STEPS, "batching:\n  empty_builds: true\n")).recipe
        assert recipe is not None
        assert recipe.batching.empty_builds is True

    def test_anything_but_a_boolean_is_a_problem_at_its_key(self, tmp_path: Path) -> None:
        text = sla(STEPS, "batching:\n  empty_builds: often\n")
        report = validate_text(tmp_path, text)
        assert report.recipe is None
        problem = only_problem_at(report, "$.batching.empty_builds")
        assert "boolean" in problem.message
        line = text.splitlines().index("  empty_builds: often") + 1
        assert (problem.file, problem.line, problem.column) == ("recipe.yaml", line, 17)

    def test_a_misspelt_key_is_a_problem_that_names_it(self, tmp_path: Path) -> None:
        text = sla(STEPS, "batching:\n  empty_bulds: true\n")
        report = validate_text(tmp_path, text)
        assert report.recipe is None
        problem = only_problem_at(report, "$.batching.empty_bulds")
        line = text.splitlines().index("  empty_bulds: true") + 1
        assert (problem.line, problem.column, problem.suggestion) == (line, 3, "empty_builds")
