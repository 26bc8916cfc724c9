"""Fixtures for the executor's unit tests: in-process simulators and sample parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from executor_support import SimFarm

from preform_pipeline.plan.builds import ModelInfo
from preform_pipeline.store import SqliteJobStore


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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    """A job store in a real SQLite file, closed after the test."""
    with SqliteJobStore(tmp_path / "jobs.db") as opened:
        yield opened


@pytest.fixture
def models(tmp_path: Path) -> list[ModelInfo]:
    """Four small model files, measured as 10 mm cubes (the ledger reads names and hashes)."""
    folder = tmp_path / "models"
    folder.mkdir()
    found = []
    for index in range(4):
        path = folder / f"m{index}.stl"
        path.write_bytes(f"solid m{index}\nendsolid\n".encode())
        found.append(ModelInfo(path=path, name=path.stem, size_mm=(10, 10, 10),
                               footprint_mm=(10, 10), volume_mm3=1000.0,
                               support_estimate_mm3=0.0, triangle_count=12))
    return found
