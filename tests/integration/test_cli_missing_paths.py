"""A path typed wrong on the command line: the error says it is not there, and what helps.

As a user types it, with no settings in the environment unless a test puts them there: a
real subprocess of the command line for ``run``'s refusal of a missing settings file, the
command line in the test's process for the others, which are refused before anything
starts (``tests/command_line.py``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.command_line import InProcess
from tests.command_line import in_a_process as _cli

SETTINGS_ENV = "PREFORM_PIPELINE_SETTINGS"


class TestMissingSettingsFile:
    """A settings file named on the command line that is not there: check the path."""

    # ``run``'s in a real process (one command line a test: a loaded machine stretches one
    # start to a minute, session 30); the others' are the same path, in the test's process.
    @pytest.mark.parametrize("command", ["run", "watch", "jobs"])
    def test_each_command_names_the_file_and_says_to_check_the_path(
        self, tmp_path: Path, in_process: InProcess, repo_root: Path, command: str
    ) -> None:
        recipe = str(repo_root / "recipes" / "engineering-grey-form4.yaml")
        model = str(repo_root / "sample_models" / "parts" / "gear.obj")
        argv = {"run": ("run", recipe, model, "--dry-run", "--settings", "setings.yaml"),
                "watch": ("watch", "setings.yaml", "--once"),
                "jobs": ("jobs", "--settings", "setings.yaml")}[command]
        done = (_cli if command == "run" else in_process)(tmp_path, *argv)
        assert done.returncode == 1, done.stderr
        assert done.stderr == (f"error: {tmp_path / 'setings.yaml'}: settings file not found"
                               " (check the path; a relative one starts in the current "
                               "folder)\n")
        assert SETTINGS_ENV not in done.stderr

    def test_a_file_named_by_the_variable_says_how_to_run_without_it(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        done = in_process(tmp_path, "jobs", env_extra={SETTINGS_ENV: "gone.yaml"})
        assert done.returncode == 1
        assert f"create it, or unset {SETTINGS_ENV} to run with defaults" in done.stderr


class TestMissingModelPath:
    """A model folder or file that is not there is rejected as not found, never as a type."""

    def test_a_mistyped_folder_is_not_found(
        self, tmp_path: Path, in_process: InProcess, repo_root: Path
    ) -> None:
        recipe = str(repo_root / "recipes" / "engineering-grey-form4.yaml")
        for argv in (("plan", recipe, "inbxo"),
                     ("run", recipe, "inbxo", "--dry-run", "--output", str(tmp_path / "out"))):
            done = in_process(tmp_path, *argv)
            assert done.returncode == 1, done.stderr
            shown = done.stdout + done.stderr
            assert "inbxo: file not found (check the path)" in shown, (argv, shown)
            assert "unsupported model file type" not in shown


class TestAnUnusableLogFolder:
    """A log file whose folder cannot be made stops the command with what to fix, no crash."""

    def test_run_and_watch_name_the_folder_and_the_setting(
        self, tmp_path: Path, in_process: InProcess, repo_root: Path
    ) -> None:
        blocker = tmp_path / "logs"
        blocker.write_text("a file where the log folder should be\n", encoding="utf-8")
        said = f"error: log file's folder {blocker}: is a file, not a folder"
        # Each names what was given: watch has no --log-file (session 43, loose ends).
        expected = f"{said} (fix --log-file (or the folder itself))\n"
        recipe = str(repo_root / "recipes" / "engineering-grey-form4.yaml")
        model = str(repo_root / "sample_models" / "parts" / "gear.obj")
        ran = in_process(tmp_path, "run", recipe, model, "--dry-run", "--output",
                         str(tmp_path / "out"), "--log-file", str(blocker / "run.jsonl"))
        assert (ran.returncode, ran.stderr) == (1, expected)

        settings = tmp_path / "settings.yaml"
        settings.write_text(f"store: {{path: '{tmp_path / 'jobs.sqlite3'}'}}\n"
                            f"logging: {{file: '{blocker / 'watch.jsonl'}'}}\n"
                            f"hotfolders: {{inboxes: [{{path: inbox, recipe: '{recipe}'}}]}}\n",
                            encoding="utf-8")
        watched = in_process(tmp_path, "watch", str(settings), "--once")
        assert (watched.returncode, watched.stderr) == (
            1, f"{said} (fix logging.file in the settings (or the folder itself))\n")


class TestAnUnusableOutputFolder:
    """An output folder that cannot be made: the error names where it was chosen (session 30:
    `--output` and the recipe's folder were both sent to "the path in the settings")."""

    @pytest.mark.parametrize("source", ["--output", "recipe", "settings"])
    def test_each_source_of_the_folder_is_named(
        self, in_process: InProcess, repo_root: Path, source: str
    ) -> None:
        # A short folder: a message line over 300 characters is cut in the middle, and an
        # xdist worker's tmp_path is long enough for that.
        with tempfile.TemporaryDirectory(prefix="pp-out-") as short:
            self._check(in_process, Path(short), repo_root, source)

    def _check(self, in_process: InProcess, tmp_path: Path, repo_root: Path, source: str,
               ) -> None:
        blocker = tmp_path / "taken"
        blocker.write_text("a file where the output folder should be\n", encoding="utf-8")
        recipe = tmp_path / "grey.yaml"
        shipped = (repo_root / "recipes" / "engineering-grey-form4.yaml").read_text("utf-8")
        recipe.write_text(shipped.replace("root: output/{recipe}", "root: taken/out"), "utf-8")
        assert "root: taken/out" in recipe.read_text("utf-8")
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"output_root: '{blocker / 'farm'}'\n", encoding="utf-8")
        model = str(repo_root / "sample_models" / "parts" / "gear.obj")
        extra, folder, hint = {
            "--output": (("--output", str(blocker / "out")), blocker / "out",
                         "choose another --output (or fix the folder itself)"),
            "recipe": ((), blocker / "out",
                       "fix outputs.root in the recipe, or give --output (or fix the folder "
                       "itself)"),
            "settings": (("--settings", str(settings)), blocker / "farm",
                         "fix output_root in the settings, or give --output (or fix the "
                         "folder itself)"),
        }[source]
        done = in_process(tmp_path, "run", str(recipe), model, "--dry-run", *extra)
        assert (done.returncode, done.stderr) == (
            1, f"error: output folder {folder}: cannot be created: {blocker} is a file, "
               f"not a folder ({hint})\n")
        assert "Traceback" not in done.stdout + done.stderr
