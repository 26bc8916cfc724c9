"""`validate` on recipes whose ``scene.fps_file`` no file system takes, or names no file
(session 31): a name of 5,000 characters and one holding a NUL ended `validate` with exit 70
("unexpected failure"), and a named pipe was called "file not found". Each is now a problem
at the recipe's line. POSIX only (a named pipe); `validate` is a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES

TIMEOUT_S = 60.0
#: The shipped recipe's scene settings, which an ``fps_file`` replaces.
MANUAL = ("  material_code: FLGPGR05        # Grey V5\n  layer_thickness_mm: 0.1\n"
          "  print_setting: DEFAULT\n")


def recipe_naming(folder: Path, fps: str) -> Path:
    """The shipped engineering recipe with its scene settings from ``fps`` (a YAML scalar)."""
    text = (RECIPES / "engineering-grey-form4.yaml").read_text(encoding="utf-8")
    assert MANUAL in text
    recipe = folder / "recipe.yaml"
    recipe.write_text(text.replace(MANUAL, f"  fps_file: {fps}\n"), encoding="utf-8")
    return recipe


def validate(recipe: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preform_pipeline", "validate", str(recipe)],
                          text=True, capture_output=True, timeout=TIMEOUT_S, check=False)


class TestFpsFilesNoFileSystemHas:
    """Each is one problem at the line of ``fps_file``, saying what is wrong with it."""

    @pytest.mark.parametrize(("fps", "says"), [
        ("x" * 5000 + ".fps", "cannot be read (File name too long): "),
        ('"a\\0b.fps"', "cannot be a file's name (it holds a NUL character): "),
    ], ids=["5000-characters", "NUL"])
    def test_a_name_no_file_system_takes(self, tmp_path: Path, fps: str, says: str) -> None:
        recipe = recipe_naming(tmp_path, fps)
        done = validate(recipe)
        assert done.returncode == 1, done.stderr
        assert "unexpected failure" not in done.stderr
        assert f"{recipe}:8:13: $.scene.fps_file: {says}{tmp_path}/" in done.stdout
        assert "\0" not in done.stdout
        if "NUL" in says:
            assert f"{tmp_path}/a\\0b.fps (a relative path starts" in done.stdout

    def test_a_named_pipe_is_not_called_missing(self, tmp_path: Path) -> None:
        os.mkfifo(tmp_path / "settings.fps")
        recipe = recipe_naming(tmp_path, "settings.fps")
        done = validate(recipe)
        assert done.returncode == 1, done.stderr
        assert (f"{recipe}:8:13: $.scene.fps_file: is not a regular file (a device, pipe or "
                f"socket): {tmp_path / 'settings.fps'}") in done.stdout


class TestAnFpsFileWithoutItsMachine:
    """Session 47 (rv47-lazy): an ``fps_file`` names no machine, and the planner needs one;
    only the planner said so, failing every batch. `validate` says it with the key's line."""

    def test_validate_names_the_missing_machine_type_at_the_line_of_fps_file(
        self, tmp_path: Path
    ) -> None:
        recipe = recipe_naming(tmp_path, "grey.fps")
        text = recipe.read_text(encoding="utf-8")
        recipe.write_text(text.replace("  machine_type: FORM-4-0\n", ""), encoding="utf-8")
        (tmp_path / "grey.fps").write_text("{}", encoding="utf-8")
        done = validate(recipe)
        assert done.returncode == 1, done.stdout
        assert (f"{recipe}:7:3: $.scene.fps_file: scene.machine_type is missing: "
                "the machine an fps_file was made for is not read from it") in done.stdout
        assert "1 problem" in done.stdout

    def test_with_its_machine_type_it_is_valid(self, tmp_path: Path) -> None:
        recipe = recipe_naming(tmp_path, "grey.fps")
        (tmp_path / "grey.fps").write_text("{}", encoding="utf-8")
        done = validate(recipe)
        assert done.returncode == 0, done.stdout
