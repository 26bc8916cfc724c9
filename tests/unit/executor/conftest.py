"""Fixtures for the executor's unit tests: in-process simulators and sample parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from executor_support import SimFarm


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[SimFarm]:
    """In-process simulators (add them with ``farm.add()``), shut down after the test."""
    simulators = SimFarm(tmp_path / "sim")
    yield simulators
    simulators.close()


@pytest.fixture
def parts(sample_models_dir: Path) -> list[Path]:
    """The 24 small batch parts, in name order."""
    return sorted((sample_models_dir / "batch").glob("part_*.stl"))
