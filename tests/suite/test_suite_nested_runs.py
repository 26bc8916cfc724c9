"""The suite's nested pytest runs import only what their tests use; the suite keeps the rest.

A nested run (``tests/suite/``) starts a real ``python -m pytest`` with this suite's conftest
as a plugin (:func:`tests.nested_pytest.nested_pytest`); hypothesis and anyio were most of
its start, the contracts' validator and the job store's settings most of the rest. The
suite's own run still registers its hypothesis profiles before hypothesis's plugin reads
``--hypothesis-profile``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.nested_pytest import nested_pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120

#: Passes only where none of these was imported, by the conftest or a plugin: the two
#: plugins' libraries, the contracts' validator and the job store (only some tests use them).
NOTHING_UNUSED = '''
import sys

UNUSED = ("hypothesis", "anyio", "openapi_schema_validator", "preform_pipeline.store")


def test_nothing_unused_was_imported():
    assert sorted(name for name in UNUSED if name in sys.modules) == []
'''

#: Passes only where the conftest registered its profiles before hypothesis's plugin loaded
#: the one the command line names.
PROFILE_ASKED_FOR = '''
from hypothesis import settings


def test_the_profile_asked_for_is_loaded():
    assert settings.get_current_profile_name() == "mutation"
'''


def run_pytest(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PREFORM_PIPELINE_")
    }
    environment["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        argv, cwd=folder, env=environment, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, check=False,
    )


class TestANestedRun:
    """It imports nothing its tests do not use (hypothesis, anyio, ...), and they run."""

    def test_what_its_tests_do_not_use_is_not_imported(self, tmp_path: Path) -> None:
        (tmp_path / "test_tiny.py").write_text(NOTHING_UNUSED, encoding="utf-8")
        result = run_pytest(tmp_path, nested_pytest("-n", "0", "test_tiny.py"))
        assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
        assert "1 passed" in result.stdout, result.stdout


class TestTheSuitesRun:
    """Its hypothesis profiles are registered as before, in time for the command line's."""

    def test_the_profiles_are_registered(self) -> None:
        # This very run is one: the conftest registered them when it was configured.
        assert settings.get_profile("ci").derandomize
        assert settings.get_profile("ci").database is None
        mutation = settings.get_profile("mutation")
        assert mutation.derandomize
        assert HealthCheck.differing_executors in mutation.suppress_health_check

    def test_a_profile_named_on_the_command_line_is_found(self, tmp_path: Path) -> None:
        (tmp_path / "test_tiny.py").write_text(PROFILE_ASKED_FOR, encoding="utf-8")
        # The conftest as a plugin is registered before hypothesis's, the order in which its
        # configure hook would run last but for ``tryfirst``.
        result = run_pytest(tmp_path, [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
            "-n", "0", "--hypothesis-profile=mutation", "test_tiny.py",
        ])
        assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
        assert "1 passed" in result.stdout, result.stdout
