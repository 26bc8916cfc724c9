"""Pool rules that need no server process: modes, crash-loop window, backoff, misuse."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import (
    ConfigError,
    PipelineError,
    PoolExhaustedError,
    ServerProcessError,
)
from preform_pipeline.servers import PoolMode, ServerPool, ServerState, ServerStatus
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings

WAIT_S = 10.0


_HELD_PORTS: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _release_held_ports() -> Iterator[None]:
    yield
    while _HELD_PORTS:
        _HELD_PORTS.pop().close()


def _dead_url() -> str:
    """A loopback address that refuses connections for the whole test.

    A port merely found free can be taken meanwhile by another worker's server (the suite
    runs on several processes), and then the "dead" remote answers its health checks. A
    socket bound but not listening holds the port, and connections to it are refused.
    """
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(held)
    return f"http://127.0.0.1:{held.getsockname()[1]}"


class TestMode:
    """The pool says what it runs, so every simulated run can say SIMULATED."""

    @pytest.mark.parametrize(
        ("executable", "remotes", "mode"),
        [
            (None, (), PoolMode.SIMULATED),
            (Path("PreFormServer"), (), PoolMode.LOCAL),
            (None, (RemoteServer("http://h:1"),), PoolMode.REMOTE),
            (Path("PreFormServer"), (RemoteServer("http://h:1"),), PoolMode.MIXED),
        ],
    )
    def test_mode(
        self, executable: Path | None, remotes: tuple[RemoteServer, ...], mode: PoolMode
    ) -> None:
        servers = ServerSettings(executable=executable)
        pool = ServerPool(PoolSettings(servers=servers, remotes=remotes))
        assert pool.mode is mode
        assert pool.simulated is (mode is PoolMode.SIMULATED)

    def test_remotes_without_an_executable_start_no_local_servers(self) -> None:
        pool = ServerPool(PoolSettings(remotes=(RemoteServer("http://h:1", name="h"),)))
        assert [s.name for s in pool.status()] == ["h"]

    @pytest.mark.parametrize(("builds", "servers"), [(1, 1), (2, 2), (4, 4), (9, 4), (0, 1)])
    def test_a_right_sized_pool_has_no_more_servers_than_builds(
        self, builds: int, servers: int
    ) -> None:
        pool = ServerPool(PoolSettings(servers=ServerSettings(count=4)), count=builds)
        assert [s.name for s in pool.status()] == [f"server-{i + 1}" for i in range(servers)]

    def test_remote_names_default_to_host_and_port_and_stay_unique(self) -> None:
        remotes = (RemoteServer("http://h:1"), RemoteServer("http://h:1/"),
                   RemoteServer("http://h:1/x"))
        pool = ServerPool(PoolSettings(remotes=remotes))
        assert [s.name for s in pool.status()] == ["h:1", "h:1-2", "h:1-3"]


class TestMisuse:
    """Mistakes in using the pool are clear errors."""

    def test_no_servers_at_all_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="no servers"):
            ServerPool(PoolSettings(servers=ServerSettings(count=0)))

    def test_leasing_before_start_says_how_to_start(self) -> None:
        with pytest.raises(PipelineError, match="not started") as caught:
            ServerPool(PoolSettings()).lease(timeout=0)
        assert caught.value.message == "the server pool is not started"
        assert caught.value.hint == (
            "use `with ServerPool(settings) as pool:` or call pool.start()")

    def test_a_missing_server_program_fails_at_start(self, tmp_path: Path) -> None:
        program = tmp_path / "PreFormServer"
        settings = PoolSettings(servers=ServerSettings(executable=program))
        with pytest.raises(ServerProcessError) as caught:  # noqa: SIM117
            with ServerPool(settings):
                pass
        assert caught.value.message == f"cannot find the server program {str(program)!r}"
        assert caught.value.command == (str(program),)
        assert caught.value.hint == (
            "set servers.executable (PREFORM_PIPELINE_SERVER_EXECUTABLE) to the PreFormServer "
            "executable, and servers.command_prefix if it runs under wine")


class TestRemoteWait:
    """A remote server that is down is waited for by time, however often it fails."""

    def test_it_retires_only_after_remote_wait_s(self) -> None:
        clock = ManualClock()
        servers = ServerSettings(
            max_restarts=1, crash_window_s=1000, restart_backoff_s=1, restart_backoff_max_s=4,
            health_timeout_s=1, health_interval_s=0, remote_wait_s=150,
        )
        pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(_dead_url()),)),
                          clock=clock)
        with capture_logs() as logs:
            pool.start()
            try:
                for n in (1, 2, 3):  # more failures in the window than max_restarts allows
                    pool.wait_for(lambda s, n=n: s[0].rechecks == n - 1
                                  and s[0].state is ServerState.RESTARTING, WAIT_S)
                    clock.advance(40)
                pool.wait_for(lambda s: s[0].rechecks == 3
                              and s[0].state is ServerState.RESTARTING, WAIT_S)
                clock.advance(40)  # 160 s down: longer than remote_wait_s
                pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, WAIT_S)
                with pytest.raises(PoolExhaustedError, match=r"servers\.remote_wait_s"):
                    pool.lease(timeout=1)
            finally:
                pool.close()
        waiting = [e for e in logs if e["event"] == "remote_server_waiting"]
        assert [e["waited_s"] for e in waiting] == [0, 40, 80, 120]
        assert {e["wait_limit_s"] for e in waiting} == {150}


    def test_a_remote_down_exactly_remote_wait_s_is_still_waited_for(self) -> None:
        clock = ManualClock()
        servers = ServerSettings(
            max_restarts=0, crash_window_s=1000, restart_backoff_s=1, restart_backoff_max_s=1,
            health_timeout_s=1, health_interval_s=0, remote_wait_s=1,
        )
        pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(_dead_url()),)),
                          clock=clock)
        pool.start()
        try:
            # Waited for by time even with max_restarts 0 and a wait of a single second.
            assert pool.status()[0].state is ServerState.RESTARTING
            clock.advance(1)  # down for exactly remote_wait_s: not longer
            pool.wait_for(lambda s: s[0].rechecks == 1
                          and s[0].state is ServerState.RESTARTING, WAIT_S)
            clock.advance(1)
            (status,) = pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, WAIT_S)
        finally:
            pool.close()
        assert status.retired_reason is not None and status.retired_reason.startswith(
            "unreachable for 2 s, longer than servers.remote_wait_s (1 s)")


class TestCrashLoop:
    """Only failures within the crash window count towards retirement; backoff doubles."""

    def _wait_restarts(self, pool: ServerPool, n: int) -> tuple[ServerStatus, ...]:
        """Its ``n``-th check after a failure done and failed (a remote's: ``rechecks``)."""
        return pool.wait_for(
            lambda s: s[0].rechecks == n and s[0].state is ServerState.RESTARTING, WAIT_S
        )

    def test_a_failure_exactly_one_window_after_another_still_counts(self) -> None:
        clock = ManualClock()
        servers = ServerSettings(
            max_restarts=1, crash_window_s=10, restart_backoff_s=10, restart_backoff_max_s=10,
            health_timeout_s=1, health_interval_s=0, remote_wait_s=0,
        )
        pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(_dead_url()),)),
                          clock=clock)
        pool.start()
        try:
            self._wait_restarts(pool, 0)
            clock.advance(10)  # the next attempt fails exactly crash_window_s later
            (status,) = pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, WAIT_S)
        finally:
            pool.close()
        assert status.retired_reason is not None
        assert status.retired_reason.startswith("2 failures within 10 s")

    def test_failures_spread_wider_than_the_window_never_retire(self) -> None:
        clock = ManualClock()
        # remote_wait_s 0: the remote's failures count like a local server's.
        servers = ServerSettings(
            max_restarts=1, crash_window_s=10, restart_backoff_s=1, restart_backoff_max_s=4,
            health_timeout_s=1, health_interval_s=0, remote_wait_s=0,
        )
        pool = ServerPool(PoolSettings(servers=servers, remotes=(RemoteServer(_dead_url()),)),
                          clock=clock)
        with capture_logs() as logs:
            pool.start()
            try:
                self._wait_restarts(pool, 0)  # first failure, at start
                for n in (1, 2):
                    clock.advance(100)  # far beyond the window: earlier failures expire
                    self._wait_restarts(pool, n)
                clock.advance(4)  # within the window of the last failure: retired
                pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, WAIT_S)
                with pytest.raises(PoolExhaustedError, match="2 failures within 10 s"):
                    pool.lease(timeout=1)
            finally:
                pool.close()
        scheduled = [e["next_check_s"] for e in logs if e["event"] == "remote_server_waiting"]
        assert scheduled == [1, 2, 4]  # doubling per consecutive failure, capped at the max
