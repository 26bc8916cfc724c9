"""Fixtures for the server tests: the stand-in server script and a port someone holds."""

from __future__ import annotations

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
