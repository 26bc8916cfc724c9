"""The run's limits that ``run``'s options default to: a leaf, so that ``run --help``
states them without importing the executor."""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_MAX_BUILD_ATTEMPTS", "DEFAULT_STEP_TIMEOUT_S"]

#: Attempts per build, the first included: two servers failing the same build is bad luck,
#: three is a pattern worth stopping for.
DEFAULT_MAX_BUILD_ATTEMPTS: Final = 3
#: Longest a single step may take before its server counts as hung (the client's own default
#: for asynchronous operations).
DEFAULT_STEP_TIMEOUT_S: Final = 900.0
