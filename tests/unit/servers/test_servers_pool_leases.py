"""Leasing, failures, restarts and closing, on remote endpoints served over loopback HTTP."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud.login import ENV_DASHBOARD_PASSWORD, ENV_DASHBOARD_USERNAME
from preform_pipeline.errors import (
    LeaseTimeoutError,
    PipelineError,
    PoolExhaustedError,
    ServerInternalError,
    ServerTimeoutError,
)
from preform_pipeline.servers import ServerPool, ServerState, ServerStatus
from preform_pipeline.servers.pool import SUPERVISOR_TICK_S
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings

WAIT_S = 10.0
LOGIN_ENV = {ENV_DASHBOARD_USERNAME: "lab@example.com", ENV_DASHBOARD_PASSWORD: "pool-test-secret"}


class Endpoint:
    """A loopback HTTP server answering ``GET /`` like a PreFormServer, healthy or not, and
    ``POST /login/`` (recording who logged in; ``hang_login`` keeps the answer back)."""

    def __init__(self) -> None:
        self.healthy = True
        self.checks = 0  # GET / answered so far
        #: While set, ``GET /`` waits until it is cleared (a health check in flight).
        self.hold_health = threading.Event()
        self.logins: list[str] = []
        self.hang_login = threading.Event()
        self._stop = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                username = json.loads(self.rfile.read(length))["username"]
                if endpoint.hang_login.is_set():
                    endpoint._stop.wait()
                    return
                endpoint.logins.append(username)
                body = b'{"access_token": "a", "refresh_token": "r"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                deadline = time.monotonic() + WAIT_S
                while endpoint.hold_health.is_set() and time.monotonic() < deadline:
                    endpoint._stop.wait(0.02)
                endpoint.checks += 1
                status, body = (200, b'{"version": "0.9.12"}') if endpoint.healthy else (
                    500, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=WAIT_S)


@pytest.fixture
def endpoints() -> Iterator[Callable[[int], list[Endpoint]]]:
    made: list[Endpoint] = []

    def make(n: int) -> list[Endpoint]:
        made.extend(Endpoint() for _ in range(n))
        return made[-n:]

    yield make
    for endpoint in made:
        endpoint.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def pools() -> Iterator[list[ServerPool]]:
    made: list[ServerPool] = []
    yield made
    for pool in made:
        pool.close()


def _pool(pools: list[ServerPool], targets: Sequence[Endpoint | str], clock: ManualClock,
          env: Mapping[str, str] | None = None, **overrides: Any) -> ServerPool:
    servers = ServerSettings(**{
        "count": 0, "health_interval_s": 0.0, "health_timeout_s": 2.0, "remote_wait_s": 0.0,
        "max_restarts": 2, "crash_window_s": 100.0, "restart_backoff_s": 1.0,
        "restart_backoff_max_s": 4.0, **overrides})
    remotes = tuple(
        RemoteServer(t if isinstance(t, str) else t.url + "/", name=f"r{i + 1}")
        for i, t in enumerate(targets))
    pool = ServerPool(PoolSettings(servers=servers, remotes=remotes), clock=clock,
                      handle_signals=False, env=env if env is not None else {})
    pools.append(pool)
    return pool


@pytest.fixture
def start(pools: list[ServerPool], clock: ManualClock) -> Callable[..., ServerPool]:
    """Starts a pool over ``targets`` (endpoints or URLs) with settings ``overrides``."""

    def make(targets: Sequence[Endpoint | str], **overrides: Any) -> ServerPool:
        pool = _pool(pools, targets, clock, **overrides)
        pool.start()
        return pool

    return make


@pytest.fixture
def one_remote(start: Callable[..., ServerPool],
               endpoints: Callable[[int], list[Endpoint]]) -> ServerPool:
    """A started pool of one healthy remote, ``r1``."""
    pool: ServerPool = start(endpoints(1))
    return pool


def _one(pool: ServerPool, name: str) -> ServerStatus:
    return next(s for s in pool.status() if s.name == name)


def _state(name: str, state: ServerState) -> Callable[[tuple[ServerStatus, ...]], bool]:
    return lambda statuses: any(s.name == name and s.state is state for s in statuses)


def _never(pool: ServerPool, happened: Callable[[], bool]) -> None:
    """Assert that ``happened()`` stays false for three supervisor ticks (what the pool would
    need to act on a due check)."""
    with pytest.raises(TimeoutError):
        pool.wait_for(lambda _: happened(), 3 * SUPERVISOR_TICK_S)


def _checked_again(pool: ServerPool, clock: ManualClock, checks: int, *, after_s: float,
                   name: str = "r1") -> None:
    """Move the clock ``after_s`` on, to a down remote's next check, and wait until it
    (``name``) has been checked again ``checks`` times in all and is still down."""
    clock.advance(after_s)
    pool.wait_for(lambda statuses: any(
        s.name == name and s.rechecks == checks and s.state is ServerState.RESTARTING
        for s in statuses), WAIT_S)


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


class TestLeasing:
    """A lease holds one remote exclusively; the server idle longest goes first."""

    def test_a_remote_lease_says_where_to_send_and_that_it_is_remote(
        self, pools: list[ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = _pool(pools, [endpoint], clock)
        with capture_logs() as logs:
            pool.start()
        lease = pool.lease(timeout=1)
        server = lease.server
        assert (server.name, server.url, server.remote, server.simulated) == (
            "r1", endpoint.url, True, False)
        assert (server.port, server.pid, server.generation) == (None, None, 1)
        assert _one(pool, "r1").state is ServerState.LEASED
        starting = _events(logs, "pool_starting")[0]
        assert (starting["servers"], starting["mode"], starting["simulated"]) == (
            ["r1"], "REMOTE", False)
        started = _events(logs, "pool_started")[0]
        assert (started["ready"], started["total"], started["mode"]) == (["r1"], 1, "REMOTE")

    def test_builds_are_counted_and_the_server_idle_longest_is_leased_next(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        pool = start(endpoints(2))
        first = pool.lease(timeout=1)
        second = pool.lease(timeout=1)
        clock.advance(1)
        second.release(builds=3)
        clock.advance(1)
        first.release()
        assert pool.lease(timeout=1).server.name == second.server.name
        status = _one(pool, second.server.name)
        assert (status.builds, status.total_builds) == (3, 3)

    def test_a_server_back_from_a_check_waits_behind_the_ones_idle_longer(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        pool = start(endpoints(2))
        failed = pool.lease(timeout=1)
        assert failed.server.name == "r1"  # both idle since the start: the first goes first
        clock.advance(1)
        failed.report_failure()  # checked and healthy: back in rotation, idle from now on
        pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        assert pool.lease(timeout=1).server.name == "r2"

    def test_builds_add_up_over_leases(self, one_remote: ServerPool) -> None:
        pool = one_remote
        with capture_logs() as logs:
            pool.lease(timeout=1).release(builds=2)
            pool.lease(timeout=1).release(builds=3)
        assert (_one(pool, "r1").builds, _one(pool, "r1").total_builds) == (5, 5)
        assert [(e["server"], e["builds"]) for e in _events(logs, "server_released")] == [
            ("r1", 2), ("r1", 5)]
        assert [(e["server"], e["url"]) for e in _events(logs, "server_leased")] == [
            ("r1", one_remote.status()[0].url)] * 2

    def test_a_remote_is_never_recycled_whatever_its_builds(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
    ) -> None:
        pool = start(endpoints(1), recycle_after_builds=1, recycle_rss_mb=1.0)
        with capture_logs() as logs:
            pool.lease(timeout=1).release(builds=3)
        status = _one(pool, "r1")
        assert (status.state, status.generation, status.restarts) == (ServerState.IDLE, 1, 0)
        assert _events(logs, "server_recycled") == []

    def test_a_stale_lease_released_again_does_not_free_the_next_holders_server(
        self, one_remote: ServerPool
    ) -> None:
        pool = one_remote
        first = pool.lease(timeout=1)
        first.release()
        second = pool.lease(timeout=1)
        first.release(builds=4)
        first.report_failure()
        status = _one(pool, "r1")
        assert (status.state, status.builds) == (ServerState.LEASED, 1)
        second.release()

    def test_releasing_twice_counts_once(self, one_remote: ServerPool) -> None:
        pool = one_remote
        lease = pool.lease(timeout=1)
        assert not lease.released
        lease.release()
        lease.release()
        lease.report_failure()
        assert lease.released
        assert (_one(pool, "r1").builds, _one(pool, "r1").state) == (1, ServerState.IDLE)

    def test_no_free_server_in_time_says_what_the_servers_are_doing(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
    ) -> None:
        pool = start([*endpoints(2), "http://127.0.0.1:9"])
        pool.lease(timeout=1)
        pool.lease(timeout=1)
        with pytest.raises(LeaseTimeoutError) as caught:
            pool.lease(timeout=0.05)
        assert caught.value.message == (
            "no server became free within 0.05 s (2 leased, 1 restarting)")
        assert caught.value.hint == "raise the lease timeout or servers.count"


class TestFailuresOfARemote:
    """A failure has the remote checked; a hung operation restarts it; too many retire it."""

    def test_a_failure_reported_by_a_build_has_the_server_checked_and_back_in_rotation(
        self, one_remote: ServerPool
    ) -> None:
        pool = one_remote
        with capture_logs() as logs:
            with pool.lease(timeout=1):
                pass  # one build done
            lease = pool.lease(timeout=1)
            lease.report_failure(ServerInternalError("support: HTTP 500"))
            pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        (reported,) = _events(logs, "server_failure_reported")
        assert (reported["server"], reported["error"], reported["error_type"]) == (
            "r1", "support: HTTP 500", "ServerInternalError")
        status = _one(pool, "r1")
        assert (status.builds, status.restarts, status.generation) == (1, 0, 1)

    def test_an_error_leaving_the_with_block_reports_the_failure(
        self, one_remote: ServerPool
    ) -> None:
        pool = one_remote
        with capture_logs() as logs:
            with pytest.raises(ServerInternalError), pool.lease(timeout=1):
                raise ServerInternalError("orient: HTTP 503")
            pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        assert [e["error_type"] for e in _events(logs, "server_failure_reported")] == [
            "ServerInternalError"]
        assert _one(pool, "r1").builds == 0

    def test_an_input_error_leaving_the_with_block_releases_as_healthy(
        self, one_remote: ServerPool
    ) -> None:
        pool = one_remote
        with capture_logs() as logs, pytest.raises(ValueError), pool.lease(timeout=1):
            raise ValueError("bad model")
        assert not _events(logs, "server_failure_reported")
        assert (_one(pool, "r1").state, _one(pool, "r1").builds) == (ServerState.IDLE, 1)

    def test_an_unhealthy_release_without_an_error_reports_none(
        self, one_remote: ServerPool
    ) -> None:
        with capture_logs() as logs:
            one_remote.lease(timeout=1).release(healthy=False)
            one_remote.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        (reported,) = _events(logs, "server_failure_reported")
        assert (reported["server"], reported["error"], reported["error_type"]) == (
            "r1", None, None)

    def test_a_healthy_build_starts_the_backoff_again_from_its_first_step(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        pool = start(endpoints(1), max_restarts=5)
        with capture_logs() as logs:
            for backoff in (1, 2):
                pool.lease(timeout=1).report_failure(ServerTimeoutError("orient: no answer"))
                clock.advance(backoff)
                pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
            pool.lease(timeout=1).release()  # a build went well: the failures are behind it
            pool.lease(timeout=1).report_failure(ServerTimeoutError("orient: no answer"))
        scheduled = [e["next_check_s"] for e in _events(logs, "remote_server_waiting")]
        assert scheduled == [1.0, 2.0, 1.0]

    def test_a_hung_operation_on_a_server_out_of_restarts_retires_it(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
    ) -> None:
        pool = start(endpoints(1), max_restarts=0)
        with capture_logs() as logs:
            pool.lease(timeout=1).report_failure(ServerTimeoutError("hollow: no answer"))
        (retired,) = _events(logs, "server_retired")
        assert (retired["last_error"], retired["output_tail"]) == (
            "operation hung: hollow: no answer", "")
        assert _one(pool, "r1").state is ServerState.RETIRED

    def test_a_hung_operation_has_the_server_checked_again_after_its_backoff(
        self, one_remote: ServerPool, clock: ManualClock
    ) -> None:
        pool = one_remote
        stale = pool.lease(timeout=1)
        with capture_logs() as logs:
            stale.report_failure(ServerTimeoutError("hollow: no answer within 600 s"))
            status = _one(pool, "r1")
            assert status.state is ServerState.RESTARTING
            assert status.last_error == "operation hung: hollow: no answer within 600 s"
            clock.advance(1)
            pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        status = _one(pool, "r1")
        # Checked again, not restarted (session 46: counted as a restart).
        assert (status.rechecks, status.restarts, status.generation) == (1, 0, 2)
        (scheduled,) = _events(logs, "remote_server_waiting")
        assert (scheduled["next_check_s"], scheduled["failures_in_window"]) == (1.0, 1)
        # Another machine's server is only asked again, never said to be restarted.
        assert not _events(logs, "server_restart_scheduled")
        assert not _events(logs, "server_restarting")

    def test_a_remote_that_stays_down_is_retired_with_the_count_and_window(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint], max_restarts=1)
        endpoint.healthy = False
        with capture_logs() as logs:
            pool.lease(timeout=1).report_failure(ServerInternalError("boom"))
            pool.wait_for(_state("r1", ServerState.RESTARTING), WAIT_S)
            clock.advance(1)
            pool.wait_for(_state("r1", ServerState.RETIRED), WAIT_S)
        reason = "2 failures within 100 s; last: health check failed: GET / answered HTTP 500"
        assert _one(pool, "r1").retired_reason == reason
        (retired,) = _events(logs, "server_retired")
        assert (retired["server"], retired["reason"]) == ("r1", reason)
        assert (retired["failures"], retired["window_s"], retired["remaining"]) == (2, 100.0, [])
        assert retired["last_error"] == "health check failed: GET / answered HTTP 500"
        assert retired["output_tail"] == ""  # a remote has no output of ours to show
        (down,) = _events(logs, "remote_server_not_answering")  # once for its outage
        assert down["reason"] == "health check failed: GET / answered HTTP 500"
        assert down["url"] == endpoint.url
        with pytest.raises(PoolExhaustedError) as caught:
            pool.lease(timeout=1)
        assert caught.value.message == f"every server of the pool is retired (r1: {reason})"
        assert caught.value.hint == (
            "see the server_retired log events; fix the server or its settings, "
            "or raise servers.max_restarts")

    def test_when_every_remote_is_retired_the_error_names_each_with_its_reason(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
    ) -> None:
        down = endpoints(2)
        for endpoint in down:
            endpoint.healthy = False
        pool = start(down, max_restarts=0)
        with pytest.raises(PoolExhaustedError) as caught:
            pool.lease(timeout=WAIT_S)
        reason = "1 failure within 100 s; last: health check failed: GET / answered HTTP 500"
        assert caught.value.message == (
            f"every server of the pool is retired (r1: {reason}; r2: {reason})")


class TestRemoteLogins:
    """With a Dashboard login, a remote is logged in when it joins and after each outage."""

    def test_a_remote_is_logged_in_when_it_joins_and_when_it_comes_back_only(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint], env=LOGIN_ENV, health_interval_s=5.0)
        assert endpoint.logins == ["lab@example.com"]
        pool.lease(timeout=1).report_failure()  # checked, healthy: not an outage
        pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        clock.advance(5)  # a periodic check
        pool.wait_for(lambda s: s[0].state is ServerState.IDLE, WAIT_S)
        assert endpoint.logins == ["lab@example.com"]
        with capture_logs() as logs:
            pool.lease(timeout=1).report_failure(ServerTimeoutError("hung"))
            clock.advance(1)
            pool.wait_for(lambda s: s[0].generation == 2
                          and s[0].state is ServerState.IDLE, WAIT_S)
        assert endpoint.logins == ["lab@example.com"] * 2
        (logged_in,) = _events(logs, "server_logged_in")
        assert (logged_in["server"], logged_in["username"]) == ("r1", "lab@example.com")

    def test_a_password_file_named_in_the_settings_is_read_beside_them(
        self, pools: list[ServerPool], endpoints: Callable[[int], list[Endpoint]],
        tmp_path: Path,
    ) -> None:
        (endpoint,) = endpoints(1)
        (tmp_path / "password").write_text("pool-test-secret\n", encoding="utf-8")
        settings = PoolSettings(
            servers=ServerSettings(count=0, health_interval_s=0.0, remote_wait_s=0.0),
            remotes=(RemoteServer(endpoint.url, name="r1"),),
            dashboard_login=MappingProxyType({"username": "lab", "password_file": "password"}),
            dashboard_login_base=tmp_path)
        pool = ServerPool(settings, handle_signals=False, env={})
        pools.append(pool)
        pool.start()
        assert endpoint.logins == ["lab"]

    def test_a_remote_whose_login_hangs_joins_after_the_request_timeout(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
    ) -> None:
        (endpoint,) = endpoints(1)
        endpoint.hang_login.set()
        with capture_logs() as logs:
            pool = start([endpoint], env=LOGIN_ENV, request_timeout_s=0.2)
        assert _one(pool, "r1").state is ServerState.IDLE
        (failed,) = _events(logs, "server_login_failed")
        assert failed["server"] == "r1"


class TestARemoteComingBack:
    """A remote that was down is waited for by time, then counts as a new server."""

    def test_a_remote_back_within_remote_wait_s_is_leased_again_as_a_new_generation(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint], remote_wait_s=60.0, max_restarts=0, restart_backoff_s=1.25,
                     restart_backoff_max_s=5.0)
        endpoint.healthy = False
        with capture_logs() as logs:
            pool.lease(timeout=1).report_failure()
            pool.wait_for(_state("r1", ServerState.RESTARTING), WAIT_S)
            _checked_again(pool, clock, 1, after_s=1.26)
            endpoint.healthy = True
            clock.advance(2.5)
            pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
            # Back for good: a later failure that its check clears is no new outage.
            pool.lease(timeout=1).report_failure()
            pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        waiting = _events(logs, "remote_server_waiting")
        # Times in the log are rounded to a tenth of a second.
        assert [(e["waited_s"], e["next_check_s"]) for e in waiting] == [(0.0, 1.2), (1.3, 2.5)]
        assert {(e["server"], e["url"], e["wait_limit_s"]) for e in waiting} == {
            ("r1", endpoint.url, 60.0)}
        assert {e["reason"] for e in waiting} == {"health check failed: GET / answered HTTP 500"}
        (back,) = _events(logs, "remote_server_back")
        assert (back["server"], back["url"], back["down_s"]) == ("r1", endpoint.url, 3.8)
        assert pool.lease(timeout=1).server.generation == 2

    def test_an_outage_is_said_once_and_again_only_when_it_is_back_or_away_again(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint], remote_wait_s=60.0, restart_backoff_s=1.0,
                     restart_backoff_max_s=1.0)
        endpoint.healthy = False
        with capture_logs() as logs:
            pool.lease(timeout=1).report_failure()
            pool.wait_for(_state("r1", ServerState.RESTARTING), WAIT_S)
            for checks in (1, 2, 3):  # three more checks of the same outage
                _checked_again(pool, clock, checks, after_s=1.0)
            endpoint.healthy = True
            clock.advance(1)
            pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
            endpoint.healthy = False  # away again
            pool.lease(timeout=1).report_failure()
            pool.wait_for(_state("r1", ServerState.RESTARTING), WAIT_S)
        # The lease holder's own report aside, what a console at its warning level shows:
        said = [e["event"] for e in logs if e["log_level"] == "warning"
                and e["event"] != "server_failure_reported"]
        assert said == ["remote_server_not_answering", "remote_server_back",
                        "remote_server_not_answering"]
        down = _events(logs, "remote_server_not_answering")[0]
        assert (down["server"], down["url"], down["reason"]) == (
            "r1", endpoint.url, "health check failed: GET / answered HTTP 500")
        assert down["waiting"] == (
            "asked again with backoff for up to servers.remote_wait_s (60 s)")
        assert down["hint"] == ("check the remote machine, and that its PreFormServer runs "
                                "and answers at this url from here")
        # Each check is in the log file (info), none names a restart the pool never does,
        # nor counts one (session 46: its restarts counted its checks).
        assert len(_events(logs, "remote_server_waiting")) == 5
        assert not [e for e in logs if "restart" in e["event"]]
        (status,) = pool.status()
        assert (status.restarts, status.rechecks) == (0, 4)

    def test_of_two_remotes_only_the_one_down_is_said_while_the_other_takes_the_builds(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        # Review (rv45-loose): the outage's words checked with a pool of two, both checked
        # every second, one of them down for three of its checks.
        up, down = endpoints(2)
        pool = start([up, down], remote_wait_s=60.0, restart_backoff_s=1.0,
                     restart_backoff_max_s=1.0, health_interval_s=1.0)
        down.healthy = False
        with capture_logs() as logs:
            clock.advance(1)  # both due for their periodic check: r2's outage begins
            pool.wait_for(_state("r2", ServerState.RESTARTING), WAIT_S)
            checked = up.checks
            for checks in (1, 2):
                _checked_again(pool, clock, checks, after_s=1.0, name="r2")
                with pool.lease(timeout=WAIT_S) as lease:  # the builds go to r1 meanwhile
                    assert lease.server.name == "r1"
            down.healthy = True
            clock.advance(1)
            pool.wait_for(_state("r2", ServerState.IDLE), WAIT_S)
        assert up.checks > checked  # r1 was checked during r2's outage, and said nothing
        said = [(e["event"], e["server"]) for e in logs if e["log_level"] == "warning"]
        assert said == [("remote_server_not_answering", "r2"), ("remote_server_back", "r2")]
        waiting = _events(logs, "remote_server_waiting")
        assert [(e["server"], e["waited_s"]) for e in waiting] == [
            ("r2", 0.0), ("r2", 1.0), ("r2", 2.0)]
        assert _events(logs, "remote_server_back")[0]["down_s"] == 3.0
        assert not [e for e in logs if "restart" in e["event"]]
        assert (_one(pool, "r1").generation, _one(pool, "r2").generation) == (1, 2)

    def test_a_remote_retired_at_its_first_failure_is_not_said_to_be_asked_again(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
    ) -> None:
        # Review (rv45-loose): with remote_wait_s 0 and max_restarts 0 the outage's warning
        # said "asked again up to servers.max_restarts times" just before server_retired.
        (endpoint,) = endpoints(1)
        pool = start([endpoint], max_restarts=0)
        endpoint.healthy = False
        with capture_logs() as logs:
            pool.lease(timeout=1).report_failure()
            pool.wait_for(_state("r1", ServerState.RETIRED), WAIT_S)
        said = [e["event"] for e in logs if e["log_level"] == "warning"
                and e["event"] != "server_failure_reported"]
        assert said == ["server_retired"]

    def test_a_remote_down_longer_than_remote_wait_s_is_retired_saying_so(
        self, start: Callable[..., ServerPool], clock: ManualClock,
    ) -> None:
        pool = start(["http://127.0.0.1:9"], remote_wait_s=2.0)
        clock.advance(1)
        pool.wait_for(lambda s: s[0].rechecks == 1
                      and s[0].state is ServerState.RESTARTING, WAIT_S)
        clock.advance(2)
        pool.wait_for(_state("r1", ServerState.RETIRED), WAIT_S)
        reason = _one(pool, "r1").retired_reason
        assert reason is not None and reason.startswith(
            "unreachable for 3 s, longer than servers.remote_wait_s (2 s); last: health check "
            "failed: unreachable: ")


class TestPeriodicChecks:
    """An idle remote is checked every health_interval_s; one that stopped answering is
    taken out of rotation."""

    def test_an_idle_remote_that_stopped_answering_is_restarted(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint], health_interval_s=5.0)
        assert endpoint.checks == 1  # when it joined
        endpoint.healthy = False
        clock.advance(4)
        _never(pool, lambda: endpoint.checks > 1)  # not yet due
        assert _one(pool, "r1").state is ServerState.IDLE
        clock.advance(1)
        pool.wait_for(_state("r1", ServerState.RESTARTING), WAIT_S)
        assert _one(pool, "r1").last_error == "health check failed: GET / answered HTTP 500"


    def test_without_an_interval_an_idle_remote_is_never_asked(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint], health_interval_s=0.0)
        clock.advance(10_000)
        _never(pool, lambda: endpoint.checks > 1)
        assert _one(pool, "r1").state is ServerState.IDLE

    def test_a_remote_being_checked_before_its_restart_says_checking(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        (endpoint,) = endpoints(1)
        pool = start([endpoint])
        endpoint.hold_health.set()
        pool.lease(timeout=1).report_failure()  # checked at once: checking until it answers
        assert _one(pool, "r1").state is ServerState.CHECKING
        endpoint.hold_health.clear()
        pool.wait_for(_state("r1", ServerState.IDLE), WAIT_S)
        pool.lease(timeout=1).report_failure(ServerTimeoutError("hung"))
        endpoint.hold_health.set()
        clock.advance(1)
        pool.wait_for(_state("r1", ServerState.CHECKING), WAIT_S)
        with pytest.raises(LeaseTimeoutError, match=r"\(1 checking\)"):
            pool.lease(timeout=0.01)
        # A lease asked for now waits, and gets the server as soon as its check passes.
        threading.Timer(0.1, endpoint.hold_health.clear).start()
        assert pool.lease(timeout=1.0).server.generation == 2


class TestWaitingForAState:
    """wait_for returns the statuses once they hold, and says what it saw when they never do."""

    def test_a_state_that_never_comes_times_out_naming_the_statuses(
        self, one_remote: ServerPool
    ) -> None:
        (idle,) = one_remote.wait_for(lambda s: s[0].state is ServerState.IDLE, WAIT_S)
        assert idle.name == "r1"
        with pytest.raises(TimeoutError, match=r"pool did not reach the expected state: \(Ser"):
            one_remote.wait_for(lambda s: s[0].state is ServerState.RETIRED, 0.05)


class TestClosing:
    """A closed pool stops everything once and cannot be used or started again."""

    def test_a_closed_pool_refuses_leases_and_a_new_start(
        self, start: Callable[..., ServerPool], endpoints: Callable[[int], list[Endpoint]],
        pools: list[ServerPool], clock: ManualClock,
    ) -> None:
        pool = start(endpoints(2))
        with capture_logs() as logs:
            pool.close()
            pool.close()
        assert [s.state for s in pool.status()] == [ServerState.STOPPED] * 2
        assert len(_events(logs, "pool_closed")) == 1
        with pytest.raises(PipelineError, match="the server pool is closed"):
            pool.lease(timeout=1)
        fresh = _pool(pools, endpoints(1), clock)
        fresh.close()
        with pytest.raises(PipelineError, match="the server pool is closed") as caught:
            fresh.start()
        assert caught.value.message == "the server pool is closed"
        assert caught.value.hint == "create a new ServerPool"

    def test_a_waiting_lease_is_woken_by_close(self, one_remote: ServerPool) -> None:
        pool = one_remote
        pool.lease(timeout=1)
        errors: list[BaseException] = []

        def wait() -> None:
            try:
                pool.lease(timeout=WAIT_S)
            except PipelineError as exc:
                errors.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        pool.close()
        waiter.join(WAIT_S)
        assert [str(e) for e in errors] == ["the server pool is closed"]

    def test_starting_twice_starts_once(
        self, pools: list[ServerPool], endpoints: Callable[[int], list[Endpoint]],
        clock: ManualClock,
    ) -> None:
        pool = _pool(pools, endpoints(1), clock)
        with capture_logs() as logs:
            pool.start()
            pool.start()
        assert len(_events(logs, "pool_starting")) == 1
        assert pool.reaped == ()  # no runner died before it: nothing to reap


class TestSignals:
    """While a pool runs on the main thread, SIGTERM ends the runner through cleanup code."""

    def test_sigterm_is_turned_into_an_exit_and_restored_after_close(
        self, endpoints: Callable[[int], list[Endpoint]], clock: ManualClock
    ) -> None:
        # The pool only takes over a signal nobody handles: start from the default.
        before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            self._check_sigterm(endpoints, clock)
        finally:
            signal.signal(signal.SIGTERM, before)

    def test_a_pool_told_not_to_handle_signals_leaves_them_alone(
        self, endpoints: Callable[[int], list[Endpoint]], clock: ManualClock
    ) -> None:
        before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        (endpoint,) = endpoints(1)
        settings = PoolSettings(servers=ServerSettings(count=0),
                                remotes=(RemoteServer(endpoint.url),))
        pool = ServerPool(settings, clock=clock, handle_signals=False)
        try:
            pool.start()  # on the main thread
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        finally:
            pool.close()
            signal.signal(signal.SIGTERM, before)

    def _check_sigterm(
        self, endpoints: Callable[[int], list[Endpoint]], clock: ManualClock
    ) -> None:
        (endpoint,) = endpoints(1)
        settings = PoolSettings(servers=ServerSettings(count=0),
                                remotes=(RemoteServer(endpoint.url),))
        first, second = ServerPool(settings, clock=clock), ServerPool(settings, clock=clock)
        try:
            first.start()
            second.start()
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            with pytest.raises(SystemExit) as caught:
                handler(signal.SIGTERM, None)
            assert caught.value.code == 128 + signal.SIGTERM
            first.close()
            first.close()  # closing twice gives the handler back once only
            assert signal.getsignal(signal.SIGTERM) is handler  # the second pool still runs
        finally:
            first.close()
            second.close()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
