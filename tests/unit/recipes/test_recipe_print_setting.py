"""The layer check reads the recipe's print setting: a thickness is offered per setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue, MaterialSetting
from preform_pipeline.recipes.validate import ValidationReport, validate_recipe

MATERIAL = "FLGPGR05"
THICKNESS_PATH = "$.scene.layer_thickness_mm"


def _catalogue() -> Catalogue:
    """The shipped catalogue, with Grey V5 on Form 4 offering 0.05 mm only as FAST, 0.1 mm
    and adaptive layers only as DEFAULT (as a server's /list-materials/ answer may)."""
    machines = []
    for machine in DEFAULT_CATALOGUE.machines:
        if "FORM-4-0" in machine.type_ids:
            materials = tuple(
                dataclasses.replace(m, settings=(
                    MaterialSetting("0.1 mm", 0.1, "DEFAULT"),
                    MaterialSetting("0.05 mm fast", 0.05, "FAST"),
                    MaterialSetting("Adaptive", "ADAPTIVE", "DEFAULT"),
                )) if m.code == MATERIAL else m
                for m in machine.materials
            )
            machine = dataclasses.replace(machine, materials=materials)
        machines.append(machine)
    return Catalogue(machines=tuple(machines), source="server http://127.0.0.1:1")


def _validate(tmp_path: Path, thickness: str, setting: str | None) -> ValidationReport:
    line = f"  print_setting: {setting}\n" if setting is not None else ""
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "scene:\n  machine_type: FORM-4-0\n"
        f"  material_code: {MATERIAL}\n  layer_thickness_mm: {thickness}\n{line}"
        "steps:\n  - auto_orient\n",
        encoding="utf-8",
    )
    return validate_recipe(path, catalogue=_catalogue())


def _thickness_problems(report: ValidationReport) -> list[str]:
    return [p.message for p in report.problems if p.json_path == THICKNESS_PATH]


class TestPrintSetting:
    """A thickness offered only with another print setting is reported, naming the setting."""

    def test_a_thickness_offered_only_by_another_setting_is_refused(
        self, tmp_path: Path
    ) -> None:
        report = _validate(tmp_path, "0.05", "DEFAULT")
        [message] = _thickness_problems(report)
        assert "does not offer 0.05 mm with print setting DEFAULT" in message
        assert "in the server http://127.0.0.1:1" in message

    def test_without_a_print_setting_the_default_setting_is_checked(
        self, tmp_path: Path
    ) -> None:
        [message] = _thickness_problems(_validate(tmp_path, "0.05", None))
        assert "with print setting DEFAULT" in message

    def test_the_setting_that_offers_the_thickness_is_accepted(self, tmp_path: Path) -> None:
        report = _validate(tmp_path, "0.05", "FAST")
        assert report.valid, [str(p) for p in report.problems]

    def test_the_default_thickness_is_refused_with_the_fast_setting(
        self, tmp_path: Path
    ) -> None:
        [message] = _thickness_problems(_validate(tmp_path, "0.1", "FAST"))
        assert "does not offer 0.1 mm with print setting FAST" in message

    def test_the_default_thickness_with_the_default_setting_is_accepted(
        self, tmp_path: Path
    ) -> None:
        assert _validate(tmp_path, "0.1", "DEFAULT").valid


class TestLayerCheckDetails:
    """The problem lists what is offered; adaptive layers and rounding are judged right."""

    def test_the_problem_names_the_material_machine_setting_source_and_offer(
        self, tmp_path: Path
    ) -> None:
        [message] = _thickness_problems(_validate(tmp_path, "0.05", "DEFAULT"))
        assert message == (
            "Grey V5 (FLGPGR05) on Form 4 does not offer 0.05 mm with print setting DEFAULT "
            "in the server http://127.0.0.1:1; offered: 0.1 mm, 0.05 mm, ADAPTIVE"
        )

    def test_adaptive_layers_follow_the_setting_too(self, tmp_path: Path) -> None:
        assert _validate(tmp_path, "ADAPTIVE", "DEFAULT").valid
        [message] = _thickness_problems(_validate(tmp_path, "ADAPTIVE", "FAST"))
        assert "does not offer ADAPTIVE with print setting FAST" in message

    def test_a_thickness_within_rounding_of_an_offered_one_is_accepted(
        self, tmp_path: Path
    ) -> None:
        assert _validate(tmp_path, "0.0500004", "FAST").valid
        [message] = _thickness_problems(_validate(tmp_path, "0.050002", "FAST"))
        assert "does not offer 0.050002 mm" in message

    def test_a_thickness_that_is_not_a_number_is_left_to_the_schema(
        self, tmp_path: Path
    ) -> None:
        for value in ("thick", "true"):
            messages = _thickness_problems(_validate(tmp_path, value, "DEFAULT"))
            assert not any("does not offer" in m for m in messages), messages

    def test_an_unknown_machine_lists_the_known_ones(self, tmp_path: Path) -> None:
        path = tmp_path / "recipe.yaml"
        path.write_text(
            "scene:\n  machine_type: FORM-4-9\n  material_code: FLGPGR05\n"
            "  layer_thickness_mm: 0.1\nsteps:\n  - auto_orient\n",
            encoding="utf-8",
        )
        report = validate_recipe(path, catalogue=_catalogue())
        [problem] = [p for p in report.problems if p.json_path == "$.scene.machine_type"]
        known = problem.message.split("; known: ", 1)[1].split(", ")
        assert "FORM-4-0" in known and "FORM-4L-0" in known
        assert problem.message.startswith(
            "unknown machine type 'FORM-4-9' (checked against the server http://127.0.0.1:1)"
        )
