"""Fixtures of the command tests: the command line in the test's process."""

from __future__ import annotations

from tests.command_line import in_process

__all__ = ["in_process"]
