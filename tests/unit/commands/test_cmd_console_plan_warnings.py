"""``run``'s plan warnings: units guessed alike said in one line, every other one as it is."""

from __future__ import annotations

from dataclasses import replace

from preform_pipeline.commands._console import plan_warnings
from preform_pipeline.plan.builds import ModelInfo, Plan, plan_builds
from tests.unit.plan.planning_factories import make_model, make_recipe

RULE = ("state them with import.units or import.units_by_path in the recipe, or `units:` in "
        "the case's sidecar")


def _guessed(name: str, units: str = "MILLIMETERS") -> ModelInfo:
    return replace(make_model(name, (10, 10, 10)), units=units, units_source="guess",
                   units_warning=f"{name}.stl: units not stated, guessed {units} (...); {RULE}")


def _plan(*models: ModelInfo, warnings: tuple[str, ...] = ()) -> Plan:
    plan = plan_builds(make_recipe(), list(models))
    return replace(plan, warnings=(*plan.warnings, *warnings))


class TestUnitsGuessedAlike:
    """Guesses of the same units are one line naming the models; the rest are kept whole."""

    def test_many_guesses_are_one_line_each_unit_its_own(self) -> None:
        models = [_guessed(f"p{i}") for i in range(7)] + [_guessed("a", "INCHES"),
                                                          _guessed("b", "INCHES")]
        plan = _plan(*models, warnings=("case C-1 is split over 2 builds",))
        assert len(plan.warnings) == 10  # the planner's: each guess, and the other
        assert plan_warnings(plan) == [
            "7 models' units not stated, guessed MILLIMETERS: p0.stl, p1.stl, p2.stl, p3.stl, "
            f"p4.stl, … (+2, see report); {RULE}",
            f"2 models' units not stated, guessed INCHES: a.stl, b.stl; {RULE}",
            "case C-1 is split over 2 builds",
        ]

    def test_a_single_guess_is_said_whole(self) -> None:
        one = _guessed("p0")
        plan = _plan(one, make_model("stated"))
        assert plan_warnings(plan) == [one.units_warning]


class TestNamesWithTerminalEscapes:
    """A model's odd name in a warning is shown escaped, grouped or said whole."""

    def test_grouped_and_whole(self) -> None:
        plan = _plan(_guessed("p\x1b[2J"), _guessed("q\x9b1m"),
                     warnings=("case C-\x1b]0;x\x07 is split over 2 builds",))
        assert plan_warnings(plan) == [
            f"2 models' units not stated, guessed MILLIMETERS: p\\x1b[2J.stl, q\\x9b1m.stl; {RULE}",
            "case C-\\x1b]0;x\\x07 is split over 2 builds",
        ]

    def test_verbose_says_each_warning_whole_and_escaped(self) -> None:
        # `run --verbose` prints every warning ungrouped: its names are shown escaped too.
        p, q = _guessed("p\x1b[2J"), _guessed("q\u202e")
        plan = _plan(p, q, warnings=("case C-\x1b]0;x\x07 is split over 2 builds",))
        assert plan_warnings(plan, whole=True) == [
            f"p\\x1b[2J.stl: units not stated, guessed MILLIMETERS (...); {RULE}",
            f"q\\u202e.stl: units not stated, guessed MILLIMETERS (...); {RULE}",
            "case C-\\x1b]0;x\\x07 is split over 2 builds",
        ]
