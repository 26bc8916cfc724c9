"""Session 21: the paths a leased server is sent, local and remote (seed 38's survivors)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import ConfigError
from preform_pipeline.servers import ServerPool
from preform_pipeline.servers.testing import standin_settings, write_standin_server
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from preform_pipeline.settings.servers import PathMapping
from tests.unit.servers.test_servers_pool_leases import WAIT_S, Endpoint

#: Local servers under wine see the whole file system as drive Z:.
WINE_MAP = (PathMapping(PurePosixPath("/"), "Z:\\"),)
#: A remote print host sees only the shared folder, as its drive S:.
SHARE_MAP = (PathMapping(PurePosixPath("/mnt/share"), "S:\\"),)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.close()


class TestALocalServersPaths:
    """A local server leased from the pool is sent paths through ``servers.path_map``."""

    def test_a_model_path_reaches_the_server_as_the_map_names_it(self, tmp_path: Path) -> None:
        settings = standin_settings(write_standin_server(tmp_path), path_map=WINE_MAP)
        with ServerPool(settings.pool, handle_signals=False, state_dir=tmp_path / "records",
                        clock=ManualClock()) as pool, pool.lease(timeout=WAIT_S) as lease:
            sent = lease.server.path_mapper.to_server(PurePosixPath("/models/arch.stl"))
        assert (lease.server.name, sent) == ("server-1", "Z:\\models\\arch.stl")


class TestARemoteServersPaths:
    """A remote server is sent paths through its own ``path_map``; a file outside every
    mapped folder is refused with an error that names that server."""

    def test_a_file_outside_its_share_names_the_server_and_the_share(
        self, endpoint: Endpoint
    ) -> None:
        servers = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=2.0)
        remote = RemoteServer(endpoint.url, path_map=SHARE_MAP, name="printhost")
        with ServerPool(PoolSettings(servers=servers, remotes=(remote,)), handle_signals=False,
                        clock=ManualClock(), env={}) as pool, pool.lease(timeout=WAIT_S) as lease:
            mapper = lease.server.path_mapper
            inside = mapper.to_server(PurePosixPath("/mnt/share/case-7/arch.stl"))
            with pytest.raises(ConfigError) as caught:
                mapper.to_server(PurePosixPath("/home/lab/arch.stl"))
        assert inside == "S:\\case-7\\arch.stl"
        assert str(caught.value) == (
            "/home/lab/arch.stl: not inside any folder mapped for server printhost "
            "(/mnt/share) (move the file under a mapped folder, or add a path_map entry for "
            "its folder in the settings)")


class TestAPoolWithoutServers:
    """Settings built in code that name no server at all are refused before anything starts,
    saying what to set (the settings file's own check says the same for a file)."""

    def test_the_error_says_there_is_nothing_to_run_and_what_to_set(self) -> None:
        with pytest.raises(ConfigError) as caught:
            ServerPool(PoolSettings(servers=ServerSettings(count=0)), handle_signals=False,
                       clock=ManualClock(), env={})
        assert str(caught.value) == (
            "no servers: servers.count is 0 and no remote servers are configured (set "
            "servers.count to 1 or more, or add remotes)")
