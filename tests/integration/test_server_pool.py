"""The server pool end to end: real simulator processes (and a stand-in server where a test
needs misbehaviour the simulator does not offer), real ports, real HTTP, real signals.

The runner tests send SIGINT and use POSIX process groups, so this module expects a POSIX host.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import (
    LeaseTimeoutError,
    PipelineError,
    PoolExhaustedError,
    ServerTimeoutError,
    ServerUnreachableError,
)
from preform_pipeline.servers import PoolMode, ServerPool, ServerState, ServerStatus
from preform_pipeline.servers.ports import PortAllocator
from preform_pipeline.servers.process import (
    ServerProcess,
    process_tree_alive,
    server_command,
    start_server_process,
)
from preform_pipeline.servers.testing import standin_settings, write_standin_server
from preform_pipeline.settings import PathMapping, RemoteServer, ServerSettings, Settings
from preform_pipeline.settings.servers import DEFAULT_STARTUP_TIMEOUT_S

StartRunner = Callable[[str], "tuple[subprocess.Popen[str], list[int]]"]
WAIT_S = 20.0  # upper bound for anything the pool does in these tests; normally < 2 s


def _settings(**overrides: Any) -> Settings:
    """Simulated servers, sized for tests: any free port, fast backoff, no periodic checks."""
    servers = ServerSettings(
        count=2,
        base_port=0,
        startup_timeout_s=WAIT_S,
        stop_timeout_s=2.0,
        health_interval_s=0.0,
        health_timeout_s=5.0,
        recycle_after_builds=0,
        max_restarts=2,
        restart_backoff_s=0.05,
        restart_backoff_max_s=0.2,
    )
    return Settings(servers=replace(servers, **overrides))


@pytest.fixture
def sim_args(tmp_path: Path) -> tuple[str, ...]:
    """Keeps the simulators' shared fleet state inside this test's folder."""
    return ("--fleet-dir", str(tmp_path / "fleet"))


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program (this test) is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def pool_factory(sim_args: tuple[str, ...]) -> Iterator[Callable[..., ServerPool]]:
    """Builds started pools and closes every one of them after the test."""
    pools: list[ServerPool] = []

    def make(
        settings: Settings,
        simulator_args: Sequence[str] | Callable[[str], Sequence[str]] = sim_args,
        **kwargs: Any,
    ) -> ServerPool:
        pool = ServerPool(settings.pool, simulator_args=simulator_args, **kwargs)
        pools.append(pool)
        pool.start()
        return pool

    yield make
    for pool in pools:
        pool.close()


def _state(name: str, state: ServerState) -> Callable[[tuple[ServerStatus, ...]], bool]:
    return lambda statuses: any(s.name == name and s.state is state for s in statuses)


def _tree(pid: int) -> list[int]:
    return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


class TestSimulatedPool:
    """With nothing configured the pool runs simulators, leased one build at a time."""

    def test_servers_start_in_parallel_and_the_pool_says_simulated(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        with capture_logs() as logs:
            pool = pool_factory(_settings(count=3))
        assert pool.mode is PoolMode.SIMULATED
        assert pool.simulated
        statuses = pool.status()
        assert [s.state for s in statuses] == [ServerState.IDLE] * 3
        assert len({s.port for s in statuses}) == 3
        events = [e["event"] for e in logs]
        last_launch = max(i for i, e in enumerate(events) if e == "server_starting")
        first_ready = events.index("server_ready")
        assert last_launch < first_ready  # all three were starting at once
        for status in statuses:
            assert status.url is not None
            assert "version" in httpx.get(status.url + "/", timeout=5, trust_env=False).json()

    def test_a_lease_is_exclusive_until_released(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=2))
        first = pool.lease(timeout=5)
        second = pool.lease(timeout=5)
        assert first.server.name != second.server.name
        assert first.server.simulated and not first.server.remote
        assert first.server.path_mapper.identity
        with pytest.raises(LeaseTimeoutError, match="2 leased"):
            pool.lease(timeout=0.2)
        first.release()
        third = pool.lease(timeout=5)
        assert third.server.name == first.server.name
        second.release()
        third.release()
        third.release()  # releasing twice is harmless
        assert sorted(s.total_builds for s in pool.status()) == [1, 2]

    def test_a_waiting_lease_gets_the_server_released_by_another_thread(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=1))
        held = pool.lease(timeout=5)
        got: queue.Queue[str] = queue.Queue()

        def wait_for_lease() -> None:
            with pool.lease(timeout=WAIT_S) as lease:
                got.put(lease.server.name)

        waiter = threading.Thread(target=wait_for_lease)
        waiter.start()
        assert got.empty()
        held.release()
        assert got.get(timeout=WAIT_S) == held.server.name
        waiter.join(WAIT_S)

    def test_many_threads_never_share_a_server(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=2))
        lock = threading.Lock()
        holding: set[str] = set()
        clashes: list[str] = []
        done: list[int] = []

        def work() -> None:
            for _ in range(10):
                with pool.lease(timeout=WAIT_S) as lease:
                    with lock:
                        if lease.server.name in holding:
                            clashes.append(lease.server.name)
                        holding.add(lease.server.name)
                    # One request per lease, like one operation of a build.
                    http.get(lease.server.url + "/")
                    with lock:
                        holding.discard(lease.server.name)
            with lock:
                done.append(1)

        # One client for every thread (httpx's is thread-safe): a client of each request's
        # own built a TLS context per request, most of the test's CPU for no part of it.
        with httpx.Client(timeout=5, trust_env=False) as http:
            threads = [threading.Thread(target=work) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT_S)
        assert clashes == []
        assert len(done) == 6
        assert sum(s.total_builds for s in pool.status()) == 60

    def test_a_transient_failure_inside_the_lease_block_has_the_server_checked(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=1))
        with capture_logs() as logs, pytest.raises(ServerUnreachableError):  # noqa: SIM117
            with pool.lease(timeout=5) as lease:
                raise ServerUnreachableError("connection reset")
        reported = _events(logs, "server_failure_reported")
        assert reported[0]["server"] == lease.server.name
        assert reported[0]["error_type"] == "ServerUnreachableError"
        # The server is fine, so it goes back into rotation unchanged.
        statuses = pool.wait_for(_state("server-1", ServerState.IDLE), WAIT_S)
        assert statuses[0].generation == lease.server.generation


    def test_a_server_whose_operation_hung_is_restarted_even_if_it_answers(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=1))
        lease = pool.lease(timeout=5)
        with capture_logs() as logs:
            lease.report_failure(ServerTimeoutError("auto-support: no answer within 600 s"))
            (after,) = pool.wait_for(
                lambda s: s[0].state is ServerState.IDLE and s[0].generation == 2, WAIT_S
            )
        assert after.pid != lease.server.pid
        assert "operation hung" in _events(logs, "server_restart_scheduled")[0]["reason"]


class TestPorts:
    """A taken port never stops a server from starting."""

    def test_the_pool_skips_a_port_someone_listens_on(
        self, pool_factory: Callable[..., ServerPool], held_port: int
    ) -> None:
        pool = pool_factory(_settings(count=1, base_port=held_port, port_attempts=10))
        (status,) = pool.status()
        assert status.state is ServerState.IDLE
        assert status.port != held_port

    def test_a_server_that_reports_its_port_in_use_is_started_on_the_next(
        self, pool_factory: Callable[..., ServerPool], held_port: int
    ) -> None:
        # The probe is told every port is free, so only the server itself can notice.
        with capture_logs() as logs:
            pool = pool_factory(
                _settings(count=1, base_port=held_port, port_attempts=10),
                port_probe=lambda port: True,
            )
        (status,) = pool.status()
        assert status.state is ServerState.IDLE
        assert status.port is not None and status.port > held_port
        assert {"server": "server-1", "port": held_port} == {
            k: v for k, v in _events(logs, "server_port_in_use")[0].items()
            if k in ("server", "port")
        }


class TestFailures:
    """Crashed, killed and hung servers are restarted; crash-looping ones are retired."""

    def test_a_crash_looping_server_is_retired_and_the_others_keep_working(
        self, pool_factory: Callable[..., ServerPool], sim_args: tuple[str, ...]
    ) -> None:
        def args(name: str) -> Sequence[str]:
            return (*sim_args, "--fail-start") if name == "server-2" else sim_args

        with capture_logs() as logs:
            pool = pool_factory(_settings(count=2, max_restarts=2), simulator_args=args)
            statuses = pool.wait_for(_state("server-2", ServerState.RETIRED), WAIT_S)
        retired = _events(logs, "server_retired")
        assert len(retired) == 1
        assert retired[0]["server"] == "server-2"
        assert retired[0]["failures"] == 3
        assert "3 failures within" in retired[0]["reason"]
        assert "--fail-start" in retired[0]["output_tail"]  # the dying server's last words
        assert retired[0]["remaining"] == ["server-1"]
        assert len(_events(logs, "server_restart_scheduled")) == 2
        assert statuses[1].retired_reason is not None
        for _ in range(3):
            with pool.lease(timeout=5) as lease:
                assert lease.server.name == "server-1"

    def test_when_every_server_is_retired_lease_says_so(
        self, pool_factory: Callable[..., ServerPool], sim_args: tuple[str, ...]
    ) -> None:
        pool = pool_factory(
            _settings(count=1, max_restarts=1), simulator_args=(*sim_args, "--fail-start")
        )
        with pytest.raises(PoolExhaustedError) as caught:
            pool.lease(timeout=WAIT_S)
        assert "server-1: 2 failures" in str(caught.value)
        assert "server_retired" in str(caught.value)  # the hint points at the log events

    def test_a_server_killed_from_outside_is_restarted(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=1))
        (before,) = pool.status()
        assert before.pid is not None
        with capture_logs() as logs:
            psutil.Process(before.pid).kill()
            (after,) = pool.wait_for(
                lambda s: s[0].state is ServerState.IDLE and s[0].generation == 2, WAIT_S
            )
        assert after.pid != before.pid
        assert after.restarts == 1
        assert _events(logs, "server_exited")[0]["server"] == "server-1"
        with pool.lease(timeout=5) as lease:
            assert lease.server.pid == after.pid
            assert httpx.get(lease.server.url + "/", timeout=5, trust_env=False).is_success

    def test_a_hung_server_fails_its_health_checks_and_is_retired(
        self, pool_factory: Callable[..., ServerPool], tmp_path: Path
    ) -> None:
        settings = standin_settings(
            write_standin_server(tmp_path), "--hang-health",
            health_interval_s=0.1, health_timeout_s=0.3, max_restarts=1,
        )
        with capture_logs() as logs:
            pool = pool_factory(settings)
            pool.wait_for(_state("server-1", ServerState.RETIRED), WAIT_S)
        unhealthy = _events(logs, "server_unhealthy")
        assert len(unhealthy) == 2
        assert all("hung" in e["reason"] for e in unhealthy)
        assert "health check failed" in _events(logs, "server_retired")[0]["reason"]


class TestRecycling:
    """Servers are restarted after K builds or above a memory limit."""

    def test_a_server_is_recycled_after_k_builds(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        pool = pool_factory(_settings(count=1, recycle_after_builds=2))
        (first,) = pool.status()
        assert first.pid is not None
        old_tree = _tree(first.pid)
        with capture_logs() as logs:
            pool.lease(timeout=5).release()
            assert pool.status()[0].pid == first.pid  # one build: not yet
            pool.lease(timeout=5).release()
            (after,) = pool.wait_for(
                lambda s: s[0].state is ServerState.IDLE and s[0].generation == 2, WAIT_S
            )
        assert after.pid != first.pid
        assert after.builds == 0 and after.total_builds == 2
        assert process_tree_alive(old_tree) == []
        recycled = _events(logs, "server_recycled")
        assert (recycled[0]["reason"], recycled[0]["builds"]) == ("builds", 2)
        assert _events(logs, "server_restart_scheduled") == []  # recycling is not a failure

    def test_a_server_above_the_memory_limit_is_recycled(
        self, pool_factory: Callable[..., ServerPool], tmp_path: Path
    ) -> None:
        settings = standin_settings(
            write_standin_server(tmp_path), "--grow-mb", "60", recycle_rss_mb=40.0
        )
        pool = pool_factory(settings)
        with capture_logs() as logs:
            pool.lease(timeout=5).release()
            pool.wait_for(
                lambda s: s[0].state is ServerState.IDLE and s[0].generation == 2, WAIT_S
            )
        (recycled,) = _events(logs, "server_recycled")
        assert recycled["reason"] == "rss"
        assert recycled["rss_mb"] > 40


class TestStopping:
    """close() leaves no process of any server behind."""

    def test_close_stops_every_tree_including_grandchildren(
        self, pool_factory: Callable[..., ServerPool], tmp_path: Path
    ) -> None:
        settings = standin_settings(write_standin_server(tmp_path), "--spawn-child", count=2)
        pool = pool_factory(settings)
        pids = [pid for s in pool.status() if s.pid for pid in _tree(s.pid)]
        assert len(pids) == 4  # two servers, each with a child
        pool.close()
        assert process_tree_alive(pids) == []
        pool.close()  # twice is fine
        with pytest.raises(PipelineError, match="closed"):
            pool.lease(timeout=1)

    def test_a_server_ignoring_interrupt_is_still_stopped(
        self, pool_factory: Callable[..., ServerPool], tmp_path: Path
    ) -> None:
        settings = standin_settings(
            write_standin_server(tmp_path), "--ignore-sigint", "--spawn-child", stop_timeout_s=0.5
        )
        pool = pool_factory(settings)
        pids = [pid for s in pool.status() if s.pid for pid in _tree(s.pid)]
        with capture_logs() as logs:
            pool.close()
        assert process_tree_alive(pids) == []
        assert _events(logs, "server_stopped")[0]["how"] == "terminate"


RUNNER = """
import json, sys
from preform_pipeline.settings import ServerSettings, Settings
from preform_pipeline.logging import configure_logging
from preform_pipeline.servers import ServerPool

configure_logging(level="INFO", console=sys.stderr)  # stdout carries only the pid line
settings = Settings(servers=ServerSettings(count=2, base_port=0, health_interval_s=0,
                                           stop_timeout_s=2.0))
pool = ServerPool(settings.pool, simulator_args=("--fleet-dir", sys.argv[2]))
if sys.argv[1] == "exit-without-close":
    pool.start()
    print(json.dumps([s.pid for s in pool.status()]), flush=True)
    sys.exit(0)  # atexit must stop the servers
with pool:
    print(json.dumps([s.pid for s in pool.status()]), flush=True)
    leases = [pool.lease(), pool.lease()]
    pool.lease()  # blocks until Ctrl-C
"""


#: The runner's pool waits for its servers up to their start-up limit (the settings' default:
#: the script sets none) before it prints their pids; the runner's own start comes on top. A
#: wait of 20 s, below that limit, failed a loaded machine's start as a bare queue.Empty.
PIDS_WAIT_S = DEFAULT_STARTUP_TIMEOUT_S + WAIT_S


def _pid_line(runner: subprocess.Popen[str], lines: queue.Queue[str]) -> str:
    """The runner's first line (its servers' pids), or the test failed saying what it waited
    for and what came instead."""
    try:
        line = lines.get(timeout=PIDS_WAIT_S)
    except queue.Empty:
        pytest.fail(f"the runner printed no server pids within {PIDS_WAIT_S:g} s (its "
                    f"pool's start-up limit, {DEFAULT_STARTUP_TIMEOUT_S:g} s, and {WAIT_S:g} s "
                    "for its own start)", pytrace=False)
    if not line:
        pytest.fail(f"the runner ended (exit status {runner.wait(WAIT_S)}) before it printed "
                    "its server pids: its stderr above says why", pytrace=False)
    return line


class TestRunner:
    """No server outlives the process that runs the pool."""

    @pytest.fixture
    def run(self, tmp_path: Path) -> Iterator[StartRunner]:
        """Starts a runner process; returns it and its server pids once its pool is up."""
        script = tmp_path / "runner.py"
        script.write_text(textwrap.dedent(RUNNER), encoding="utf-8")
        started: list[tuple[subprocess.Popen[str], list[int]]] = []

        def start(mode: str) -> tuple[subprocess.Popen[str], list[int]]:
            runner = subprocess.Popen(
                [sys.executable, str(script), mode, str(tmp_path / "fleet")],
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
            )
            started.append((runner, []))
            lines: queue.Queue[str] = queue.Queue()
            assert runner.stdout is not None
            stdout = runner.stdout
            threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
            servers: list[int] = json.loads(_pid_line(runner, lines))
            pids = [pid for server in servers for pid in _tree(server)]
            started[-1] = (runner, pids)
            return runner, pids

        yield start
        # A failed test must not leave its runner or servers behind: ask, then insist.
        for runner, pids in started:
            if runner.poll() is None:
                runner.send_signal(signal.SIGINT)
                try:
                    runner.wait(WAIT_S)
                except subprocess.TimeoutExpired:
                    runner.kill()
                    runner.wait()
            for pid in process_tree_alive(pids):
                psutil.Process(pid).kill()
            if runner.stdout is not None:
                runner.stdout.close()

    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
    def test_a_signal_to_the_runner_leaves_no_server_processes(
        self, run: StartRunner, signum: int
    ) -> None:
        runner, pids = run("with-block")
        assert len(pids) == 2
        runner.send_signal(signum)
        assert runner.wait(WAIT_S) != 0  # KeyboardInterrupt / SystemExit(143) ended it
        assert process_tree_alive(pids) == []

    def test_a_runner_exiting_without_close_still_stops_its_servers(
        self, run: StartRunner
    ) -> None:
        runner, pids = run("exit-without-close")
        assert runner.wait(WAIT_S) == 0
        assert process_tree_alive(pids) == []


class TestRemoteServers:
    """Remote endpoints are leased and health-checked, never started or stopped."""

    @pytest.fixture
    def remote(self, sim_args: tuple[str, ...]) -> Iterator[ServerProcess]:
        """A simulator started by the test, standing in for a server on another machine."""
        port = PortAllocator(0).acquire()
        process = start_server_process(
            server_command(ServerSettings(), port, extra=sim_args),
            name="elsewhere", port=port, startup_timeout_s=WAIT_S,
        )
        yield process
        process.stop(2.0)

    def test_a_remote_is_leased_with_its_path_map_and_left_running(
        self, pool_factory: Callable[..., ServerPool], remote: ServerProcess
    ) -> None:
        share = PathMapping(PurePosixPath("/mnt/share"), "Z:\\")
        settings = replace(
            _settings(), remotes=(RemoteServer(remote.url + "/", (share,), "printhost"),)
        )
        pool = pool_factory(settings)
        assert pool.mode is PoolMode.REMOTE
        assert not pool.simulated
        with pool.lease(timeout=5) as lease:
            assert lease.server.name == "printhost"
            assert lease.server.remote and not lease.server.simulated
            assert lease.server.url == remote.url
            assert lease.server.path_mapper.to_server(PurePosixPath("/mnt/share/a.stl")) == (
                "Z:\\a.stl"
            )
        pool.close()
        assert remote.is_running()

    def test_an_unreachable_remote_is_retired(
        self, pool_factory: Callable[..., ServerPool]
    ) -> None:
        dead = f"http://127.0.0.1:{PortAllocator(0).acquire()}"
        # remote_wait_s 0: retired by its failures, not after the default wait for a restart.
        settings = replace(_settings(max_restarts=1, remote_wait_s=0),
                           remotes=(RemoteServer(dead),))
        pool = pool_factory(settings)
        with pytest.raises(PoolExhaustedError, match="unreachable"):
            pool.lease(timeout=WAIT_S)

    def test_local_and_remote_servers_share_one_pool(
        self, pool_factory: Callable[..., ServerPool], remote: ServerProcess, tmp_path: Path
    ) -> None:
        settings = standin_settings(write_standin_server(tmp_path), count=1)
        pool = pool_factory(replace(settings, remotes=(RemoteServer(remote.url),)))
        assert pool.mode is PoolMode.MIXED
        a, b = pool.lease(timeout=5), pool.lease(timeout=5)
        assert {a.server.remote, b.server.remote} == {True, False}
        a.release()
        b.release()
