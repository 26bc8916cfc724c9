"""What a lease of the pool hands its holder, at edges the other pool tests do not reach:
the remote's path translation, on a remote endpoint served over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from preform_pipeline.settings.servers import PathMapping
from tests.unit.servers.test_servers_pool_leases import Endpoint


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.close()


class TestWhatALeaseHolds:
    """The leased server says where to send requests and how to name files for it."""

    def test_a_remote_lease_translates_local_paths_to_the_remotes_share(
        self, endpoint: Endpoint, tmp_path: Path
    ) -> None:
        share = PathMapping(local=PurePosixPath(tmp_path), remote="Z:\\prints")
        remote = RemoteServer(endpoint.url, path_map=(share,), name="lab")
        servers = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=2.0)
        pool = ServerPool(PoolSettings(servers=servers, remotes=(remote,)), clock=ManualClock(),
                          handle_signals=False, env={})
        with pool, pool.lease(timeout=5) as lease:
            mapper = lease.server.path_mapper
        assert not mapper.identity
        crown = tmp_path / "case-7" / "crown.stl"
        assert mapper.to_server(crown) == "Z:\\prints\\case-7\\crown.stl"
