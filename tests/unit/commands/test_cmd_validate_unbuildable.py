"""Values YAML parses but Python cannot build (a date that does not exist, an integer of more
digits than Python converts) are problems at their line, never a crash (exit 70)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from tests.conftest import RECIPES

#: One digit more than Python converts to an integer.
TOO_LONG = "9" * (sys.get_int_max_str_digits() + 1)


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(list(argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


class TestARecipe:
    """`validate` names the integer too long to read, where it is."""

    def test_an_integer_of_too_many_digits_is_a_problem_at_its_line(self, tmp_path: Path) -> None:
        text = (RECIPES / "engineering-grey-form4.yaml").read_text(encoding="utf-8")
        assert "max_print_time_s: 86400" in text
        recipe = tmp_path / "long.yaml"
        recipe.write_text(text.replace("max_print_time_s: 86400", f"max_print_time_s: {TOO_LONG}"),
                          encoding="utf-8")
        line = text[:text.index("max_print_time_s")].count("\n") + 1
        code, out, err = invoke("validate", str(recipe))
        assert (code, err) == (1, "")
        assert (f"long.yaml:{line}:25: $.steps[5].estimate.max_print_time_s: '999999999999"
                in out)
        assert f"cannot be read as an integer (over {sys.get_int_max_str_digits()} digits)" in out


class TestASettingsFile:
    """`validate --settings` and a command that loads the settings name the bad value."""

    @pytest.mark.parametrize(("value", "says"), [
        ("2024-02-30", "$: '2024-02-30' cannot be read as a date (day is out of range for month)"),
        (TOO_LONG, "$.servers.count: '999999999999999999999999999999...' cannot be read as an "
                   f"integer (over {sys.get_int_max_str_digits()} digits)"),
    ], ids=["date", "digits"])
    def test_validate_names_the_value_and_its_place(
        self, tmp_path: Path, value: str, says: str
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"servers:\n  count: {value}\n", encoding="utf-8")
        code, out, err = invoke("validate", "--settings", str(settings))
        assert (code, err) == (1, "")
        assert f"settings.yaml:2:10: {says}" in out
        assert "quote it if it is meant as text" in out

    def test_plan_refuses_the_settings_with_the_same_reason(self, tmp_path: Path) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text("verify:\n  since: 2024-13-01\n", encoding="utf-8")
        code, out, err = invoke("plan", "--settings", str(settings),
                                str(RECIPES / "engineering-grey-form4.yaml"), str(tmp_path))
        assert code == 1 and out == ""
        assert "settings.yaml:2:10: $: '2024-13-01' cannot be read as a date" in err
        assert "unexpected failure" not in err
