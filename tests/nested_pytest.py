"""How the suite's own tests (``tests/suite/``) start a nested ``python -m pytest``.

A nested run loads this suite's conftest as a plugin, keeps no cache in the tiny folder it
runs in, and leaves out the installed plugins that no nested run's tests use: hypothesis's
(so the conftest does not import hypothesis for its profiles) and anyio's. Each of those was
paid by every nested process, twice more on two xdist workers: together ~0.9 of a nested
run's ~1.5 s of CPU a process (docs/testing.md, session 36 "nested runs").
"""

from __future__ import annotations

import sys
from typing import Final

__all__ = ["HYPOTHESIS_PLUGIN", "nested_pytest"]

#: The name of hypothesis's pytest plugin (its entry point), as ``-p no:`` blocks it.
HYPOTHESIS_PLUGIN: Final = "hypothesispytest"

_OPTIONS: Final = (
    "-q",
    "-p", "no:cacheprovider",
    "-p", "tests.conftest",
    "-p", f"no:{HYPOTHESIS_PLUGIN}",
    "-p", "no:anyio",
)


def nested_pytest(*arguments: str) -> list[str]:
    """The argv of a nested pytest run with ``arguments`` (options, then test files)."""
    return [sys.executable, "-m", "pytest", *_OPTIONS, *arguments]
