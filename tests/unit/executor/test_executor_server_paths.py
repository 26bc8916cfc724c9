"""A build's clients send each file's path as its server's path map says: mapped for a
server that sees the files through a share, made absolute for one on this machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.executor import RunOptions
from preform_pipeline.executor.runner import _ServerClients
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.servers.pool import PoolServer
from preform_pipeline.settings import PathMapping

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX local paths")


def _server(mapper: PathMapper) -> PoolServer:
    # Nothing is sent: a client asks its server nothing until its first request.
    return PoolServer(name="server-1", url="http://127.0.0.1:9", path_mapper=mapper,
                      simulated=True, remote=bool(mapper.mappings), port=None, pid=None,
                      generation=1)


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[_ServerClients]:
    made = _ServerClients(RunOptions(output_root=tmp_path / "out"))
    yield made
    made.close()


def _both(clients: _ServerClients, mapper: PathMapper) -> tuple[PreFormClient, ...]:
    return clients.get(_server(mapper))


@posix_only
class TestServerPaths:
    """The path a build's import or save sends is the one its server's path map gives."""

    def test_a_server_behind_a_share_is_sent_its_own_path(
        self, clients: _ServerClients
    ) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/data/parts"), "Z:\\"),), "server-1")

        sent = [c.server_path(Path("/data/parts/case 1/a.stl")) for c in _both(clients, mapper)]

        assert sent == ["Z:\\case 1\\a.stl"] * 2

    def test_a_file_outside_the_mapped_folders_is_refused(
        self, clients: _ServerClients
    ) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/data/parts"), "Z:\\"),), "server-1")
        client, _ = _both(clients, mapper)

        with pytest.raises(Exception, match="not inside any folder mapped for server server-1"):
            client.server_path(Path("/elsewhere/a.stl"))

    def test_a_server_on_this_machine_is_sent_the_path_made_absolute(
        self, clients: _ServerClients
    ) -> None:
        path = Path("/data/parts/x/../a b.stl")

        sent = [c.server_path(path) for c in _both(clients, PathMapper())]

        assert sent == [PathMapper().to_server(path)] * 2 == ["/data/parts/a b.stl"] * 2
