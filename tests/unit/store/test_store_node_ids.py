"""One daemon per node id on a shared store (session 42's farm trial): a second daemon given a
running node's id (a settings file copied to the next PC, two daemons on one PC with the
default id) is refused as it registers, naming the holder, and changes nothing; a node whose
previous life was killed, stopped or went silent registers at once, and one whose holder is
not proven to run (another PC, container or boot) waits for its beat, at most a lease (real
PostgreSQL, real processes for "still runs"; liveness.py's one rule for "gone")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline import __version__
from preform_pipeline.errors import NodeIdInUseError
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.store.leases import DEFAULT_LEASE_S, NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.presence import NodePresence
from tests.conftest import REPO_ROOT
from tests.instances import other_instance
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import admin_connection

HOST = socket.gethostname()
#: A short lease for the tests that wait one out.
SHORT_LEASE_S = 2.0


def _here(pid: int) -> NodeInfo:
    """prep-1 as the daemon of process ``pid`` of this host (running) registers it."""
    identity = ProcessIdentity.of_running(pid)
    assert identity is not None
    return NodeInfo(id="prep-1", host=HOST, version=__version__, pid=pid,
                    process=identity.label())


def _elsewhere(pid: int = 4242) -> NodeInfo:
    """prep-1 as a daemon of another PC registers it."""
    return NodeInfo(id="prep-1", host="prep-pc-1", version="0.1.0", pid=pid,
                    process=f"prep-pc-1:{pid}:1700000000.000:{other_instance()}")


def _holder(store: PostgresJobStore) -> tuple[str, int | None]:
    (status,) = [s for s in store.list_nodes() if s.info.id == "prep-1"]
    return status.info.host, status.info.pid


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real process of this host that is not the test: the other daemon's pid."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


class TestASecondDaemonWithARunningNodesId:
    def test_from_another_host_is_refused_naming_it_and_changes_nothing(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_elsewhere())
        with pytest.raises(NodeIdInUseError) as refused:
            pg_store.register_node(_here(os.getpid()))
        assert str(refused.value).startswith(
            "node id 'prep-1' is in use by a running daemon (host prep-pc-1, pid 4242, "
            "last heartbeat ")
        assert "give each daemon its own store.node_id" in (refused.value.hint or "")
        assert "the id is free in 60 s" in (refused.value.hint or "")
        assert not refused.value.running
        assert _holder(pg_store) == ("prep-pc-1", 4242)

    def test_from_another_live_process_of_this_host_is_refused(
        self, pg_store: PostgresJobStore, other_process: subprocess.Popen[bytes]
    ) -> None:
        pg_store.register_node(_here(other_process.pid))
        with pytest.raises(NodeIdInUseError, match=f"host {HOST}, pid {other_process.pid}") as \
                refused:
            pg_store.register_node(_here(os.getpid()))
        assert refused.value.running
        assert _holder(pg_store) == (HOST, other_process.pid)

    def test_of_this_host_name_in_another_container_is_not_taken_for_gone(
        self, pg_store: PostgresJobStore
    ) -> None:
        """A pid no process here has, of another pid namespace of this host name: that
        container's daemon may run; only its beat can tell."""
        absent = 4_000_000 + os.getpid() % 100_000
        assert not psutil.pid_exists(absent)
        pg_store.register_node(replace(
            _elsewhere(absent), host=HOST,
            process=f"{HOST}:{absent}:1700000000.000:{other_instance()}"))
        with pytest.raises(NodeIdInUseError) as refused:
            pg_store.register_node(_here(os.getpid()))
        assert not refused.value.running
        assert _holder(pg_store) == (HOST, absent)


class TestANodeWhosePreviousLifeEnded:
    def test_registers_at_once_after_a_kill_on_this_host(
        self, pg_store: PostgresJobStore, other_process: subprocess.Popen[bytes]
    ) -> None:
        pg_store.register_node(_here(other_process.pid))
        other_process.kill()
        other_process.wait(timeout=30)
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())

    def test_registers_at_once_when_its_pid_now_names_another_process(
        self, pg_store: PostgresJobStore, other_process: subprocess.Popen[bytes]
    ) -> None:
        """Killed, and its pid reused by an unrelated process: that process started at
        another moment, so it is not the holder (liveness.py)."""
        reused = ProcessIdentity.of_running(other_process.pid)
        assert reused is not None
        killed = replace(reused, create_time=reused.create_time - 600, start_ticks=None)
        pg_store.register_node(replace(_here(other_process.pid), process=killed.label()))
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())

    def test_registers_after_a_clean_stop_elsewhere(self, pg_store: PostgresJobStore) -> None:
        pg_store.register_node(_elsewhere())
        pg_store.node_stopped("prep-1")
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())

    def test_registers_once_its_heartbeat_is_a_lease_old(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        pg_store.register_node(_elsewhere())
        with admin_connection(pg_url) as admin:
            admin.execute("UPDATE nodes SET heartbeat_at = now() - make_interval(secs => %s) "
                          "WHERE id = 'prep-1'", (DEFAULT_LEASE_S + 1,))
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())

    def test_the_same_process_registering_again_is_itself(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_here(os.getpid()))
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())


class TestAStartingDaemonWhoseHolderIsNotProvenToRun:
    def test_waits_for_a_silent_holder_at_most_a_lease_and_says_so(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        """Another PC's name (a container recreated under a new host name, the same PC after
        a reboot): its own previous life, perhaps; taken once its beat is a lease old."""
        pg_store.register_node(_elsewhere())
        with PostgresJobStore(pg_url, password=PG_PASSWORD) as mine, capture_logs() as logs:
            presence = NodePresence(mine, _here(os.getpid()), lease_s=SHORT_LEASE_S)
            began = time.monotonic()
            presence.start()
            took = time.monotonic() - began
            presence.close()
        assert SHORT_LEASE_S * 0.5 < took < SHORT_LEASE_S + 5
        (waiting,) = [e for e in logs if e["event"] == "node_id_waiting"]
        assert (waiting["host"], waiting["pid"]) == ("prep-pc-1", 4242)
        assert 0 < waiting["free_in_s"] <= SHORT_LEASE_S
        assert _holder(pg_store) == (HOST, os.getpid())

    @pytest.mark.timeout(60)  # a starter that does not watch the beat waits for ever
    def test_is_refused_when_the_holder_beats_while_it_waits(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        pg_store.register_node(_elsewhere())
        stop = threading.Event()

        def other_daemon() -> None:  # beats as a live node does, a third of a lease apart
            with PostgresJobStore(pg_url, password=PG_PASSWORD) as theirs:
                while not stop.wait(SHORT_LEASE_S / 3):
                    theirs.heartbeat("prep-1")

        beating = threading.Thread(target=other_daemon)
        beating.start()
        try:
            with PostgresJobStore(pg_url, password=PG_PASSWORD) as mine:
                presence = NodePresence(mine, _here(os.getpid()), lease_s=SHORT_LEASE_S)
                with pytest.raises(NodeIdInUseError, match="host prep-pc-1, pid 4242"):
                    presence.start()
        finally:
            stop.set()
            beating.join(timeout=30)
        assert _holder(pg_store) == ("prep-pc-1", 4242)


class TestWatchWithARunningNodesId:
    def test_exits_1_at_once_with_the_holder_and_no_traceback(
        self, pg_store: PostgresJobStore, pg_url: str, tmp_path: Path,
        other_process: subprocess.Popen[bytes],
    ) -> None:
        pg_store.register_node(replace(_here(other_process.pid), host=HOST))
        (tmp_path / "inbox").mkdir()
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"store:\n  url: {pg_url}\n  node_id: prep-1\n  start_wait_s: 0\n"
            f"hotfolders:\n  inboxes:\n    - path: {tmp_path / 'inbox'}\n      recipe: "
            f"{REPO_ROOT / 'recipes' / 'engineering-grey-form4.yaml'}\n",
            encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet"],
            capture_output=True, text=True, timeout=30, cwd=REPO_ROOT, check=False,
            env={**os.environ, PASSWORD_ENV: PG_PASSWORD})
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(
            f"error: node id 'prep-1' is in use by a running daemon (host {HOST}, pid "
            f"{other_process.pid}, last heartbeat "), result.stderr
        assert "Traceback" not in result.stderr
        assert _holder(pg_store) == (HOST, other_process.pid)
