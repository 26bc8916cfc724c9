"""Fixtures for the hot folder's unit tests: a real SQLite store and an inbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import SqliteJobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as opened:
        yield opened


@pytest.fixture
def inbox(tmp_path: Path) -> InboxSettings:
    settings = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
    for kind in ("processing", "done", "failed"):
        settings.folder(kind).mkdir(parents=True)
    return settings
