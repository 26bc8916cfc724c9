"""Where no operating-system tie kills a server with its owner, the next runner reaps it.

``untied_owner_child.py`` starts a pool whose server is not tied to it (as on macOS) and is
killed with SIGKILL; its server survives. A new pool's ``start()`` must then stop that server,
log ``server_reaped`` and remove the record, while a live process whose PID a stale record
names (a recycled PID) is left running. The test never stops the orphan itself: if it is
still running at the end, it is killed as a safety net and the test fails.

POSIX only (SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.servers import ServerPool
from preform_pipeline.servers.process import process_tree_alive
from preform_pipeline.servers.reaper import describe_reaped, reap_orphans
from preform_pipeline.servers.records import ServerRecord, ServerRecords
from preform_pipeline.settings import ServerSettings, Settings
from tests.instances import earlier_in_this_boot

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("untied_owner_child.py")
WAIT_S = 30.0
GONE_TIMEOUT_S = 5.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _waiting_process(*argv: str) -> subprocess.Popen[str]:
    """A harmless Python process that runs until its stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", *argv],
        stdin=subprocess.PIPE, text=True,
    )


def _dead_identity() -> ProcessIdentity:
    """The identity of a process that has ended (and was waited for)."""
    process = _waiting_process()
    identity = ProcessIdentity.of_running(process.pid)
    assert identity is not None
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=WAIT_S)
    return identity


def _record(server: ProcessIdentity, owner: ProcessIdentity, port: int) -> ServerRecord:
    return ServerRecord(
        server=server, owner=owner, name="server-1", port=port,
        command=("preformserver", "--port", str(port)),
        started_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
    )


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[str]]:
    """An unrelated live process whose command line even asks for a port."""
    process = _waiting_process("--port", "44388")
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=WAIT_S)


class TestOrphanReaped:
    """A server its killed owner left running is stopped when the next pool starts."""

    def test_the_next_pool_reaps_an_untied_orphan_and_logs_it(self, tmp_path: Path) -> None:
        state_dir = tmp_path / "state"
        owner = subprocess.Popen(
            [sys.executable, str(CHILD), str(state_dir)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=_environment(), start_new_session=True,
        )
        orphans: list[int] = []
        try:
            assert owner.stdout is not None
            assert owner.stdout.readline().strip() == "ready"
            records = [r for _, r in ServerRecords(state_dir).read_all() if r is not None]
            assert [r.owner.pid for r in records] == [owner.pid]
            orphans = [records[0].server.pid]
            port = records[0].port
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait(timeout=WAIT_S)
            assert process_tree_alive(orphans) == orphans, "untied: the server outlives its owner"

            settings = Settings(servers=ServerSettings(
                count=1, base_port=0, startup_timeout_s=30, health_interval_s=0,
                stop_timeout_s=2,
            ))
            with capture_logs() as logs, ServerPool(settings.pool, state_dir=state_dir) as pool:
                reaped = pool.reaped
                wait_for(lambda: not process_tree_alive(orphans), GONE_TIMEOUT_S,
                         what="the orphan gone")
                # The new pool's own server is recorded; the orphan's record is gone.
                left = [r for _, r in ServerRecords(state_dir).read_all() if r is not None]
                assert [r.owner.pid for r in left] == [os.getpid()]
            assert [(r.pid, r.port, r.owner_pid) for r in reaped] == [
                (orphans[0], port, owner.pid)
            ]
            events = [e for e in logs if e["event"] == "server_reaped"]
            assert [(e["pid"], e["port"], e["owner_pid"]) for e in events] == [
                (orphans[0], port, owner.pid)
            ]
            assert f"pid {orphans[0]} on port {port} (owner pid {owner.pid})" in (
                describe_reaped(reaped)
            )
            assert ServerRecords(state_dir).read_all() == []  # closing removed its own
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(owner.pid, signal.SIGKILL)
            owner.wait(timeout=WAIT_S)
            left = process_tree_alive(orphans)
            for pid in left:  # the safety net: the test fails below either way
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).kill()
            assert not left, f"the orphan was not reaped: {left}"


#: A process that shows no command line (it zeroes its arguments, as the kernel shows them
#: between an exec and the new program's arguments being set up), says so, and waits.
SHOWS_NO_COMMAND_LINE = (
    "import ctypes, sys\n"
    # arg_start and arg_end: fields 48 and 49 of /proc/self/stat, after the name's ')'.
    "fields = open('/proc/self/stat').read().rpartition(')')[2].split()\n"
    "ctypes.memset(int(fields[45]), 0, int(fields[46]) - int(fields[45]))\n"
    "print('cleared', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
class TestAServerThatShowsNoCommandLine:
    """Is still the recorded server when its PID and start are: it is reaped.

    A server read right after its start shows none (``Popen`` returns before the kernel has set
    up the new program's arguments): the reaper took it for another program, removed its
    record and left it running (``test_watch_reaps_orphans.py`` failed so, 2 in 366 runs under
    load, session 38).
    """

    def test_it_is_killed_and_reported(self, tmp_path: Path) -> None:
        server = subprocess.Popen(
            [sys.executable, "-c", SHOWS_NO_COMMAND_LINE, "--port", "44387"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "cleared"
            assert not any(psutil.Process(server.pid).cmdline())
            identity = ProcessIdentity.of_running(server.pid)
            assert identity is not None
            records = ServerRecords(tmp_path)
            records.add(_record(identity, _dead_identity(), 44387))
            with capture_logs() as logs:
                reaped = reap_orphans(records)
            assert [(r.pid, r.port) for r in reaped] == [(server.pid, 44387)]
            assert [e["event"] for e in logs] == ["server_reaped"]
            assert records.read_all() == []
            assert server.wait(timeout=WAIT_S) in (-signal.SIGKILL, 0)  # 0: the reaper waited
        finally:
            if server.poll() is None:  # the safety net: the test has failed already
                server.kill()
                server.wait(timeout=WAIT_S)


class TestNeverTheWrongProcess:
    """A record never makes the reaper kill a process that is not the server it started."""

    def test_a_recycled_pid_with_another_start_time_is_not_killed(
        self, tmp_path: Path, bystander: subprocess.Popen[str]
    ) -> None:
        records = ServerRecords(tmp_path)
        live = ProcessIdentity.of_running(bystander.pid)
        assert live is not None
        older = ProcessIdentity(live.pid, earlier_in_this_boot(live.create_time), live.host)
        records.add(_record(older, _dead_identity(), 44388))
        with capture_logs() as logs:
            assert reap_orphans(records) == ()
        assert bystander.poll() is None
        assert records.read_all() == []
        assert [(e["event"], e["pid"], e["reason"]) for e in logs] == [
            ("server_record_stale", live.pid, "PID reused by another process")
        ]

    def test_a_process_that_is_not_a_server_of_that_port_is_not_killed(
        self, tmp_path: Path, bystander: subprocess.Popen[str]
    ) -> None:
        records = ServerRecords(tmp_path)
        live = ProcessIdentity.of_running(bystander.pid)
        assert live is not None
        records.add(_record(live, _dead_identity(), 50123))  # it asks for 44388
        assert reap_orphans(records) == ()
        assert bystander.poll() is None
        assert records.read_all() == []

    def test_the_servers_of_a_live_owner_are_left_alone(
        self, tmp_path: Path, bystander: subprocess.Popen[str]
    ) -> None:
        records = ServerRecords(tmp_path)
        live = ProcessIdentity.of_running(bystander.pid)
        assert live is not None
        records.add(_record(live, ProcessIdentity.current(), 44388))
        assert reap_orphans(records) == ()
        assert bystander.poll() is None
        assert len(records.read_all()) == 1

    def test_a_record_of_a_server_that_is_gone_is_removed(self, tmp_path: Path) -> None:
        records = ServerRecords(tmp_path)
        records.add(_record(_dead_identity(), _dead_identity(), 44388))
        with capture_logs() as logs:
            assert reap_orphans(records) == ()
        assert records.read_all() == []
        assert [e["reason"] for e in logs if e["event"] == "server_record_stale"] == [
            "server gone"
        ]
