"""Fixtures for the hot folder's unit tests: a real SQLite store, an inbox, and for the
daemon's tests a recipe and the scripted runner's script (daemon_support)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Script

from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from tests.command_line import in_process
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.two_nodes import two_nodes

__all__ = [  # in_process: `run` in the test's process, beside the hot folder (tests/command_line)
    "database", "in_process", "inbox", "nodes", "other_disk", "plain_store", "recipe", "script",
    "store", "stores", "url",
]


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


@pytest.fixture
def other_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than ``tmp_path`` (/dev/shm: Linux only), for the
    moves that must cross disks."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        assert os.stat(other).st_dev != os.stat(tmp_path).st_dev, "need two file systems"
        yield Path(other)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """Where a test's SQLite job store lives."""
    return tmp_path / "jobs.sqlite3"


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """A fast recipe named ``hot`` that prints."""
    return write_recipe(tmp_path, name="hot")


@pytest.fixture
def script(tmp_path: Path) -> Script:
    """The scripted runner's script, printing into ``tmp_path/fleet``."""
    return Script(fleet_dir=tmp_path / "fleet")


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    """A PostgreSQL database of the test's own, for a farm (named by a digest of the test's
    id: two parameters' ids may end alike)."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    return pg_cluster.create_database(f"farm_{digest}")


@pytest.fixture
def nodes(url: str) -> Iterator[tuple[NodeRole, NodeRole]]:
    """Two farm nodes' roles on that database: ``pc-a`` and ``pc-b``."""
    yield from two_nodes(url)


@pytest.fixture
def plain_store(url: str) -> Iterator[PostgresJobStore]:
    """The store as a ``run`` or a person opens it: the same database, no node."""
    store = PostgresJobStore(url, password=PG_PASSWORD)
    yield store
    store.close()


@pytest.fixture
def stores(url: str) -> Iterator[list[NodeJobStore]]:
    """The stores the test opens as nodes (closed after it)."""
    opened: list[NodeJobStore] = []
    yield opened
    for store in opened:
        store.close()
