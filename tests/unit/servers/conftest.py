"""Fixtures for the server tests: the stand-in server script and a port someone holds."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.servers.testing import write_standin_server


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    """The stand-in server script, written into this test's folder."""
    return write_standin_server(tmp_path)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program (this test) is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


#: The pool's test files, quickest first (no processes, then remotes on loopback, then real
#: server processes).
_POOL_FILES_BY_SPEED = ("test_servers_pool.py", "test_servers_pool_leases.py",
                        "test_servers_pool_local.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, run the pool's quickest tests first: most mutants fail one of them, and
    mutmut stops at the first failure (docs/testing.md, mutation testing)."""
    if not os.environ.get("MUTANT_UNDER_TEST"):
        return

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return _POOL_FILES_BY_SPEED.index(name) if name in _POOL_FILES_BY_SPEED else 0

    items.sort(key=rank)
