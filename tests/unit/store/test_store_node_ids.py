"""One daemon per node id on a shared store (session 42's farm trial): a second daemon given a
running node's id (a settings file copied to the next PC, two daemons on one PC with the
default id) is refused as it registers, naming the holder, and changes nothing; a node whose
previous life was killed, stopped or went silent registers at once (real PostgreSQL, real
processes for "still runs")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline import __version__
from preform_pipeline.errors import NodeIdInUseError
from preform_pipeline.store.leases import DEFAULT_LEASE_S, NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.conftest import REPO_ROOT
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import admin_connection

HOST = socket.gethostname()


def _here(pid: int | None) -> NodeInfo:
    return NodeInfo(id="prep-1", host=HOST, version=__version__, pid=pid)


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
        pg_store.register_node(NodeInfo(id="prep-1", host="prep-pc-1", version="0.1.0",
                                        pid=4242))
        with pytest.raises(NodeIdInUseError) as refused:
            pg_store.register_node(_here(os.getpid()))
        assert str(refused.value).startswith(
            "node id 'prep-1' is in use by a running daemon (host prep-pc-1, pid 4242, "
            "last heartbeat ")
        assert "give each daemon its own store.node_id" in (refused.value.hint or "")
        assert _holder(pg_store) == ("prep-pc-1", 4242)

    def test_from_another_live_process_of_this_host_is_refused(
        self, pg_store: PostgresJobStore, other_process: subprocess.Popen[bytes]
    ) -> None:
        pg_store.register_node(_here(other_process.pid))
        with pytest.raises(NodeIdInUseError, match=f"host {HOST}, pid {other_process.pid}"):
            pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, other_process.pid)


class TestANodeWhosePreviousLifeEnded:
    def test_registers_at_once_after_a_kill_on_this_host(
        self, pg_store: PostgresJobStore, other_process: subprocess.Popen[bytes]
    ) -> None:
        pg_store.register_node(_here(other_process.pid))
        other_process.kill()
        other_process.wait(timeout=30)
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())

    def test_registers_after_a_clean_stop_elsewhere(self, pg_store: PostgresJobStore) -> None:
        pg_store.register_node(NodeInfo(id="prep-1", host="prep-pc-1", version="0.1.0"))
        pg_store.node_stopped("prep-1")
        pg_store.register_node(_here(os.getpid()))
        assert _holder(pg_store) == (HOST, os.getpid())

    def test_registers_once_its_heartbeat_is_a_lease_old(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        pg_store.register_node(NodeInfo(id="prep-1", host="prep-pc-1", version="0.1.0"))
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


class TestWatchWithARunningNodesId:
    def test_exits_1_at_once_with_the_holder_and_no_traceback(
        self, pg_store: PostgresJobStore, pg_url: str, tmp_path: Path
    ) -> None:
        pg_store.register_node(NodeInfo(id="prep-1", host="prep-pc-1", version="0.1.0",
                                        pid=4242))
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
            "error: node id 'prep-1' is in use by a running daemon (host prep-pc-1, pid 4242, "
            "last heartbeat "), result.stderr
        assert "Traceback" not in result.stderr
        assert _holder(pg_store) == ("prep-pc-1", 4242)
