"""A node's presence on a shared store (store/presence.py): registered, beating while it runs,
stopped cleanly, and logging what it could not record (real PostgreSQL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline import __version__
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.store.leases import DEFAULT_LEASE_S, NodeInfo, NodeStatus
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.presence import NodePresence, default_node_id
from tests.pg_cluster import PG_PASSWORD

REPO_ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 30.0
#: Short enough to watch several beats (one a third of it), long enough for a loaded machine.
LEASE_S = 1.5


def _status(store: PostgresJobStore, node_id: str) -> NodeStatus:
    (status,) = [s for s in store.list_nodes() if s.info.id == node_id]
    return status


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        threading.Event().wait(0.02)


def _events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.fixture
def other_store(pg_store: PostgresJobStore, pg_url: str) -> Iterator[PostgresJobStore]:
    """A second connection to the conformance database (closed by the test or afterwards)."""
    store = PostgresJobStore(pg_url, password=PG_PASSWORD)
    yield store
    store.close()


class TestBeating:
    """A started node is registered and beats several times a lease."""

    def test_a_running_node_beats_several_times_a_lease(
        self, pg_store: PostgresJobStore
    ) -> None:
        node = NodeInfo(id="pc-1", host="pc-1.lab", version="9.9", pid=4242,
                        printers=("Form4-A",), machine_types=("FORM-4-0",))
        presence = NodePresence(pg_store, node, lease_s=LEASE_S)
        presence.start()
        try:
            assert _status(pg_store, "pc-1").info == node
            # A beat every third of a lease: within two leases, the registration and at least
            # two beats (six are due), so a loaded machine may miss some.
            beats = {_status(pg_store, "pc-1").heartbeat_at}
            deadline = time.monotonic() + 2 * LEASE_S
            while time.monotonic() < deadline and len(beats) < 3:
                beats.add(_status(pg_store, "pc-1").heartbeat_at)
                threading.Event().wait(0.05)
            assert len(beats) >= 3
        finally:
            presence.close()

    def test_as_a_context_it_registers_and_stops_the_node(
        self, pg_store: PostgresJobStore
    ) -> None:
        node = NodeInfo(id="pc-1", host="pc-1", version="9.9")
        with NodePresence(pg_store, node, lease_s=LEASE_S) as presence:
            assert presence.node == node
            assert _status(pg_store, "pc-1").health(LEASE_S) == "alive"
        assert _status(pg_store, "pc-1").health(LEASE_S) == "stopped"


class TestStopping:
    """Closing stops the beats and records the stop once; a node never started records none."""

    def test_closing_records_the_stop_once(self, pg_store: PostgresJobStore) -> None:
        presence = NodePresence(pg_store, NodeInfo(id="pc-1", host="pc-1", version="9.9"),
                                lease_s=LEASE_S)
        presence.start()
        with capture_logs() as logs:
            presence.close()
            presence.close()
        assert _events(logs, "node_stopped") == [
            {"event": "node_stopped", "log_level": "info", "node": "pc-1"}]
        stopped = _status(pg_store, "pc-1")
        assert stopped.stopped
        assert _status(pg_store, "pc-1").heartbeat_at == stopped.heartbeat_at

    def test_a_node_never_started_records_no_stop(self, pg_store: PostgresJobStore) -> None:
        presence = NodePresence(pg_store, NodeInfo(id="pc-1", host="pc-1", version="9.9"))
        with capture_logs() as logs:
            presence.close()
        assert logs == []
        assert pg_store.list_nodes() == ()


class TestTheBeatThread:
    """The beats run in one named background thread that ends with the presence and never
    keeps a process alive."""

    def test_the_thread_is_named_in_thread_dumps_and_ends_on_close(
        self, pg_store: PostgresJobStore
    ) -> None:
        presence = NodePresence(pg_store, NodeInfo(id="pc-1", host="pc-1", version="9.9"),
                                lease_s=LEASE_S)
        presence.start()
        try:
            (beating,) = [t for t in threading.enumerate() if t.name == "node-heartbeat"]
            assert beating.is_alive()
        finally:
            presence.close()
        assert not beating.is_alive()
        assert "node-heartbeat" not in [t.name for t in threading.enumerate()]

    def test_a_process_that_never_closes_its_presence_still_exits(self, pg_url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), PASSWORD_ENV: PG_PASSWORD}
        script = (
            "import sys\n"
            "from preform_pipeline.store.leases import NodeInfo\n"
            "from preform_pipeline.store.postgres import PostgresJobStore\n"
            "from preform_pipeline.store.presence import NodePresence\n"
            "store = PostgresJobStore(sys.argv[1])\n"
            "NodePresence(store, NodeInfo(id='pc-exit', host='pc', version='9.9'),\n"
            "             lease_s=0.3).start()\n"
            "print('started', flush=True)\n"
        )
        process = subprocess.Popen([sys.executable, "-c", script, pg_url], env=env,
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert process.wait(WAIT_S) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT_S)
        assert process.stdout is not None and process.stdout.read() == "started\n"


class TestTheDatabaseAway:
    """Beats that fail are logged and retried; a stop that cannot be recorded is logged."""

    def test_failed_beats_are_logged_and_tried_again_and_the_stop_too(
        self, other_store: PostgresJobStore, pg_store: PostgresJobStore
    ) -> None:
        presence = NodePresence(other_store, NodeInfo(id="pc-1", host="pc-1", version="9.9"),
                                lease_s=0.3)
        with capture_logs() as logs:
            presence.start()
            other_store.close()
            _wait_until(lambda: len(_events(logs, "node_heartbeat_failed")) >= 2,
                        "two failed beats")
            presence.close()
        closed = f"{other_store.location}: the job store is closed"
        failed = _events(logs, "node_heartbeat_failed")
        assert failed[0] == {"event": "node_heartbeat_failed", "log_level": "warning",
                             "node": "pc-1", "error": closed}
        assert _events(logs, "node_stop_not_recorded") == [
            {"event": "node_stop_not_recorded", "log_level": "warning", "node": "pc-1",
             "error": closed}]
        assert not _status(pg_store, "pc-1").stopped


class TestThisPc:
    """``for_this_pc`` describes this process on this host, under the given or the PC's name."""

    def test_the_node_is_this_process_with_its_printers_and_lease(
        self, pg_store: PostgresJobStore
    ) -> None:
        presence = NodePresence.for_this_pc(pg_store, node_id="bench-3", lease_s=7.5,
                                            printers=("Form4-A", "Form4-B"),
                                            machine_types=("FORM-4-0",))
        assert presence.node == NodeInfo(id="bench-3", host=socket.gethostname(),
                                         version=__version__, pid=os.getpid(),
                                         printers=("Form4-A", "Form4-B"),
                                         machine_types=("FORM-4-0",),
                                         process=ProcessIdentity.current().label())
        assert presence.lease_s == 7.5
        assert presence.store is pg_store

    def test_without_a_name_the_node_is_named_after_the_pc(
        self, pg_store: PostgresJobStore
    ) -> None:
        presence = NodePresence.for_this_pc(pg_store)
        assert presence.node.id == default_node_id()
        assert presence.node.printers == () and presence.node.machine_types == ()
        assert presence.lease_s == DEFAULT_LEASE_S

    @pytest.mark.parametrize(("hostname", "node_id"), [
        ("Lab-PC.example.org", "lab-pc"), ("BENCH3", "bench3"), ("", "node"),
    ])
    def test_the_pc_s_name_is_its_first_label_in_lower_case(
        self, monkeypatch: pytest.MonkeyPatch, hostname: str, node_id: str
    ) -> None:
        monkeypatch.setattr(socket, "gethostname", lambda: hostname)
        assert default_node_id() == node_id
