"""Local servers of the pool, fast: one real simulator shared by the module for what needs the
Local API, the stand-in server (a real program that starts in a blink) for process handling,
real ports and HTTP on loopback, the clock faked at its seam.

What a user of the pool sees of its own processes: recycling after K builds or above the
memory limit, a killed server restarted after its backoff, the simulator arguments reaching
the simulator, the records a later runner would reap by, and the state counts of a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud.login import ENV_DASHBOARD_PASSWORD, ENV_DASHBOARD_USERNAME
from preform_pipeline.errors import LeaseTimeoutError, ServerInternalError
from preform_pipeline.liveness import this_host, this_instance
from preform_pipeline.servers import ServerPool, ServerState, ServerStatus
from preform_pipeline.servers.process import process_tree_alive
from preform_pipeline.servers.records import ServerRecord, ServerRecords
from preform_pipeline.servers.testing import write_standin_server
from preform_pipeline.settings import PoolSettings, ServerSettings, SimulatedPrinterSettings
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS

WAIT_S = 10.0  # upper bound for anything the pool does here; normally well under 2 s
BACKOFF_S = 0.5
RECYCLE_AFTER = 2
#: A memory limit no simulator reaches: the shared server is measured but never recycled.
RSS_UNREACHABLE_MB = 100_000.0
USERNAME = "lab@example.com"
LOGIN_ENV = {ENV_DASHBOARD_USERNAME: USERNAME, ENV_DASHBOARD_PASSWORD: "pool-test-password"}
PRINTER = SimulatedPrinterSettings(name="Form4-PoolTest", machine_type="FORM-4-0",
                                   material="FLGPGR05")


def _servers(**overrides: Any) -> ServerSettings:
    """One local server, sized for tests: any free port, no periodic checks, short backoff."""
    servers = ServerSettings(
        count=1, base_port=0, startup_timeout_s=WAIT_S, stop_timeout_s=2.0,
        health_interval_s=0.0, health_timeout_s=5.0, recycle_after_builds=0,
        recycle_rss_mb=0.0, max_restarts=3, crash_window_s=1000.0,
        restart_backoff_s=BACKOFF_S, restart_backoff_max_s=4 * BACKOFF_S,
    )
    return replace(servers, **overrides)


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def _records(folder: Path) -> dict[int, ServerRecord]:
    """The pool's records in ``folder`` by server pid (what a later runner would reap)."""
    found = ServerRecords(folder).read_all()
    return {r.server.pid: r for _, r in found if r is not None}


def _eventually(what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Wait until ``condition()`` holds (polled), failing with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.02)


def _logged_in_as(url: str) -> str | None:
    """The Dashboard user the server at ``url`` is logged in as (None: nobody)."""
    answer = httpx.get(url + "/user/", timeout=5, trust_env=False)
    return None if answer.status_code == 404 else str(answer.json()["username"])


def _declared_fleet_only(device_ids: Sequence[str]) -> bool:
    """True when the simulator's printers are the declared one, not its default fleet."""
    return PRINTER.name in device_ids and not {p.serial for p in DEFAULT_PRINTERS} & set(
        device_ids)


def _free_port() -> int:
    """A port nothing listens on now (the operating system's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


@dataclass(frozen=True)
class Local:
    """A started pool of one local server, its clock and its folders."""

    pool: ServerPool
    clock: ManualClock
    folder: Path

    @property
    def records(self) -> Path:
        return self.folder / "records"

    def fleet_dir(self, name: str) -> Path:
        return self.folder / name / "fleet"

    def status(self) -> ServerStatus:
        (status,) = self.pool.status()
        return status

    def wait(self, condition: Callable[[ServerStatus], bool]) -> ServerStatus:
        (status,) = self.pool.wait_for(lambda s: condition(s[0]), WAIT_S)
        return status


def _simulator_pool(folder: Path, servers: ServerSettings) -> Local:
    """A started pool of one simulator with the declared fleet and a Dashboard login."""
    clock = ManualClock()
    local = Local(ServerPool(
        PoolSettings(servers=servers, simulated_fleet=(PRINTER,)),
        clock=clock,
        # A function of the server's name: each server gets its own fleet folder.
        simulator_args=lambda name: ("--fleet-dir", str(folder / name / "fleet")),
        handle_signals=False,
        state_dir=folder / "records",
        env=LOGIN_ENV,  # every start and restart logs the server in
    ), clock, folder)
    local.pool.start()
    return local


def _standin_pool(folder: Path, *, simulator_args: Sequence[str] = (),
                  port_probe: Callable[[int], bool] | None = None,
                  clock: ManualClock | None = None, **overrides: Any) -> ServerPool:
    """A pool of stand-in servers: a real program, not the simulator, that starts in a blink
    (process handling needs no Local API)."""
    servers = _servers(executable=write_standin_server(folder), command_prefix=(sys.executable,),
                       **overrides)
    return ServerPool(PoolSettings(servers=servers), handle_signals=False,
                      state_dir=folder / "records", simulator_args=simulator_args,
                      port_probe=port_probe, clock=clock if clock is not None else ManualClock())


def _fresh(local: Local) -> Local:
    status = local.wait(lambda s: s.state is ServerState.IDLE)
    assert status.builds == 0, f"an earlier test left the shared server used: {status}"
    return local


@pytest.fixture(scope="module")
def shared_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """One simulator for the module, recycled after RECYCLE_AFTER builds."""
    local = _simulator_pool(tmp_path_factory.mktemp("pool-simulator"),
                            _servers(recycle_after_builds=RECYCLE_AFTER))
    yield local
    local.pool.close()


@pytest.fixture
def sim(shared_simulator: Local) -> Local:
    """The shared simulator, idle and fresh (no builds since its last start)."""
    return _fresh(shared_simulator)


@pytest.fixture(scope="module")
def shared_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """One stand-in server for the module, recycled after RECYCLE_AFTER builds and measured
    against a memory limit it never reaches."""
    folder = tmp_path_factory.mktemp("pool-standin")
    clock = ManualClock()
    pool = _standin_pool(folder, clock=clock, recycle_after_builds=RECYCLE_AFTER,
                         recycle_rss_mb=RSS_UNREACHABLE_MB)
    pool.start()
    yield Local(pool, clock, folder)
    pool.close()


@pytest.fixture
def standin(shared_standin: Local) -> Local:
    """The shared stand-in server, idle and fresh. Every test leaves it so."""
    return _fresh(shared_standin)


class TestSimulatorArguments:
    """The simulator gets the declared fleet and the caller's arguments for its name."""

    def test_the_leased_simulator_serves_the_declared_fleet_from_its_own_folder(
        self, sim: Local
    ) -> None:
        lease = sim.pool.lease(timeout=5)
        try:
            answer = httpx.get(lease.server.url + "/devices/", timeout=5, trust_env=False)
            user = _logged_in_as(lease.server.url)
        finally:
            lease.release(builds=0)
        assert (lease.server.simulated, lease.server.remote) == (True, False)
        assert user == USERNAME
        assert answer.status_code == 200
        assert _declared_fleet_only([d["id"] for d in answer.json()["devices"]])
        assert lease.server.name == "server-1"
        assert PRINTER.name in (sim.fleet_dir("server-1") / "printers.json").read_text("utf-8")

    def test_a_recycled_simulator_gets_them_again_and_is_logged_in_again(
        self, sim: Local
    ) -> None:
        before = sim.status()
        with capture_logs() as logs:
            sim.pool.lease(timeout=5).release(builds=RECYCLE_AFTER)
            after = sim.wait(lambda s: s.state is ServerState.IDLE)
        assert after.pid != before.pid and after.generation == before.generation + 1
        (logged_in,) = _events(logs, "server_logged_in")
        assert (logged_in["server"], logged_in["username"]) == ("server-1", USERNAME)
        lease = sim.pool.lease(timeout=5)
        try:
            answer = httpx.get(lease.server.url + "/devices/", timeout=5, trust_env=False)
            user = _logged_in_as(lease.server.url)
        finally:
            lease.release(builds=0)
        assert lease.server.pid == after.pid
        assert _declared_fleet_only([d["id"] for d in answer.json()["devices"]])
        assert user == USERNAME
        assert list(_records(sim.records)) == [after.pid]

    def test_a_sequence_of_arguments_goes_to_every_simulator(self, tmp_path: Path) -> None:
        servers = _servers(recycle_after_builds=0)
        with ServerPool(PoolSettings(servers=servers), handle_signals=False,
                        simulator_args=("--fleet-dir", str(tmp_path / "fleet")),
                        state_dir=tmp_path / "records") as pool:
            assert [s.state for s in pool.status()] == [ServerState.IDLE]
            with pool.lease(timeout=5) as lease:
                answer = httpx.get(lease.server.url + "/devices/", timeout=5, trust_env=False)
        assert answer.status_code == 200
        assert (tmp_path / "fleet" / "printers.json").is_file()  # the simulator used it

    def test_a_real_server_gets_no_simulator_arguments(self, tmp_path: Path) -> None:
        # The stand-in refuses unknown options, as PreFormServer would: it would not start.
        pool = _standin_pool(tmp_path, simulator_args=("--fleet-dir", str(tmp_path / "fleet")))
        with pool:
            assert [s.state for s in pool.status()] == [ServerState.IDLE]
            assert not pool.simulated
            with pool.lease(timeout=5) as lease:
                assert not lease.server.simulated


class TestRecords:
    """Each running server is recorded for reaping, and only while it runs."""

    def test_the_running_server_is_recorded_with_its_owner_port_and_command(
        self, standin: Local
    ) -> None:
        status = standin.status()
        records = _records(standin.records)
        assert list(records) == [status.pid]
        record = records[status.pid]
        assert (record.name, record.port) == ("server-1", status.port)
        assert record.server.host == this_host()
        assert record.server.create_time == psutil.Process(status.pid).create_time()
        assert (record.owner.pid, record.owner.host) == (os.getpid(), this_host())
        assert record.command == tuple(psutil.Process(status.pid).cmdline())
        assert record.started_at == standin.clock.now()
        assert (standin.records / ServerRecord.file_name_of(status.pid, this_host(),
                                                             this_instance())).is_file()

    def test_closing_stops_the_servers_and_removes_their_records(self, tmp_path: Path) -> None:
        pool = _standin_pool(tmp_path, count=2)
        with pool:
            pids = [s.pid for s in pool.status()]
            assert None not in pids
            assert sorted(_records(tmp_path / "records")) == sorted(pids)
            with pool.lease(timeout=5) as lease:  # either one: both idle since they started
                assert lease.server.pid in pids
            with capture_logs() as logs:
                pool.close()
        assert process_tree_alive(p for p in pids if p is not None) == []
        assert _records(tmp_path / "records") == {}
        assert [s.state for s in pool.status()] == [ServerState.STOPPED] * 2
        (closed,) = _events(logs, "pool_closed")
        assert sorted(closed["stopped"]) == ["server-1", "server-2"]


class TestRecyclingAfterBuilds:
    """After RECYCLE_AFTER builds a server is replaced by a fresh process on the next lease."""

    def test_builds_below_the_limit_keep_the_process_and_the_limit_recycles_it(
        self, standin: Local
    ) -> None:
        before = standin.status()
        assert before.pid is not None
        with capture_logs() as logs:
            standin.pool.lease(timeout=5).release()
            kept = standin.status()
            assert (kept.pid, kept.state, kept.builds) == (before.pid, ServerState.IDLE, 1)
            standin.pool.lease(timeout=5).release()
            with pytest.raises(LeaseTimeoutError) as caught:
                standin.pool.lease(timeout=0.01)  # while it is recycled nobody gets it
            after = standin.wait(lambda s: s.state is ServerState.IDLE)
        assert "(1 recycling)" in caught.value.message
        assert after.pid != before.pid and after.pid is not None
        assert process_tree_alive([before.pid]) == []
        assert (after.builds, after.total_builds - before.total_builds) == (0, 2)
        assert (after.generation, after.restarts) == (before.generation + 1, before.restarts + 1)
        assert after.last_error == before.last_error  # recycling records no error
        (recycled,) = _events(logs, "server_recycled")
        assert (recycled["server"], recycled["reason"], recycled["builds"], recycled["pid"]) == (
            "server-1", "builds", 2, before.pid)
        assert recycled["rss_mb"] == 0  # the build limit decided: the memory was not measured
        assert _events(logs, "server_restart_scheduled") == []  # recycling is no failure
        assert list(_records(standin.records)) == [after.pid]  # the old record went with it
        lease = standin.pool.lease(timeout=5)
        try:
            assert (lease.server.pid, lease.server.generation) == (after.pid, after.generation)
            assert lease.server.port == after.port
            assert httpx.get(lease.server.url + "/", timeout=5, trust_env=False).is_success
        finally:
            lease.release(builds=0)

    def test_one_release_counting_the_limit_at_once_recycles(self, standin: Local) -> None:
        before = standin.status()
        standin.pool.lease(timeout=5).release(builds=RECYCLE_AFTER)
        assert standin.status().state is ServerState.RECYCLING
        after = standin.wait(lambda s: s.state is ServerState.IDLE)
        assert (after.generation, after.builds) == (before.generation + 1, 0)
        assert after.total_builds == before.total_builds + RECYCLE_AFTER

    def test_releasing_without_builds_never_recycles(self, standin: Local) -> None:
        before = standin.status()
        for _ in range(RECYCLE_AFTER + 1):
            standin.pool.lease(timeout=5).release(builds=0)
        after = standin.status()
        assert (after.state, after.pid, after.generation) == (
            ServerState.IDLE, before.pid, before.generation)

    def test_a_failed_build_is_checked_not_counted_and_not_recycled(self, standin: Local) -> None:
        before = standin.status()
        standin.pool.lease(timeout=5).release()  # one build short of the limit
        with capture_logs() as logs:
            standin.pool.lease(timeout=5).report_failure(ServerInternalError("support: HTTP 500"))
            after = standin.wait(lambda s: s.state is ServerState.IDLE)
        assert (after.pid, after.generation, after.builds) == (before.pid, before.generation, 1)
        assert _events(logs, "server_recycled") == []
        # An unhealthy release counts what it says, but has the server checked, not recycled.
        standin.pool.lease(timeout=5).release(healthy=False, builds=RECYCLE_AFTER)
        after = standin.wait(lambda s: s.state is ServerState.IDLE)
        assert (after.pid, after.builds) == (before.pid, 1 + RECYCLE_AFTER)
        standin.pool.lease(timeout=5).release(builds=0)  # the count already passed the limit
        recycled = standin.wait(lambda s: s.state is ServerState.IDLE)
        assert (recycled.generation, recycled.builds) == (before.generation + 1, 0)


class TestRecyclingAboveTheMemoryLimit:
    """A server whose memory is above recycle_rss_mb after a build is recycled."""

    def test_a_server_above_the_limit_is_recycled_saying_how_big_it_was(
        self, tmp_path: Path
    ) -> None:
        local = Local(_standin_pool(tmp_path, recycle_rss_mb=1.0), ManualClock(), tmp_path)
        with local.pool:  # any Python program is bigger than 1 MiB
            before = local.status()
            assert before.pid is not None
            size = _rss_mb(before.pid)
            with capture_logs() as logs:
                local.pool.lease(timeout=5).release(builds=0)
                after = local.wait(lambda s: s.state is ServerState.IDLE)
            records = list(_records(local.records))
        assert after.pid != before.pid
        assert (after.generation, after.restarts) == (before.generation + 1, 1)
        (recycled,) = _events(logs, "server_recycled")
        assert (recycled["reason"], recycled["builds"], recycled["pid"]) == ("rss", 0, before.pid)
        # Measured just before, on an idle process: the same size, to the logged 0.1 MiB.
        assert recycled["rss_mb"] == pytest.approx(size, abs=0.06)
        assert recycled["rss_mb"] == round(recycled["rss_mb"], 1)
        assert records == [after.pid]


#: The stand-in's ballast for the size test: large enough that a size reported in any other
#: unit than MiB (1,048,576 bytes) is off by more than the 0.1 MiB the event is rounded to.
BALLAST_MB = 300


class TestTheRecycledServersSize:
    """The size a memory recycle reports is the server's resident memory in MiB."""

    def test_a_large_server_is_reported_at_its_size_in_mebibytes(self, tmp_path: Path) -> None:
        pool = _standin_pool(tmp_path, recycle_rss_mb=float(BALLAST_MB // 2),
                             extra_args=("--grow-mb", str(BALLAST_MB)))
        local = Local(pool, ManualClock(), tmp_path)
        with local.pool:
            before = local.status()
            assert before.pid is not None
            size = _rss_mb(before.pid)
            with capture_logs() as logs:
                local.pool.lease(timeout=5).release(builds=0)
                local.wait(lambda s: s.state is ServerState.IDLE and s.pid != before.pid)
        assert size > BALLAST_MB
        (recycled,) = _events(logs, "server_recycled")
        assert (recycled["reason"], recycled["pid"]) == ("rss", before.pid)
        # Its ballast touched and the server idle, the size holds still between the two
        # readings: what the log says is what psutil says, to the 0.1 MiB it is rounded to.
        assert recycled["rss_mb"] == pytest.approx(size, abs=0.06)


class TestAKilledServer:
    """A server killed from outside is noticed while idle and restarted after its backoff."""

    def test_it_is_restarted_as_a_new_generation_once_the_backoff_has_passed(
        self, standin: Local
    ) -> None:
        before = standin.status()
        assert before.pid is not None
        with capture_logs() as logs:
            psutil.Process(before.pid).kill()
            waiting = standin.wait(lambda s: s.state is ServerState.RESTARTING)
            assert waiting.pid is None
            assert waiting.last_error == f"process exited (exit code {-signal.SIGKILL})"
            with pytest.raises(LeaseTimeoutError) as caught:
                standin.pool.lease(timeout=0.01)
            standin.clock.advance(BACKOFF_S)
            after = standin.wait(lambda s: s.state is ServerState.IDLE)
        assert "(1 restarting)" in caught.value.message
        assert after.pid not in (None, before.pid)
        assert (after.generation, after.restarts) == (before.generation + 1, before.restarts + 1)
        (exited,) = _events(logs, "server_exited")
        assert (exited["server"], exited["exit_code"]) == ("server-1", -signal.SIGKILL)
        assert "READY FOR INPUT" in exited["output_tail"]  # its last words, for the log
        (scheduled,) = _events(logs, "server_restart_scheduled")
        assert (scheduled["server"], scheduled["reason"]) == ("server-1", waiting.last_error)
        assert (scheduled["backoff_s"], scheduled["failures_in_window"]) == (BACKOFF_S, 1)
        (restarting,) = _events(logs, "server_restarting")
        assert (restarting["server"], restarting["reason"], restarting["restarts"]) == (
            "server-1", "restart", after.restarts)
        # A local server's restart is said as before session 45's quieter remotes (a
        # warning, then info), never as a remote's outage.
        assert (scheduled["log_level"], restarting["log_level"]) == ("warning", "info")
        assert not [e for e in logs if e["event"].startswith("remote_server")]
        _eventually("the dead server's record is removed",
                    lambda: list(_records(standin.records)) == [after.pid])
        lease = standin.pool.lease(timeout=5)
        try:
            assert lease.server.pid == after.pid
            assert httpx.get(lease.server.url + "/", timeout=5, trust_env=False).is_success
        finally:
            lease.release(builds=0)


class TestStandInServers:
    """What needs a server that misbehaves, or many restarts, runs on the stand-in server."""

    def test_a_server_that_cannot_start_is_retired_with_its_last_words_and_no_record(
        self, tmp_path: Path
    ) -> None:
        pool = _standin_pool(tmp_path, max_restarts=0, extra_args=("--fail-start",))
        with capture_logs() as logs, pool:
            (status,) = pool.status()
        assert status.state is ServerState.RETIRED
        assert status.last_error is not None and status.last_error.startswith(
            "server-1 exited during start-up (exit code 7); last output: ")
        (retired,) = _events(logs, "server_retired")
        assert "fatal: stand-in told to fail at start" in retired["output_tail"]
        assert _records(tmp_path / "records") == {}

    def test_a_recycled_server_gets_its_port_back(self, tmp_path: Path) -> None:
        # One port only, and the probe says every port is free: only the pool's own
        # bookkeeping decides whether the port of the stopped server may be used again.
        port = _free_port()
        pool = _standin_pool(tmp_path, base_port=port, port_attempts=1, recycle_after_builds=1,
                             port_probe=lambda p: True)
        with capture_logs() as logs, pool:
            for generation in (2, 3):
                pool.lease(timeout=5).release()
                (status,) = pool.wait_for(lambda s, g=generation: s[0].generation == g
                                          and s[0].state is ServerState.IDLE, WAIT_S)
                assert (status.port, status.restarts) == (port, generation - 1)
        # The recycled processes were stopped and forgotten: closing stops only the last.
        assert [e["stopped"] for e in _events(logs, "pool_closed")] == [["server-1"]]

    def test_a_state_folder_that_cannot_be_written_does_not_stop_the_servers(
        self, tmp_path: Path
    ) -> None:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the state folder's parent should be", "utf-8")
        servers = _servers(executable=write_standin_server(tmp_path),
                           command_prefix=(sys.executable,))
        pool = ServerPool(PoolSettings(servers=servers), handle_signals=False,
                          state_dir=blocker / "records")
        with capture_logs() as logs, pool:
            (status,) = pool.status()
            assert status.pid is not None
            with pool.lease(timeout=5) as lease:
                assert httpx.get(lease.server.url + "/", timeout=5, trust_env=False).is_success
        assert status.state is ServerState.IDLE
        assert process_tree_alive([status.pid]) == []  # closing still stopped it
        (failed,) = _events(logs, "server_record_failed")
        assert (failed["server"], failed["folder"]) == ("server-1", str(blocker / "records"))
        assert "Not a directory" in failed["error"]
        (kept,) = _events(logs, "server_record_not_removed")
        assert (kept["server"], kept["folder"]) == ("server-1", str(blocker / "records"))
        assert "Not a directory" in kept["error"]
        assert [e["server"] for e in _events(logs, "server_stopped")] == ["server-1"]
        assert [e["stopped"] for e in _events(logs, "pool_closed")] == [["server-1"]]

    def test_a_server_slower_than_the_startup_timeout_fails_its_start(
        self, tmp_path: Path
    ) -> None:
        pool = _standin_pool(tmp_path, max_restarts=0, startup_timeout_s=0.5,
                             extra_args=("--slow-start", "5"))
        with pool:
            (status,) = pool.status()
        assert status.state is ServerState.RETIRED
        assert status.last_error is not None
        assert "no 'READY FOR INPUT' within 0.5 s" in status.last_error

    def test_a_server_that_finds_its_port_taken_is_started_on_the_next(
        self, tmp_path: Path, held_port: int
    ) -> None:
        # The probe says every port is free: only the server itself can notice. Other
        # tests running alongside may hold the next port too (CI once saw exactly that),
        # so the test asks for what a user sees: each port found taken is named, in turn,
        # and the server runs on the first one that was not.
        pool = _standin_pool(tmp_path, base_port=held_port, port_attempts=5,
                             port_probe=lambda p: True)
        with capture_logs() as logs, pool:
            (status,) = pool.status()
        assert status.state is ServerState.IDLE and status.port is not None
        assert held_port < status.port <= held_port + 4
        in_use = _events(logs, "server_port_in_use")
        assert [(e["server"], e["port"]) for e in in_use] == [
            ("server-1", port) for port in range(held_port, status.port)]

    def test_an_idle_server_that_stops_answering_is_checked_and_taken_out(
        self, tmp_path: Path
    ) -> None:
        clock = ManualClock()
        pool = _standin_pool(tmp_path, clock=clock, max_restarts=0, health_interval_s=1.0,
                             health_timeout_s=0.3, extra_args=("--hang-health",))
        with capture_logs() as logs, pool:
            ready = pool.status()[0]
            assert ready.state is ServerState.IDLE  # ready; never asked yet
            clock.advance(1)
            pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, WAIT_S)
        (unhealthy,) = _events(logs, "server_unhealthy")
        assert (unhealthy["server"], unhealthy["url"], unhealthy["reason"],
                unhealthy["log_level"]) == (
            "server-1", ready.url, "no answer within 0.3 s (hung)", "warning")
        (retired,) = _events(logs, "server_retired")
        assert "READY FOR INPUT" in retired["output_tail"]

    def test_a_restarting_server_says_it_is_starting_until_it_is_ready(
        self, tmp_path: Path
    ) -> None:
        clock = ManualClock()
        pool = _standin_pool(tmp_path, clock=clock, extra_args=("--slow-start", "0.6"))
        with pool:
            (before,) = pool.status()
            assert before.pid is not None
            psutil.Process(before.pid).kill()
            pool.wait_for(lambda s: s[0].state is ServerState.RESTARTING, WAIT_S)
            clock.advance(BACKOFF_S)
            pool.wait_for(lambda s: s[0].state is ServerState.STARTING, WAIT_S)
            with pytest.raises(LeaseTimeoutError, match=r"\(1 starting\)"):
                pool.lease(timeout=0.01)
            pool.wait_for(lambda s: s[0].state is ServerState.IDLE, WAIT_S)


RUNNER = """
import json, sys
from pathlib import Path
from preform_pipeline.servers import ServerPool
from preform_pipeline.servers.testing import standin_settings

pool = ServerPool(standin_settings(Path(sys.argv[1])).pool, state_dir=Path(sys.argv[2]))
pool.start()
print(json.dumps([s.pid for s in pool.status()]), flush=True)
"""  # and exits without close(): the pool must not keep it alive, and atexit stops the server


class TestARunnerExiting:
    """A runner that ends without closing its pool still ends, and takes its servers along."""

    def test_it_exits_at_once_and_leaves_no_server_or_record(self, tmp_path: Path) -> None:
        script = tmp_path / "runner.py"
        script.write_text(RUNNER, encoding="utf-8")
        finished = subprocess.run(
            [sys.executable, str(script), str(write_standin_server(tmp_path)),
             str(tmp_path / "records")],
            capture_output=True, text=True, timeout=WAIT_S, check=False,
            cwd=Path(__file__).resolve().parents[3],
        )
        assert finished.returncode == 0, finished.stderr
        pids = json.loads(finished.stdout)
        assert len(pids) == 1
        assert process_tree_alive(pids) == []
        assert _records(tmp_path / "records") == {}


class TestAServerKilledOnceTooOften:
    """A server out of restarts that dies is retired, with its last words in the log."""

    def test_it_is_retired_saying_how_it_ended(self, tmp_path: Path) -> None:
        pool = _standin_pool(tmp_path, max_restarts=0)
        with capture_logs() as logs, pool:
            (before,) = pool.status()
            assert before.pid is not None
            psutil.Process(before.pid).kill()
            (status,) = pool.wait_for(lambda s: s[0].state is ServerState.RETIRED, WAIT_S)
        assert status.last_error == f"process exited (exit code {-signal.SIGKILL})"
        (retired,) = _events(logs, "server_retired")
        assert "READY FOR INPUT" in retired["output_tail"]


class TestABrokenWorker:
    """A failure inside the pool's own work never leaves a server stuck in a busy state."""

    def test_a_failing_argument_function_counts_as_a_failed_start(self, tmp_path: Path) -> None:
        def arguments(name: str) -> Sequence[str]:
            raise ValueError(f"no arguments for {name}")

        pool = ServerPool(PoolSettings(servers=_servers(max_restarts=0)), handle_signals=False,
                          simulator_args=arguments, state_dir=tmp_path / "records")
        with capture_logs() as logs, pool:
            (status,) = pool.status()
        assert status.state is ServerState.RETIRED
        assert status.last_error == "internal error: ValueError('no arguments for server-1')"
        (failed,) = _events(logs, "server_worker_failed")
        assert (failed["server"], failed["work"], failed["log_level"]) == (
            "server-1", "start", "error")
        (retired,) = _events(logs, "server_retired")
        assert retired["output_tail"] == ""
