"""Session 22, seed 40: what a pool shows while its server is still being started, and the
server a local path-map error names (real stand-in server processes on loopback ports, the
clock faked at its seam)."""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import ConfigError, LeaseTimeoutError
from preform_pipeline.servers import ServerPool, ServerState
from preform_pipeline.servers.testing import standin_settings, write_standin_server
from tests.unit.servers.test_servers_pool_local import WAIT_S, _standin_pool
from tests.unit.servers.test_servers_pool_s21 import SHARE_MAP


class TestAServerBeingStarted:
    """Until its first start is done, a server says it is starting: in the pool's status (what
    a progress display reads) and in a lease that times out meanwhile."""

    def test_the_status_and_a_lease_timeout_say_starting_until_it_is_ready(
        self, tmp_path: Path
    ) -> None:
        probing, go_on = threading.Event(), threading.Event()

        def probe(port: int) -> bool:
            # The free-port probe comes just before the launch: hold the start there while
            # the test looks at the pool, as a display would during a slow start.
            probing.set()
            go_on.wait(WAIT_S)
            return True

        pool = _standin_pool(tmp_path, port_probe=probe)
        (before,) = pool.status()
        starter = threading.Thread(target=pool.start, name="test-starter")
        try:
            starter.start()
            assert probing.wait(WAIT_S), "the pool never came to launch its server"
            (starting,) = pool.status()
            with pytest.raises(LeaseTimeoutError) as caught:
                pool.lease(timeout=0.01)
        finally:
            go_on.set()
            starter.join(WAIT_S)
        with pool:  # started already: the block only closes it
            (ready,) = pool.status()
        assert (before.name, before.state, before.pid, before.url) == (
            "server-1", ServerState.STARTING, None, None)
        assert (starting.state, starting.pid, starting.generation) == (
            ServerState.STARTING, None, 0)
        assert caught.value.message == "no server became free within 0.01 s (1 starting)"
        assert (ready.state, ready.generation) == (ServerState.IDLE, 1)


class TestALocalServersMapRefusingAFile:
    """A local server under a ``servers.path_map`` that maps only a share refuses a file
    outside it with an error naming that server, as a remote's does."""

    def test_a_file_outside_the_share_names_the_local_server(self, tmp_path: Path) -> None:
        settings = standin_settings(write_standin_server(tmp_path), path_map=SHARE_MAP)
        with ServerPool(settings.pool, handle_signals=False, state_dir=tmp_path / "records",
                        clock=ManualClock()) as pool, pool.lease(timeout=WAIT_S) as lease:
            mapper = lease.server.path_mapper
            inside = mapper.to_server(PurePosixPath("/mnt/share/case-7/arch.stl"))
            with pytest.raises(ConfigError) as caught:
                mapper.to_server(PurePosixPath("/home/lab/arch.stl"))
        assert (lease.server.name, inside) == ("server-1", "S:\\case-7\\arch.stl")
        assert str(caught.value) == (
            "/home/lab/arch.stl: not inside any folder mapped for server server-1 "
            "(/mnt/share) (move the file under a mapped folder, or add a path_map entry for "
            "its folder in the settings)")
