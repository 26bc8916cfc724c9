"""The pool at edges its other tests do not reach: what a lease hands its holder (a remote
served over loopback HTTP), a fresh server's status, and a runner killed outright (real
processes: a runner script and the stand-in server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.servers import ServerPool, ServerState
from preform_pipeline.servers.pool import SUPERVISOR_TICK_S
from preform_pipeline.servers.process import process_tree_alive
from preform_pipeline.servers.testing import standin_settings, write_standin_server
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from preform_pipeline.settings.servers import PathMapping
from tests.unit.servers.test_servers_pool_leases import Endpoint
from tests.unit.servers.test_servers_pool_local import RUNNER


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

    def test_a_fresh_server_reports_no_error_and_no_retirement(self, endpoint: Endpoint) -> None:
        servers = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=2.0)
        pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(endpoint.url),)),
                          clock=ManualClock(), handle_signals=False, env={})
        with pool:
            (status,) = pool.status()
        assert status.state is ServerState.IDLE
        assert (status.last_error, status.retired_reason, status.restarts) == (None, None, 0)

    def test_a_lease_without_a_timeout_waits_for_the_server_to_come_free(
        self, endpoint: Endpoint
    ) -> None:
        servers = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=2.0)
        pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(endpoint.url),)),
                          clock=ManualClock(), handle_signals=False, env={})
        got: list[object] = []

        def wait_for_a_lease() -> None:
            try:
                lease = pool.lease()  # no timeout: as long as a server may come back
            except Exception as exc:  # the test reports what the waiter got
                got.append(exc)
                return
            got.append(lease.server.name)
            lease.release(builds=0)

        with pool:
            first = pool.lease(timeout=5)
            waiter = threading.Thread(target=wait_for_a_lease)
            waiter.start()
            # Still waiting after a few supervisor ticks: nothing was free, and it did not fail.
            waiter.join(timeout=5 * SUPERVISOR_TICK_S)
            assert waiter.is_alive(), f"the waiter ended while the server was leased: {got}"
            first.release(builds=0)
            waiter.join(timeout=WAIT_S)
        assert not waiter.is_alive()
        assert got == [first.server.name]

    def test_a_remote_is_reached_at_its_url_without_the_trailing_slash(self) -> None:
        # Only the slash goes: a host name that ends in the same letters keeps them.
        remote = RemoteServer("http://PRINT-BOX/", name="lab")
        (status,) = ServerPool(PoolSettings(remotes=(remote,)), handle_signals=False).status()
        assert status.url == "http://PRINT-BOX"


#: The runner of test_servers_pool_local.py (a pool of one stand-in server that says its pid),
#: kept alive until it is killed.
WAITING_RUNNER = RUNNER + "import time\ntime.sleep(60)\n"
WAIT_S = 10.0


def _waiting_runner(folder: Path) -> subprocess.Popen[str]:
    script = folder / "runner.py"
    script.write_text(WAITING_RUNNER, encoding="utf-8")
    arguments = (script, write_standin_server(folder), folder / "records")
    return subprocess.Popen([sys.executable, *map(str, arguments)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[3])


class TestARunnerKilledOutright:
    """A runner killed with SIGKILL (no atexit, no close) still takes its servers along."""

    def test_its_server_ends_with_it(self, tmp_path: Path) -> None:
        runner = _waiting_runner(tmp_path)
        try:
            assert runner.stdout is not None
            pids = json.loads(runner.stdout.readline())
        finally:
            runner.kill()
            runner.wait(timeout=WAIT_S)
        assert len(pids) == 1 and pids[0] is not None
        deadline = time.monotonic() + WAIT_S
        while process_tree_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = process_tree_alive(pids)
        for pid in left:  # the product failed: do not leave its orphan running
            os.kill(pid, signal.SIGKILL)
        assert left == [], "the server outlived its runner"


class TestPortAttempts:
    """A pool tries only ``servers.port_attempts`` ports from ``base_port`` upward."""

    def test_one_attempt_on_a_taken_port_fails_the_start_naming_the_port(
        self, tmp_path: Path, held_port: int
    ) -> None:
        settings = standin_settings(write_standin_server(tmp_path), base_port=held_port,
                                    port_attempts=1, max_restarts=0)
        with ServerPool(settings.pool, handle_signals=False,
                        state_dir=tmp_path / "records") as pool:
            (status,) = pool.status()
        assert status.state is ServerState.RETIRED
        assert status.pid is None
        assert status.last_error == (
            f"no free port in {held_port}-{held_port} after 1 attempt")
