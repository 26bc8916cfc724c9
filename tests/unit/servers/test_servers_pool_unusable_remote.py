"""A server that answers, but as no PreFormServer this client can use, is refused at once.

Real loopback HTTP: each remote is a hostile front (tests/hostile_http.py) answering ``GET /``
as a server of the Local API range, as another web server (404, or a NAS's home page with a
200), an old PreFormServer (405), a PreFormServer of a version outside the range, or a proxy
that wants https:// (nginx's 400 page). Asking such a server again gets the same answer, so
it is not waited for ``servers.remote_wait_s`` like a remote that is down. A local server
(the stand-in, a real process) of a version outside the range is refused as it starts, not
restarted.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import PoolExhaustedError
from preform_pipeline.servers import ServerPool, ServerState
from preform_pipeline.servers.testing import standin_settings, write_standin_server
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from tests.hostile_http import NGINX_HTTPS_PORT_PAGE, HostileFront, reply, running_front

WAIT_S = 10.0
#: The default wait: a refused remote must not take it (nor any of it).
SERVERS = ServerSettings(count=0, health_timeout_s=2, health_interval_s=0, remote_wait_s=300,
                         restart_backoff_s=30, restart_backoff_max_s=30)
USED_AT_THIS_ADDRESS = "it answers, but cannot be used at this address: "
SETTINGS_SAID = "; that address is this remote's url under remotes in the settings"


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.fixture
def fronts() -> Iterator[dict[str, HostileFront]]:
    """A remote of the range (``good``), one without ``GET /`` (``nas``), one behind a proxy
    that wants https:// (``proxy``)."""
    with ExitStack() as stack:
        made = {name: stack.enter_context(running_front()) for name in ("good", "nas", "proxy")}
        made["good"].on("GET", "/", reply(200, json.dumps({"version": "0.9.12"})))
        made["nas"].on("GET", "/", reply(404, "<html>Not Found</html>", content_type="text/html"))
        made["proxy"].on("GET", "/", reply(400, NGINX_HTTPS_PORT_PAGE, content_type="text/html"))
        yield made
        for front in made.values():
            front.check()


def _dead_url(stack: ExitStack) -> str:
    """A loopback port held but not listening: connections to it are refused."""
    held = stack.enter_context(socket.socket())
    held.bind(("127.0.0.1", 0))
    return f"http://127.0.0.1:{held.getsockname()[1]}"


class TestRefusedAtOnce:
    """The unusable remote is retired at its first check, said once; the others carry on."""

    def test_beside_a_usable_and_a_dead_remote(self, fronts: dict[str, HostileFront]) -> None:
        with ExitStack() as stack:
            remotes = (RemoteServer(fronts["nas"].url, name="nas"),
                       RemoteServer(fronts["good"].url, name="good"),
                       RemoteServer(_dead_url(stack), name="dead"))
            pool = ServerPool(PoolSettings(servers=SERVERS, remotes=remotes),
                              handle_signals=False)
            with capture_logs() as logs, pool:
                nas, good, dead = pool.status()
                with pool.lease(timeout=WAIT_S) as lease:
                    assert lease.server.name == "good"
        assert (nas.state, nas.refused) == (ServerState.RETIRED, True)
        assert nas.retired_reason == nas.last_error
        assert nas.retired_reason is not None
        assert nas.retired_reason.startswith(
            f"{USED_AT_THIS_ADDRESS}the server has no Local API version endpoint (GET / "
            "answered 404): it is not a PreFormServer, or one older than Local API 0.9.0")
        assert nas.retired_reason.endswith(SETTINGS_SAID)
        assert good.state is ServerState.IDLE
        # A remote that does not answer at all is still waited for.
        assert (dead.state, dead.refused) == (ServerState.RESTARTING, False)
        (retired,) = _events(logs, "server_retired")
        assert (retired["server"], retired["refused"]) == ("nas", True)
        assert retired["remaining"] == ["good", "dead"]
        assert {e["server"] for e in _events(logs, "remote_server_waiting")} == {"dead"}
        assert {e["server"] for e in _events(logs, "remote_server_not_answering")} == {"dead"}
        assert len(fronts["nas"].requests_to("/")) == 1  # asked once, never again

    def test_none_left_fails_the_lease_at_once_naming_it(
        self, fronts: dict[str, HostileFront]
    ) -> None:
        remotes = (RemoteServer(fronts["proxy"].url, name="printhost"),)
        with capture_logs() as logs, ServerPool(PoolSettings(servers=SERVERS, remotes=remotes),
                                                 handle_signals=False) as pool:
            with pytest.raises(PoolExhaustedError) as raised:
                pool.lease(timeout=WAIT_S)
            (status,) = pool.status()
        assert status.retired_reason == (
            f'{USED_AT_THIS_ADDRESS}the server answered HTTP 400 "The plain HTTP request was '
            "sent to HTTPS port\": its address needs https:// (use the https:// address of "
            f"this server){SETTINGS_SAID}")
        # Said whole once (the event); the build failing for it names it without repeating.
        assert "https://" not in str(raised.value)
        assert "printhost: refused (why and what helps were said when it was)" \
            in str(raised.value)
        assert "raise servers.max_restarts" not in str(raised.value)
        assert len(_events(logs, "server_retired")) == 1
        assert not _events(logs, "remote_server_waiting")


class TestNoPreFormServerOfTheRange:
    """A 200 that is no Local API version, or a version outside the range, is refused at the
    first check, said once with what answered, what was expected and what helps."""

    @pytest.mark.parametrize("version, said", [
        (None, 'the server answered GET / with an HTML page titled "DiskStation", where a '
         'PreFormServer answers its Local API version (JSON {"version": "0.9.12"}; this '
         "client supports >=0.9.0,<1.0.0): another web server answers at this address (a "
         "NAS's or a router's page, or a wrong port) (check the host and the port, and that "
         "PreFormServer runs there)"),
        ("1.2.0", "the server speaks Local API 1.2.0; this client supports >=0.9.0,<1.0.0 "
         "(written against 0.9.12) (run a PreFormServer release whose API version is in that "
         "range, or upgrade preform-pipeline)"),
    ], ids=["nas-home-page", "version-1.2"])
    def test_a_remote_is_retired_at_its_first_check(self, version: str | None,
                                                     said: str) -> None:
        with running_front() as front:
            front.on("GET", "/", reply(
                200, "<html><head><title>DiskStation</title></head></html>",
                content_type="text/html") if version is None
                else reply(200, json.dumps({"version": version})))
            pool = ServerPool(PoolSettings(servers=SERVERS,
                                           remotes=(RemoteServer(front.url, name="nas"),)),
                              handle_signals=False)
            with capture_logs() as logs, pool:
                with pytest.raises(PoolExhaustedError):
                    pool.lease(timeout=WAIT_S)
                (status,) = pool.status()
            front.check()
        assert (status.state, status.refused) == (ServerState.RETIRED, True)
        assert status.retired_reason == f"{USED_AT_THIS_ADDRESS}{said}{SETTINGS_SAID}"
        (retired,) = _events(logs, "server_retired")
        assert (retired["server"], retired["reason"]) == ("nas", status.retired_reason)
        assert not _events(logs, "remote_server_waiting")
        assert len(front.requests_to("/")) == 1

    def test_a_local_server_of_another_version_is_refused_as_it_starts(
        self, tmp_path: Path
    ) -> None:
        settings = standin_settings(write_standin_server(tmp_path), "--api-version", "1.0.0",
                                    max_restarts=3)
        pool = ServerPool(settings.pool, handle_signals=False, state_dir=tmp_path / "state")
        with capture_logs() as logs, pool:
            with pytest.raises(PoolExhaustedError, match=r"server-1: refused \(why"):
                pool.lease(timeout=WAIT_S)
            (status,) = pool.status()
            # Its process was stopped at once, not kept aside for builds.
            left = [p for p in psutil.Process().children(recursive=True)
                    if str(tmp_path) in " ".join(p.cmdline())]
        assert left == []
        assert (status.state, status.refused, status.restarts) == (
            ServerState.RETIRED, True, 0)
        assert status.retired_reason == (
            "it started, but cannot be used: the server speaks Local API 1.0.0; this client "
            "supports >=0.9.0,<1.0.0 (written against 0.9.12) (run a PreFormServer release "
            "whose API version is in that range, or upgrade preform-pipeline); the program is "
            "servers.executable in the settings")
        (retired,) = _events(logs, "server_retired")
        assert retired["refused"] is True
        assert not _events(logs, "server_restart_scheduled")


class TestOnlyTheFirstAnswerRefuses:
    """A remote that answered as a PreFormServer at its address, and then answers 404 (a
    proxy such as Traefik while the server behind it restarts), is waited for, not refused:
    its address was right, and it may come back."""

    def test_a_404_after_a_good_answer_is_waited_for(self) -> None:
        servers = ServerSettings(count=0, health_timeout_s=2, health_interval_s=0,
                                 remote_wait_s=300, restart_backoff_s=0.05,
                                 restart_backoff_max_s=0.05)
        with running_front() as front:
            version = reply(200, json.dumps({"version": "0.9.12"}))
            front.on("GET", "/", version, times=1)
            front.on("GET", "/", reply(404, "404 page not found"), times=1)
            front.on("GET", "/", version)
            pool = ServerPool(PoolSettings(servers=servers,
                                           remotes=(RemoteServer(front.url, name="printhost"),)),
                              handle_signals=False)
            with capture_logs() as logs, pool:
                pool.lease(timeout=WAIT_S).report_failure()  # checked again: the 404
                with pool.lease(timeout=WAIT_S) as lease:  # and back
                    assert lease.server.name == "printhost"
                (status,) = pool.status()
            front.check()
        assert status.refused is False
        assert not _events(logs, "server_retired")
        assert [e["server"] for e in _events(logs, "remote_server_back")] == ["printhost"]
        assert len(front.requests_to("/")) == 3

    def test_a_version_outside_the_range_later_is_refused_as_at_first(self) -> None:
        """Upgraded mid-run (or another server put at its address): the server's own
        version, no proxy's page; waiting for it would wait forever (remote_wait_s)."""
        servers = ServerSettings(count=0, health_timeout_s=2, health_interval_s=0,
                                 remote_wait_s=300, restart_backoff_s=0.05,
                                 restart_backoff_max_s=0.05)
        with running_front() as front:
            front.on("GET", "/", reply(200, json.dumps({"version": "0.9.12"})), times=1)
            front.on("GET", "/", reply(200, json.dumps({"version": "1.2.0"})))
            pool = ServerPool(PoolSettings(servers=servers,
                                           remotes=(RemoteServer(front.url, name="printhost"),)),
                              handle_signals=False)
            with capture_logs() as logs, pool:
                pool.lease(timeout=WAIT_S).report_failure()  # checked again: 1.2.0
                with pytest.raises(PoolExhaustedError, match=r"printhost: refused \(why"):
                    pool.lease(timeout=WAIT_S)
                (status,) = pool.status()
            front.check()
        assert (status.state, status.refused) == (ServerState.RETIRED, True)
        assert status.retired_reason == (
            f"{USED_AT_THIS_ADDRESS}the server speaks Local API 1.2.0; this client supports "
            ">=0.9.0,<1.0.0 (written against 0.9.12) (run a PreFormServer release whose API "
            f"version is in that range, or upgrade preform-pipeline){SETTINGS_SAID}")
        (retired,) = _events(logs, "server_retired")
        assert retired["refused"] is True
        assert not _events(logs, "remote_server_waiting")
        assert len(front.requests_to("/")) == 2
