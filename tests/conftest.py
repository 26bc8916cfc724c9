"""Fixtures shared by every test package."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_cluster import PgCluster, require_postgres

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MODELS = REPO_ROOT / "sample_models"
RECIPES = REPO_ROOT / "recipes"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def sample_models_dir() -> Path:
    return SAMPLE_MODELS


@pytest.fixture
def python_exe() -> str:
    """The interpreter running the tests, for starting real subprocesses."""
    return sys.executable


@pytest.fixture(autouse=True)
def own_data_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test gets its own user data folder: `run` records into the default job store
    there, so tests never share (or skip each other's) prints, nor touch the real one."""
    folder = tmp_path_factory.mktemp("data-home")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    monkeypatch.setenv("LOCALAPPDATA", str(folder))
    return folder


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A real PostgreSQL server for the whole session (see tests/pg_cluster.py).

    Where PostgreSQL is not installed the tests that need it skip with the reason, except in
    CI (``CI`` set), where .ci/run installs it: there a missing server is a failure.
    """
    require_postgres()
    cluster = PgCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()
