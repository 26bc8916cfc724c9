"""What the pool says of a remote that does not answer (servers/pool.py,
``remote_server_not_answering``): once, with how it is asked again, which
``servers.remote_wait_s`` decides (s45-mutants: the words no test read). Real loopback: a port
held but not listening, so each connection is refused."""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings


@pytest.mark.parametrize(("remote_wait_s", "waiting"), [
    (300.0, "asked again with backoff for up to servers.remote_wait_s (300 s)"),
    (0.5, "asked again with backoff for up to servers.remote_wait_s (0.5 s)"),
    (0.0, "asked again up to servers.max_restarts times (servers.remote_wait_s is 0)"),
])
def test_a_dead_remote_is_said_with_how_it_is_asked_again(
    remote_wait_s: float, waiting: str
) -> None:
    servers = ServerSettings(count=0, health_timeout_s=2, health_interval_s=0,
                             remote_wait_s=remote_wait_s, restart_backoff_s=30,
                             restart_backoff_max_s=30)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        dead = RemoteServer(f"http://127.0.0.1:{held.getsockname()[1]}", name="dead")
        with capture_logs() as logs, ServerPool(PoolSettings(servers=servers, remotes=(dead,)),
                                                 handle_signals=False):
            pass

    said = [e for e in logs if e["event"] == "remote_server_not_answering"]
    assert [(e["server"], e["waiting"]) for e in said] == [("dead", waiting)]
