"""The hot folder's worker under mutation (session 19, group w2, its functions run whole):
a sidecar's print target (what it names, how it is checked, how the recipe is pointed at
it) and how a build's outcome settles its store build and files."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.hotfolder.worker import recipe_printing_to, sidecar_target, target_problem
from preform_pipeline.recipes import load_recipe
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.store import Job, JobState

FLEET = KnownPrinters(
    (
        KnownPrinter("Form4-A", ("FORM-4-0",)),
        KnownPrinter("Form4-B", ("FORM-4-0",)),
        KnownPrinter("Form3-C", ("FORM-3-0",)),
        KnownPrinter("Lab queue"),  # a queue: the server checks its machine type
    ),
    "the test's fleet",
)
UNKNOWN_FORM3CC = "unknown printer 'Form3-CC' (not in the test's fleet); did you mean 'Form3-C'?"
FORM3_MISMATCH = "printer 'Form3-C' is a FORM-3-0, not a FORM-4-0 (the test's fleet)"


def _job(fields: dict[str, Any]) -> Job:
    now = datetime(2026, 12, 4, tzinfo=timezone.utc)
    return Job(id=1, job_key="k1", recipe="hot", source_path=Path("p.stl"),
               original_name="p.stl", state=JobState.PREPARING, created_at=now,
               updated_at=now, fields=fields)


class TestTheSidecarsPrinterField:
    """A sidecar's `printer:` is the case's target, trimmed; empty or absent is the recipe's."""

    @pytest.mark.parametrize(("fields", "expected"), [
        ({}, None),
        ({"printer": None}, None),
        ({"printer": ""}, None),
        ({"printer": "   "}, None),
        ({"printer": "  Form4-A \t"}, "Form4-A"),
        ({"printer": 7}, "7"),
        ({"patient": "Form4-A"}, None),
    ])
    def test_the_target_is_the_trimmed_text_or_none(
        self, fields: dict[str, Any], expected: str | None
    ) -> None:
        assert sidecar_target(_job(fields)) == expected


class TestASidecarTargetChecked:
    """A sidecar target is usable when every named printer is known and of the scene's type."""

    @pytest.mark.parametrize("target", [
        "Form4-A", " Form4-A ", "auto", "AUTO", " Auto ", "Form4-A,Form4-B", "auto,Form4-B",
        "Form4-A,,Form4-B", ",", "Lab queue",
    ])
    def test_known_names_of_the_machine_type_and_auto_are_usable(self, target: str) -> None:
        assert target_problem(target, FLEET, "FORM-4-0") is None

    @pytest.mark.parametrize("target", ["Form3-CC", "Form4-A,Form3-CC", "auto,Form3-CC",
                                        "Form3-CC,Form3-C", ",Form3-CC"])
    def test_the_first_unknown_name_is_the_problem_with_its_suggestion(
        self, target: str
    ) -> None:
        assert target_problem(target, FLEET, "FORM-4-0") == UNKNOWN_FORM3CC

    @pytest.mark.parametrize("target", ["Form3-C", "Form4-A,Form3-C", "auto, Form3-C"])
    def test_a_printer_of_another_machine_type_is_the_problem(self, target: str) -> None:
        assert target_problem(target, FLEET, "FORM-4-0") == FORM3_MISMATCH

    def test_without_the_scenes_machine_type_any_known_printer_is_usable(self) -> None:
        assert target_problem("Form3-C,Form4-A", FLEET, None) is None

    def test_a_name_is_matched_exactly_not_by_case(self) -> None:
        assert target_problem("form3-c", FLEET, "FORM-4-0") == (
            "unknown printer 'form3-c' (not in the test's fleet); did you mean 'Form3-C'?")


class TestTheRecipePointedAtATarget:
    """The recipe's print step sends to the sidecar's target alone; nothing else changes."""

    @pytest.fixture
    def recipe(self, tmp_path: Path) -> Recipe:
        loaded = load_recipe(write_recipe(tmp_path, extra_steps=["estimate"]))
        # A print step naming its target three ways, as a recipe may (one of them, in a
        # valid file): every one of them gives way to the sidecar's.
        steps = tuple(
            replace(s, options={**s.options, "printer_ip": "10.0.0.9",
                                "fleet_group": "Night shift", "job_name": "{stem}"})
            if s.kind == "print" else s
            for s in loaded.steps
        )
        return replace(loaded, steps=steps)

    def test_the_print_step_names_only_the_target_and_keeps_its_other_options(
        self, recipe: Recipe
    ) -> None:
        pointed = recipe_printing_to(recipe, "Form4-B")
        step = pointed.step("print")
        assert step is not None
        before = recipe.step("print")
        assert before is not None
        expected = {k: v for k, v in before.options.items()
                    if k not in ("printer", "printer_ip", "fleet_group")}
        assert dict(step.options) == {**expected, "printer": "Form4-B"}
        assert expected["job_name"] == "{stem}"

    def test_the_other_steps_and_the_recipe_are_unchanged(self, recipe: Recipe) -> None:
        pointed = recipe_printing_to(recipe, "Form4-B")
        assert [s for s in pointed.steps if s.kind != "print"] == [
            s for s in recipe.steps if s.kind != "print"]
        assert [s.kind for s in pointed.steps] == [s.kind for s in recipe.steps]
        assert [s.id for s in pointed.steps] == [s.id for s in recipe.steps]
        assert replace(pointed, steps=recipe.steps) == recipe
        # The recipe given is left as it was (a batch's other targets still use it).
        original = recipe.step("print")
        assert original is not None and original.options["printer_ip"] == "10.0.0.9"
