"""The daemon's lock and the server records of a process in another pid namespace of this
host (another container with the same host name, sharing the store's folder and the state
folder) are never judged by a pid that here names another process: the lock is judged by the
lock its holder keeps on the file (heldfile.py: refused while held, taken over once its
holder is killed), the records are left to their own container (a real child in a new pid
namespace made by ``unshare``, its real lock and records).

Linux-specific: where the system does not let a test make a pid namespace, the tests are
skipped and say why (the rules are also tested with records naming another namespace:
tests/unit/store/test_store_daemon_lock_rules.py,
tests/unit/servers/test_servers_reaper_instances.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreLockedError
from preform_pipeline.liveness import (
    ProcessIdentity,
    sees_every_process,
    this_host,
    this_instance,
)
from preform_pipeline.servers.reaper import reap_orphans
from preform_pipeline.servers.records import ServerRecords
from preform_pipeline.store.daemon_lock import DaemonLock, LockHolder, lock_path_of
from tests.instances import (
    OURS,
    child_environment,
    in_new_pid_namespace,
    program_pid,
    started_alone,
)

CHILD = Path(__file__).resolve().parent / "hold_lock_and_server_child.py"
PORT = "44391"


def _container(tmp_path: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """A daemon-like child in a new pid namespace, holding the lock of ``tmp_path``'s store
    and a server recorded in ``tmp_path / "state"`` (``extra``: the child's further words),
    started at a moment no other process started at."""
    prefix = in_new_pid_namespace()
    if prefix is None:
        pytest.skip("this system does not let a test make a pid namespace (unshare)")

    def reset() -> None:  # what a child killed before it was used left
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
        for left in tmp_path.glob("jobs.sqlite3*"):
            left.unlink()

    child = started_alone(
        [*prefix, sys.executable, str(CHILD), str(tmp_path / "jobs.sqlite3"),
         str(tmp_path / "state"), PORT, *extra], env=child_environment(), ready="READY",
        reset=reset)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The child of this version: its lock and record name its instance."""
    yield from _container(tmp_path)


@pytest.fixture
def earlier_container(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The same, of an earlier version: its lock and record name no instance; its command
    line names our program."""
    yield from _container(tmp_path, OURS)


class TestAnotherContainersDaemonLock:
    """Its holder's pid is another process here, but the lock it keeps on the file is seen
    from every container: refused while it runs, taken over once it is killed (kill -9:
    nothing released, as when its container goes away)."""

    @pytest.mark.timeout(60)
    def test_refused_while_it_runs_then_taken_over_once_killed(
        self, tmp_path: Path, container: subprocess.Popen[str]
    ) -> None:
        store = tmp_path / "jobs.sqlite3"
        lock = lock_path_of(store)
        written = LockHolder.from_text(lock.read_text(encoding="utf-8"))
        held = written.process
        assert held.host == this_host() and held.instance not in (None, this_instance())
        assert written.held
        with capture_logs() as logs, pytest.raises(StoreLockedError) as caught:
            DaemonLock(store).acquire()
        assert caught.value.message.endswith(
            "still running, in another container of this host (it holds the lock file open)")
        assert caught.value.pid == held.pid
        assert caught.value.hint == "stop that daemon first, or use another store"
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")) == written
        assert logs == []

        os.kill(program_pid(container.pid), signal.SIGKILL)
        assert container.wait(30) != 0
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() == written
        assert [(e["event"], e["reason"]) for e in logs] == [
            ("store_lock_taken_over",
             "holder not running: no process holds its lock file open any more")]
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process == (
            ProcessIdentity.current())


class TestAnotherContainersServerRecords:
    """Its owner's pid is another process here: its record is its own container's to judge."""

    @pytest.mark.timeout(60)
    def test_its_record_is_left_alone(
        self, tmp_path: Path, container: subprocess.Popen[str]
    ) -> None:
        records = ServerRecords(tmp_path / "state")
        before = records.read_all()
        assert [r.owner.instance != this_instance() for _, r in before if r] == [True]
        with capture_logs() as logs:
            assert reap_orphans(records) == ()
        assert records.read_all() == before
        assert [e["event"] for e in logs] == []


class TestAnEarlierVersionsDaemonKilled:
    """An earlier version's daemon in another container (session 34): while it runs, this
    machine's own pid namespace sees a process of ours that started at its lock's moment, and
    the lock and its server are left alone; once it is killed (kill -9: nothing released) no
    such process runs, and the lock is taken over, said, and its server's record goes."""

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    @pytest.mark.timeout(60)
    def test_refused_while_it_runs_then_taken_over_once_killed(
        self, tmp_path: Path, earlier_container: subprocess.Popen[str]
    ) -> None:
        store = tmp_path / "jobs.sqlite3"
        lock = lock_path_of(store)
        written = LockHolder.from_text(lock.read_text(encoding="utf-8"))
        held = written.process
        assert (held.host, held.instance) == (this_host(), None)
        records = ServerRecords(tmp_path / "state")
        before = records.read_all()
        daemon = program_pid(earlier_container.pid)
        with capture_logs() as logs:
            with pytest.raises(StoreLockedError) as caught:
                DaemonLock(store).acquire()
            assert reap_orphans(records) == ()
        # unshare, whose command line runs ours, started in the same instant: both named
        assert ("a process of ours that started at that moment still runs here (pid "
                f"{earlier_container.pid}, {daemon})") in caught.value.message
        assert caught.value.hint.startswith(
            f"check whether pid {earlier_container.pid},{daemon} here, started ")
        assert caught.value.hint.endswith(f"if it is not a daemon on this store, delete {lock}")
        assert (records.read_all(), logs) == (before, [])

        os.kill(daemon, signal.SIGKILL)  # its namespace, its server with it, goes too
        assert earlier_container.wait(30) != 0
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() == written
            reap_orphans(records)
        # The record's server pid is its container's: here another process, never killed.
        assert [(e["event"], e.get("reason")) for e in logs] == [
            ("store_lock_taken_over", "holder of an earlier version not running: no process "
             "of ours that started at its moment runs on this machine"),
            ("server_record_stale", "PID reused by another process")]
        assert records.read_all() == []
