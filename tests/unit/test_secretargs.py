"""A secret typed on a command line is refused, naming the option and never repeating the value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from preform_pipeline.secretargs import secret_option_in
from tests.command_line import TIMEOUT_S, InProcess, in_a_process, user_environment

SECRET = "hunter2-s3cr3t-value"


class TestThePipelinesCommandLine:
    """``preform-pipeline`` names the option and where the secret goes instead."""

    def test_a_client_secret_after_verify_is_refused_without_its_value(
        self, tmp_path: Path
    ) -> None:
        done = in_a_process(tmp_path, "verify", "--client-secret", SECRET)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith(
            "error: --client-secret: a secret is never taken on the command line")
        assert "$PREFORM_PIPELINE_CLIENT_SECRET_FILE" in done.stderr

    def test_any_spelling_with_its_value_joined_is_refused(
        self, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        typed = InProcess(capfd, monkeypatch)
        done = typed(tmp_path, "run", "r.yaml", "m.stl", f"--Client_Secret={SECRET}")

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith("error: --client-secret: ")


class TestTheDashboardSimulatorsCommandLine:
    """The simulator took ``--client-secret`` for ``--client-secret-file`` (argparse matches
    prefixes) and named the secret as a file it could not read."""

    def test_a_client_secret_is_refused_before_anything_starts(self, tmp_path: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "preform_pipeline.simulator.cloud", "--port", "0",
             "--fleet-dir", str(tmp_path / "fleet"), "--client-secret", SECRET],
            cwd=tmp_path, env=user_environment(), capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stdout == ""  # no start-up line: nothing was served
        assert done.stderr.startswith("error: --client-secret: a secret is never taken")
        assert "--client-secret-file FILE" in done.stderr
        assert not (tmp_path / "fleet").exists()


class TestWhatCountsAsASecretOption:
    @pytest.mark.parametrize("argv", [
        ["--password", "x"], ["--token=x"], ["serve", "s.yaml", "--API_KEY", "x"],
    ])
    def test_options_that_give_a_secret(self, argv: list[str]) -> None:
        assert secret_option_in(argv) is not None

    @pytest.mark.parametrize("argv", [
        ["serve", "--hash-secret"], ["--client-secret-file", "f"], ["run", "r", "--", "--token"],
    ])
    def test_other_options_and_names_after_a_double_dash(self, argv: list[str]) -> None:
        assert secret_option_in(argv) is None
