"""Property (session 32): a hostile scalar written over any value of an example recipe gives
problems placed in the file, never an exception. Numbers that are not finite (NaN, the
infinities, an integer beyond a float) are refused where they stand, once: an integer
beyond a float ended ``validate`` with an OverflowError (exit 70), and ``.nan`` was taken
where a minimum stood."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.recipes.validate import validate_recipe
from preform_pipeline.yamlerrors import format_json_path
from tests.conftest import RECIPES
from tests.unit.recipes.test_recipe_mutations import EXAMPLES, _sites, recipes_copy

__all__ = ["recipes_copy"]  # the fixture, used by name

NOT_FINITE = (".nan", ".NaN", ".inf", "-.inf", "+.INF", "1" + "0" * 400, "-" + "9" * 320,
              "0x" + "f" * 300, "1_000" * 80)
#: Scalars no recipe means: YAML's odd corners, text a store or a server cannot hold.
HOSTILE = (*NOT_FINITE, '"\\ud800"', '"a\\0b"', "!!binary AAAA", "*nowhere", "!!set {a}",
           "&x [*x]", "{a: {b: {c: [[[[[]]]]]}}}", "~", "''", "2026-13-45", "0o777", "1e999",
           '"' + "x" * 5000 + '"', "[" * 200 + "]" * 200, "!!python/object/apply:os.getpid []")

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[*settings().suppress_health_check,
                                           HealthCheck.function_scoped_fixture])


def _mutant(recipes_copy: Path, relative: str, start: int, end: int, text: str) -> Path:
    original = (RECIPES / relative).read_text(encoding="utf-8")
    path = (recipes_copy / relative).parent / "_hostile.yaml"
    path.write_text(original[:start] + text + original[end:], encoding="utf-8")
    return path


class TestHostileScalars:
    """Whatever scalar replaces a value, validate answers with placed problems."""

    @SETTINGS
    @given(data=st.data())
    def test_any_value_site(self, recipes_copy: Path, data: Any) -> None:
        relative = data.draw(st.sampled_from(EXAMPLES), label="recipe")
        values, _ = _sites(relative)
        site = data.draw(st.sampled_from(values), label="site")
        text = data.draw(st.sampled_from(HOSTILE), label="scalar")
        path = _mutant(recipes_copy, relative, site.start, site.end, text)
        report = validate_recipe(path, display="_hostile.yaml")
        lines = path.read_text(encoding="utf-8").count("\n") + 1
        for problem in report.problems:
            assert problem.line is not None and 1 <= problem.line <= lines, str(problem)

    @SETTINGS
    @given(data=st.data())
    def test_a_number_that_is_not_finite_is_one_problem_at_its_place(
        self, recipes_copy: Path, data: Any
    ) -> None:
        relative = data.draw(st.sampled_from(EXAMPLES), label="recipe")
        values, _ = _sites(relative)
        site = data.draw(st.sampled_from([s for s in values if s.numeric]), label="site")
        text = data.draw(st.sampled_from(NOT_FINITE), label="number")
        path = _mutant(recipes_copy, relative, site.start, site.end, text)
        report = validate_recipe(path, display=(Path(relative).parent / "_hostile.yaml")
                                 .as_posix())
        at_site = [p for p in report.problems if p.json_path == format_json_path(site.path)]
        assert len(at_site) == 1, "\n".join(str(p) for p in report.problems)
        assert at_site[0].line == site.line
        assert "is not a finite number" in at_site[0].message


class TestExtendsNamesNoFile:
    """An ``extends`` holding a NUL names no file: said at its place (it was exit 70)."""

    def test_a_nul_in_extends(self, tmp_path: Path) -> None:
        path = tmp_path / "recipe.yaml"
        path.write_text('extends: "base\\0.yaml"\nname: x\n', encoding="utf-8")
        report = validate_recipe(path, display="recipe.yaml")
        assert [str(p) for p in report.problems] == [
            "recipe.yaml:1:10: $.extends: extends names a file; a file's name holds no NUL "
            "character"]
