"""Fixtures shared by the print owner's tests: a manual clock, a real SQLite store on it, and
an empty simulated fleet folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import SqliteJobStore

__all__: list[str] = []


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / "jobs.db", clock=clock) as opened:
        yield opened


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"
