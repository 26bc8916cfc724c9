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
        "scene:\n  fps_file: grey.fps\n  machine_type: FORM-4-0\nsteps:\n"
        "  - print: {printer: Form4-Lab}\n  - print: {printer: auto}\n",
        [
            "recipe.yaml:6:5: $.steps[1].print: only one print step is allowed per recipe",
            "recipe.yaml:6:22: $.steps[1].print.printer: printer: auto chooses a printer by the "
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
    "a support finding on the second validate step of an SLS recipe": (
        sls("  - auto_pack\n  - validate\n  - validate: {fail_on: [cups]}\n"),
        [
            "recipe.yaml:8:26: $.steps[2].validate.fail_on[0]: 'cups' concerns supports, which "
            "SLS parts do not have",
        ],
    ),
    "approval on a second print step sent to an address": (
        sla("  - print: {printer: Form4-Lab}\n  - save_form\n  - screenshot\n"
            "  - print: {printer_ip: 10.0.0.7, approval: required}\n"),
        [
            "recipe.yaml:9:5: $.steps[3].print: only one print step is allowed per recipe",
            "recipe.yaml:9:45: $.steps[3].print.approval: approval: required needs printer: (a "
            "name, a list or auto); an approved build waits for that printer like any other",
        ],
    ),
    "a model field in a per-build printer address": (
        sla("  - print: {printer_ip: '{stem}'}\n"),
        [
            "recipe.yaml:6:25: $.steps[0].print.printer_ip: field {stem} belongs to one model "
            "and cannot be filled here: it is rendered once per build, which may hold several "
            "models (set batching.max_models_per_build: 1 to use model fields)",
        ],
    ),
    "a Windows pattern after an entry without a pattern": (
        sla("  - save_form\n", "import:\n  units_by_path:\n    - {units: INCHES}\n"
            "    - {match: 'inch\\*.stl', units: INCHES}\n"),
        [
            "recipe.yaml:9:7: $.import.units_by_path[0].match: missing required key 'match'",
            "recipe.yaml:10:15: $.import.units_by_path[1].match: pattern 'inch\\\\*.stl' uses "
            "\\; separate folders with / (did you mean 'inch/*.stl'?)",
        ],
    ),
}

#: Recipes just inside a rule.
ACCEPTED: dict[str, str] = {
    "a printer address filled from a sidecar field": sla(
        "  - print: {printer_ip: '{printer_address}'}\n",
        "fields: [printer_address]\nbatching:\n  max_models_per_build: 1\n",
    ),
    # The output root may be absolute; only the paths below it must be relative.
    "an absolute output root": sla(
        "  - auto_orient\n", "outputs:\n  root: '/srv/prints/{date}'\n"),
    # Label and cage texts are printed, not file names: a colon is fine there.
    "a label text with a colon": sla(
        "  - label: {text: 'Case: {stem}', font_size_mm: 4, depth_mm: 1,"
        " placement: {face: back}}\n"),
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
