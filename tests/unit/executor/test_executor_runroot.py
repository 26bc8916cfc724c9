"""A run's output folder as its recipe's ``outputs.root`` names it, with the run's fields
(executor/runroot.py), and an output folder given as ``~user`` said as the output folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.executor.runroot import output_root
from preform_pipeline.recipes.model import Recipe
from tests.unit.recipes.recipe_cases import validate_text

STARTED = datetime(2026, 3, 4, 5, 6, 7)
FIELDS_ROOT = "out/{recipe}/{date}_{time}/{machine}_{material}"
FORM_4 = "  machine_type: FORM-4-0\n  material_code: FLGPGR05\n  layer_thickness_mm: 0.1\n"


def _recipe(folder: Path, scene: str) -> Recipe:
    report = validate_text(folder, f"scene:\n{scene}steps:\n  - auto_layout\n"
                           f"outputs:\n  root: {FIELDS_ROOT}\n", name="lab.yaml")
    assert report.recipe is not None, report.problems
    return report.recipe


class TestTheRecipesRootWithTheRunsFields:
    """Each field the root names is the run's: its recipe, start and scene."""

    def test_every_field_is_filled_in(self, tmp_path: Path) -> None:
        recipe = _recipe(tmp_path, FORM_4)
        assert output_root(recipe, None, STARTED) == (
            tmp_path / "out" / "lab" / "2026-03-04_050607" / "FORM-4-0_FLGPGR05").resolve()

    def test_an_fps_scene_without_a_material_code_names_none(self, tmp_path: Path) -> None:
        # The .fps file holds the material; the recipe need not name it.
        recipe = _recipe(tmp_path, "  fps_file: grey.fps\n  machine_type: FORM-4-0\n")
        assert output_root(recipe, None, STARTED) == (
            tmp_path / "out" / "lab" / "2026-03-04_050607" / "FORM-4-0_").resolve()


def test_an_output_folder_of_a_user_this_machine_lacks_is_said_as_the_output_folder(
    tmp_path: Path,
) -> None:
    recipe = _recipe(tmp_path, FORM_4)
    with pytest.raises(ConfigError) as caught:
        output_root(recipe, Path("~no-such-user-s48/out"), STARTED)
    assert caught.value.source == "output folder"
    assert "no user named 'no-such-user-s48'" in caught.value.message
