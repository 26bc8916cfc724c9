"""Fixtures shared by the print owner's tests: a manual clock, a real SQLite store on it, and
an empty simulated fleet folder."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__: list[str] = []


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"
