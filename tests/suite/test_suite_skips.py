"""The suite's own rules on skips, checked by running pytest on a tiny test folder.

The subprocess cases start a real ``python -m pytest`` with this suite's conftest loaded as a
plugin, over a two-test folder written into tmp_path, with the spec folder pointed somewhere
empty; each runs serially and on two pytest-xdist workers (as the suite itself runs), where
the skips and failures are the workers' and the summary and exit status the controller's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.nested_pytest import nested_pytest
from tests.openapi_contract import REQUIRE_SPECS_ENV, SPEC_DIR_ENV, specs_required

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120

CONTRACT_TEST = '''
from tests.openapi_contract import local_api_contract


def test_the_simulator_conforms():
    assert local_api_contract().operation("/", "get")


def test_something_else():
    assert True
'''

UNREGISTERED_SKIP = '''
import pytest


def test_skipped_for_no_good_reason():
    pytest.skip("flaky on my machine")


def test_something_else():
    assert True
'''


#: How the subprocess runs: serially, or on two xdist workers.
PARALLELISM = {"serial": ("-n", "0"), "two-workers": ("-n", "2")}


@pytest.fixture(params=sorted(PARALLELISM))
def workers(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The pytest options of one way to run: serially or on two xdist workers."""
    return PARALLELISM[request.param]


def run_pytest(
    folder: Path, source: str, workers: tuple[str, ...], **env: str
) -> subprocess.CompletedProcess[str]:
    (folder / "test_tiny.py").write_text(source, encoding="utf-8")
    environment = {
        k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PREFORM_PIPELINE_")
    }
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment[SPEC_DIR_ENV] = str(folder / "no-specs-here")
    environment.update(env)
    result = subprocess.run(
        nested_pytest(*workers, "test_tiny.py"),
        cwd=folder, env=environment, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        check=False,
    )
    # The tests ran where asked: xdist says so when it starts workers.
    assert ("bringing up nodes" in result.stdout) == (workers != ("-n", "0")), result.stdout
    return result


class TestMissingSpecs:
    """A missing spec folder is an error naming it in CI; locally, one summary line says so."""

    def test_required_specs_that_are_missing_fail_the_run_naming_the_folder(
        self, tmp_path: Path, workers: tuple[str, ...]
    ) -> None:
        result = run_pytest(tmp_path, CONTRACT_TEST, workers, **{REQUIRE_SPECS_ENV: "1"})
        assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
        folder = str((tmp_path / "no-specs-here").resolve())
        assert f"missing from the spec folder {folder}" in result.stdout
        assert "1 failed, 1 passed" in result.stdout

    def test_locally_the_contract_tests_skip_with_one_summary_line(
        self, tmp_path: Path, workers: tuple[str, ...]
    ) -> None:
        result = run_pytest(tmp_path, CONTRACT_TEST, workers)
        assert result.returncode == pytest.ExitCode.OK, result.stdout
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith("contract tests skipped")]
        folder = str((tmp_path / "no-specs-here").resolve())
        assert lines == [
            f"contract tests skipped (1): no official specs in {folder}; set {SPEC_DIR_ENV}, "
            f"or {REQUIRE_SPECS_ENV}=1 to make this an error"
        ]

    @pytest.mark.parametrize(
        ("env", "required"),
        [
            ({"CI": "true"}, True),
            ({"CI": "1"}, True),
            ({REQUIRE_SPECS_ENV: "1"}, True),
            ({REQUIRE_SPECS_ENV: "yes", "CI": "false"}, True),
            ({REQUIRE_SPECS_ENV: "0", "CI": "false"}, False),
            ({"CI": ""}, False),
            ({}, False),
        ],
    )
    def test_ci_or_the_variable_make_the_specs_required(
        self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], required: bool
    ) -> None:
        for name in ("CI", REQUIRE_SPECS_ENV):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert specs_required() is required


class TestSkipRegistry:
    """A skip whose reason is not registered fails the run and is listed with its reason."""

    def test_an_unregistered_skip_fails_the_run(
        self, tmp_path: Path, workers: tuple[str, ...]
    ) -> None:
        result = run_pytest(tmp_path, UNREGISTERED_SKIP, workers)
        assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
        assert "unregistered skip (1): flaky on my machine" in result.stdout
        assert "1 passed, 1 skipped" in result.stdout
