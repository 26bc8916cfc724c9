"""Semantic checks the user reads, at edges the first tables did not reach: every print step
checked even when one is one too many, templated printer addresses, the smallest drain hole."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.recipes.recipe_cases import validate_text
from tests.unit.recipes.test_recipe_semantic import sla, sls

#: Recipes that break rules; every problem is listed, in order, as ``validate`` prints it.
BROKEN: dict[str, tuple[str, list[str]]] = {
    "a bad printer address on a second print step": (
        sla("  - print: {printer: Form4-Lab}\n  - print: {printer_ip: 'Form4-Clam'}\n"),
        [
            "recipe.yaml:7:5: $.steps[1].print: only one print step is allowed per recipe",
            "recipe.yaml:7:25: $.steps[1].print.printer_ip: 'Form4-Clam' is not an IP address "
            "(give a printer serial name as printer:)",
        ],
    ),
    "printer auto without a material on a second print step": (
        "scene:\n  fps_file: grey.fps\nsteps:\n"
        "  - print: {printer: Form4-Lab}\n  - print: {printer: auto}\n",
        [
            "recipe.yaml:5:5: $.steps[1].print: only one print step is allowed per recipe",
            "recipe.yaml:5:22: $.steps[1].print.printer: printer: auto chooses a printer by the "
            "scene's machine_type and material_code; name both in scene (an fps_file does not "
            "say which material is loaded)",
        ],
    ),
    "printer auto with the machine of an .fps scene but no material": (
        "scene:\n  fps_file: grey.fps\n  machine_type: FORM-4-0\nsteps:\n"
        "  - print: {printer: auto}\n",
        [
            "recipe.yaml:5:22: $.steps[0].print.printer: printer: auto chooses a printer by the "
            "scene's machine_type and material_code; name both in scene (an fps_file does not "
            "say which material is loaded)",
        ],
    ),
    "a misspelt model field in a printer with one model per build": (
        sla("  - print: {printer: '{cas_id}'}\n", "batching:\n  max_models_per_build: 1\n"),
        [
            "recipe.yaml:6:22: $.steps[0].print.printer: unknown template field {cas_id}; "
            "declare other sidecar fields in `fields:` (did you mean 'case_id'?)",
        ],
    ),
    "a model field in the screenshot path": (
        sla("  - screenshot\n", "outputs:\n  screenshot: 'shots/{stem}.png'\n"),
        [
            "recipe.yaml:8:15: $.outputs.screenshot: field {stem} belongs to one model and "
            "cannot be filled here: it is rendered once per build, which may hold several "
            "models (set batching.max_models_per_build: 1 to use model fields)",
        ],
    ),
    "a model field in a per-build printer name": (
        sla("  - print: {printer: 'Form4-{stem}'}\n"),
        [
            "recipe.yaml:6:22: $.steps[0].print.printer: field {stem} belongs to one model and "
            "cannot be filled here: it is rendered once per build, which may hold several "
            "models (set batching.max_models_per_build: 1 to use model fields)",
        ],
    ),
    "a model field in a per-build fleet group": (
        sla("  - print: {fleet_group: 'lab-{stem}'}\n"),
        [
            "recipe.yaml:6:26: $.steps[0].print.fleet_group: field {stem} belongs to one model "
            "and cannot be filled here: it is rendered once per build, which may hold several "
            "models (set batching.max_models_per_build: 1 to use model fields)",
        ],
    ),
}

#: Recipes just inside a rule.
ACCEPTED: dict[str, str] = {
    "a printer address filled from a sidecar field": sla(
        "  - print: {printer_ip: '{printer_address}'}\n",
        "fields: [printer_address]\nbatching:\n  max_models_per_build: 1\n",
    ),
    # A cage label is text on the cage, not a file name: a colon is fine there.
    "a cage label with a colon": sls("  - pack_and_cage: {cage_label: 'Cage: {date}'}\n"),
    "a drain hole 1 mm wide": sla(
        "  - hollow\n  - add_drain_holes: {diameter_mm: 1, placement: {face: back}}\n"),
    "a drain hole a tenth of a millimetre wide": sla(
        "  - hollow\n  - add_drain_holes: {diameter_mm: 0.1, placement: {face: back}}\n"),
}


class TestEveryProblemIsListed:
    """A recipe that breaks several rules gets every problem, not only the first."""

    @pytest.mark.parametrize("name", sorted(BROKEN))
    def test_problems(self, tmp_path: Path, name: str) -> None:
        text, expected = BROKEN[name]
        report = validate_text(tmp_path, text)
        assert [str(p) for p in report.problems] == expected
        assert not report.valid


class TestJustInside:
    """Recipes at the edge of a rule, on its allowed side, are valid."""

    @pytest.mark.parametrize("name", sorted(ACCEPTED))
    def test_valid(self, tmp_path: Path, name: str) -> None:
        report = validate_text(tmp_path, ACCEPTED[name])
        assert report.problems == (), "\n".join(str(p) for p in report.problems)
        assert report.valid
