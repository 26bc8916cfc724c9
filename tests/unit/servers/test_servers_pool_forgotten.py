"""A pool that is closed is forgotten: nothing in the process holds on to it afterwards (a
remote served over loopback HTTP, so no server process outlives the test)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from tests.unit.servers.test_servers_pool_leases import Endpoint


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.close()


def _closed_pool(url: str) -> weakref.ref[ServerPool]:
    """Start and close a pool on ``url``; return only a weak reference to it."""
    servers = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=2.0)
    pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(url),)),
                      clock=ManualClock(), handle_signals=False, env={})
    with pool:
        pass
    return weakref.ref(pool)


class TestAClosedPoolIsLetGo:
    """Once closed, a pool no longer sits in the interpreter's exit hooks, so a long-lived
    program that opens one pool after another does not keep each of them."""

    def test_a_closed_pool_is_freed_when_its_holder_lets_go(self, endpoint: Endpoint) -> None:
        ref = _closed_pool(endpoint.url)
        gc.collect()
        assert ref() is None
