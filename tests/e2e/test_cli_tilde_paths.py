"""A ``~name`` path for a user this machine lacks, typed or set anywhere, ends the command with
a clear error (exit 1) naming the path and where it was written, never a traceback or a crash
report. Real command processes, as a user starts them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.run_e2e_support import (
    RUN_TIMEOUT_S,
    environment,
    full_steps,
    write_box,
    write_recipe,
)

NO_USER = "~nosuchuser38"
NO_USER_SAYS = ("no user named 'nosuchuser38' on this machine (write the path in full, or "
                "start it with ~/ for your own home folder)")


def command(home: Path, *argv: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``preform-pipeline ARGV...`` in ``home`` with HOME and the data folder below it."""
    env = {**environment(), "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), **variables}
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", *argv], env=env, cwd=home,
        capture_output=True, text=True, encoding="utf-8", timeout=RUN_TIMEOUT_S, check=False)


def assert_refused(done: subprocess.CompletedProcess[str], line: str) -> None:
    assert "Traceback" not in done.stderr
    assert "unexpected failure" not in done.stderr
    assert done.returncode == 1, done.stderr
    assert line in done.stderr.splitlines(), done.stderr


class TestRefusedWhereWritten:
    """Each place a path is written names itself in the error."""

    def test_settings_option(self, tmp_path: Path) -> None:
        done = command(tmp_path, "validate", "--settings", f"{NO_USER}/s.yaml")
        assert_refused(done, f"error: settings file: '{NO_USER}/s.yaml': {NO_USER_SAYS}")

    def test_settings_variable(self, tmp_path: Path) -> None:
        done = command(tmp_path, "jobs", PREFORM_PIPELINE_SETTINGS=f"{NO_USER}/s.yaml")
        assert_refused(done, "error: environment variable PREFORM_PIPELINE_SETTINGS: "
                             f"'{NO_USER}/s.yaml': {NO_USER_SAYS}")

    def test_store_option(self, tmp_path: Path) -> None:
        done = command(tmp_path, "jobs", "--store", f"{NO_USER}/jobs.db")
        assert_refused(done, f"error: --store: '{NO_USER}/jobs.db': {NO_USER_SAYS}")
        # Its own home is expanded as run's --store always was (jobs took "~" for a folder).
        done = command(tmp_path, "jobs", "--store", "~/jobs.db")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"no jobs (no job store at {tmp_path / 'jobs.db'} yet)\n"

    @pytest.mark.parametrize(("option", "named"), [("--output", "output folder"),
                                                   ("--log-file", "--log-file")])
    def test_run_option(self, tmp_path: Path, option: str, named: str) -> None:
        recipe = write_recipe(tmp_path, full_steps(4))
        write_box(tmp_path / "models" / "a.stl", 10)
        done = command(tmp_path, "run", "--dry-run", option, f"{NO_USER}/x", str(recipe),
                       str(tmp_path / "models" / "a.stl"))
        assert_refused(done, f"error: {named}: '{NO_USER}/x': {NO_USER_SAYS}")
        # Refused before anything was made (a --log-file was a folder named ~nosuchuser38).
        assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "recipe.yaml"]


class TestCrashFolder:
    """A crash folder that cannot be found sends the full message to the default folder."""

    def test_long_message_still_kept(self, tmp_path: Path) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text("".join(f"bogus{i}: 1\n" for i in range(40)), encoding="utf-8")
        done = command(tmp_path, "jobs", "--settings", str(settings),
                       PREFORM_PIPELINE_CRASH_DIR=f"{NO_USER}/c")
        assert "Traceback" not in done.stderr
        assert done.returncode == 1, done.stderr
        lines = done.stderr.splitlines()
        assert lines[0] == (f"warning: environment variable PREFORM_PIPELINE_CRASH_DIR: "
                            f"'{NO_USER}/c': {NO_USER_SAYS}; writing to the default folder "
                            "instead")
        kept = list((tmp_path / "data" / "preform-pipeline" / "crash-reports").iterdir())
        assert len(kept) == 1
        assert lines[-1] == f"(full message in {kept[0]})"
