"""The reaper judges a record's owner by the one rule of liveness.py for records kept on this
machine: an owner in another pid namespace of this boot (another container of this host name
sharing the state folder) is not ours to judge, so its server is never killed and its record
stays; an owner of an earlier boot has ended, and its record goes without killing anything
(real waiting processes stand in for the servers; the instances are written into the records).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.liveness import ProcessIdentity, sees_every_process
from preform_pipeline.servers.reaper import reap_orphans
from preform_pipeline.servers.records import ServerRecord, ServerRecords
from tests.instances import other_instance, ours_running, quiet_moment

PORT = 44392


@pytest.fixture
def server() -> Iterator[subprocess.Popen[str]]:
    """A live process whose command line asks for the recorded port, as a server's does."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()",
                                "--port", str(PORT)], stdin=subprocess.PIPE, text=True)
    yield process
    if process.stdin is not None:
        process.stdin.close()
    process.wait(30)


def _recorded(
    folder: Path, server: subprocess.Popen[str], instance: str | None,
    owner_started: float | None = None,
) -> ServerRecords:
    """``server`` recorded as the server of an owner that, here, is another process (started
    at ``owner_started``, else 100 s before this one), both of ``instance``."""
    running = ProcessIdentity.of_running(server.pid)
    me = ProcessIdentity.current()
    assert running is not None
    started = me.create_time - 100.0 if owner_started is None else owner_started
    records = ServerRecords(folder)
    records.add(ServerRecord(
        server=ProcessIdentity(running.pid, running.create_time, running.host, instance),
        owner=ProcessIdentity(me.pid, started, me.host, instance),
        name="server-1", port=PORT, command=("preformserver", "--port", str(PORT)),
        started_at=datetime(2026, 12, 6, tzinfo=timezone.utc)))
    return records


class TestAnotherContainersRecord:
    """Its pids are not ours: nothing is killed, nothing removed, nothing said. A record of an
    earlier version (its owner names no instance, and its pid runs no process of that start
    here) may be another container's live run too, while a process of ours that started at
    the owner's moment runs on this machine."""

    @pytest.mark.parametrize("instance", [
        other_instance(),
        pytest.param(None, marks=pytest.mark.skipif(
            not sys.platform.startswith("linux"), reason="instances are named on Linux only")),
    ], ids=["another-container", "an-earlier-version"])
    @pytest.mark.timeout(60)
    def test_its_server_runs_on_and_its_record_stays(
        self, tmp_path: Path, server: subprocess.Popen[str], instance: str | None
    ) -> None:
        with ours_running() as owner:
            alike = ProcessIdentity.of_running(owner.pid)
            assert alike is not None
            records = _recorded(tmp_path, server, instance, owner_started=alike.create_time)
            before = records.read_all()
            with capture_logs() as logs:
                assert reap_orphans(records) == ()
        assert server.poll() is None
        assert records.read_all() == before
        assert logs == []


class TestAnEarlierVersionsOrphan:
    """Its owner names no instance, and no process that may be ours started at the owner's
    moment runs anywhere on this machine (session 34): the owner was killed, and its server,
    still running, is an orphan to stop as any other."""

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    def test_its_server_is_stopped_and_its_record_goes(
        self, tmp_path: Path, server: subprocess.Popen[str]
    ) -> None:
        records = _recorded(tmp_path, server, None, owner_started=quiet_moment())
        with capture_logs() as logs:
            reaped = reap_orphans(records, timeout_s=30.0)
        assert [(r.pid, r.killed) for r in reaped] == [(server.pid, (server.pid,))]
        # (the reaper waited for it, so it is reaped: psutil took its exit status)
        assert ProcessIdentity.of_running(server.pid) is None
        assert records.read_all() == []
        assert [e["event"] for e in logs] == ["server_reaped"]


class TestAnEarlierBootsRecord:
    """This machine before a restart: its owner has ended and its server with it, so the record
    goes; a process running now is never that server, whatever its pid and start time."""

    def test_the_record_goes_and_nothing_is_killed(
        self, tmp_path: Path, server: subprocess.Popen[str]
    ) -> None:
        records = _recorded(tmp_path, server, other_instance(boot=True))
        with capture_logs() as logs:
            assert reap_orphans(records) == ()
        assert server.poll() is None
        assert records.read_all() == []
        assert [(e["event"], e["reason"]) for e in logs] == [
            ("server_record_stale", "PID reused by another process")]
