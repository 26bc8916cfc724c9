"""The command line as a user types it: in a process of its own, or in the test's process.

Both return what :func:`subprocess.run` returns (status, stdout, stderr as text), so a test
states the same checks either way, with no settings from the environment
(``PREFORM_PIPELINE_*`` left out) and the test's own data folder (``own_data_folder``).

Each process start imports most of the package: about a second of CPU, which a loaded
2-core machine stretches to a minute. A test of what a command says or how it exits, where
the command stops before it starts servers, daemons, signal handlers or locks, runs it
:class:`InProcess`: the same parse, dispatch and one top-level handler
(:func:`preform_pipeline.cli.run`), whose streams are the test's standard streams, captured
at their file descriptors, so a line written anywhere in the process (a log handler, a
warning printed by a library) is seen as it would be on a terminal. What only a process has
(``python -m`` start-up, the exit status set by ``sys.exit``, signals, locks, children) keeps
at least one real-process test per command (:func:`in_a_process`).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.instances import OWN_PREFIX, child_environment

__all__ = ["TIMEOUT_S", "InProcess", "in_a_process", "in_process", "user_environment"]

#: Upper bound of one command line's process; reached only when something is broken.
TIMEOUT_S = 120.0


def user_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the pipeline's settings, plus ``extra``; the
    package importable from the worktree."""
    return {**child_environment(), **(extra or {})}


def in_a_process(cwd: Path, *argv: str, env_extra: dict[str, str] | None = None,
                 timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``python -m preform_pipeline ARGV`` in ``cwd``, to its end."""
    return subprocess.run([sys.executable, "-m", "preform_pipeline", *argv], cwd=cwd,
                          env=user_environment(env_extra), capture_output=True, text=True,
                          timeout=timeout, check=False)


class InProcess:
    """Runs one command line in the test's process, as :func:`in_a_process` would."""

    def __init__(self, capfd: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self._capfd = capfd
        self._monkeypatch = monkeypatch

    def __call__(self, cwd: Path, *argv: str, env_extra: dict[str, str] | None = None,
                 ) -> subprocess.CompletedProcess[str]:
        # Imported here: the conftest that makes this fixture is loaded before any test, and
        # the package is not imported before a test asks for it.
        from preform_pipeline import cli
        from preform_pipeline.logging import configure_logging

        with self._monkeypatch.context() as patch:
            patch.chdir(cwd)
            for name in [k for k in os.environ if k.startswith(OWN_PREFIX)]:
                patch.delenv(name)
            for name, value in (env_extra or {}).items():
                patch.setenv(name, value)
            self._capfd.readouterr()  # what the test printed before is not the command's
            try:
                status = cli.run(list(argv), sys.stdout, sys.stderr)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                # The command pointed the package's logging at these streams (and its log
                # file): they close with the test; later tests log nowhere until they set it.
                configure_logging(level="WARNING", console=io.StringIO())
                logging.getLogger("preform_pipeline").handlers.clear()
            out, err = self._capfd.readouterr()
        return subprocess.CompletedProcess(["preform-pipeline", *argv], status, out, err)


@pytest.fixture
def in_process(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """The command line run in the test's process (the module's docstring says when)."""
    return InProcess(capfd, monkeypatch)
