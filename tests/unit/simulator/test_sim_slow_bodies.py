"""A request body shorter than its Content-Length, or too slow, is answered within the deadline.

Each test speaks to a real server over a real loopback socket, as a client that announced more
than it sends would. The socket's own timeout (``WAIT_S``) is far below the servers' two-minute
idle timeout, so a server that still waited for the rest of the body fails the test.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S

from preform_pipeline.clock import ManualClock
from preform_pipeline.simulator.cloud.testing import dashboard_server
from preform_pipeline.simulator.http import DEFAULT_BODY_TIMEOUT_S, DEFAULT_IDLE_TIMEOUT_S
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract

SHORT_POST = b"POST /scene/ HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{}"


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Read one answer up to the server's close: status, headers (lower-case names), body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers, json.loads(body)


def connect(server: Any) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=WAIT_S)


@pytest.fixture
def slow_sim(sim_server_factory: Callable[..., SimulatorServer]) -> SimulatorServer:
    return sim_server_factory(body_timeout=0.5)


class TestTheDeadline:
    """The body deadline is seconds, far below the idle timeout a keep-alive connection has."""

    def test_the_default_deadline_is_seconds_not_the_idle_timeout(self) -> None:
        assert DEFAULT_BODY_TIMEOUT_S <= 10 < DEFAULT_IDLE_TIMEOUT_S


class TestALocalApiBodyThatNeverComes:
    """The Local API simulator answers 408 REQUEST_TIMEOUT, an ErrorModel, and closes."""

    def test_a_short_body_on_an_open_connection_is_408(self, slow_sim: SimulatorServer) -> None:
        with connect(slow_sim) as sock:
            sock.sendall(SHORT_POST)
            status, headers, body = read_answer(sock)
        assert status == 408
        assert headers["connection"] == "close"
        local_api_contract().assert_valid(
            body, local_api_contract().component("ErrorModel"), "408 answer"
        )
        assert body["error"]["code"] == "REQUEST_TIMEOUT"
        assert body["error"]["message"] == (
            "body came too slowly: 2 of 500 bytes (the whole body must arrive within 0.5 s)"
        )
        assert [(e.method, e.path, e.status) for e in slow_sim.exchanges] == [
            ("POST", "/scene/", 408)
        ]

    def test_a_body_sent_a_byte_at_a_time_meets_the_same_deadline(
        self, slow_sim: SimulatorServer
    ) -> None:
        # Each byte comes well within 0.5 s of the last, so only a deadline for the whole body
        # (not for each receive) ends this before the 25 s the 500 bytes would take.
        with connect(slow_sim) as sock:
            sock.sendall(SHORT_POST[:-2])
            answered = threading.Event()

            def dribble() -> None:
                for _ in range(500):
                    if answered.wait(0.05):
                        return
                    try:
                        sock.sendall(b" ")
                    except OSError:
                        return

            sender = threading.Thread(target=dribble)
            sender.start()
            try:
                status, _, body = read_answer(sock)
            finally:
                answered.set()
                sender.join(WAIT_S)
        assert status == 408
        assert body["error"]["code"] == "REQUEST_TIMEOUT"
        assert body["error"]["message"].startswith("body came too slowly: ")

    def test_a_chunk_sent_a_byte_at_a_time_meets_the_same_deadline(
        self, slow_sim: SimulatorServer
    ) -> None:
        # One chunk of 400 bytes, a byte every 50 ms: the deadline must end it inside the
        # chunk's read (many receives), not only between chunks, well before its 20 s.
        with connect(slow_sim) as sock:
            sock.sendall(
                b"POST /scene/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n190\r\n"
            )
            answered = threading.Event()

            def dribble() -> None:
                for _ in range(400):
                    if answered.wait(0.05):
                        return
                    try:
                        sock.sendall(b" ")
                    except OSError:
                        return

            sender = threading.Thread(target=dribble)
            sender.start()
            try:
                status, _, body = read_answer(sock)
            finally:
                answered.set()
                sender.join(WAIT_S)
        assert status == 408
        assert body["error"] == {"code": "REQUEST_TIMEOUT", "message": (
            "chunked body came too slowly: 0 bytes (the whole body must arrive within 0.5 s)"
        )}

    def test_a_body_cut_short_by_the_client_is_400_at_once(
        self, slow_sim: SimulatorServer
    ) -> None:
        with connect(slow_sim) as sock:
            sock.sendall(SHORT_POST)
            sock.shutdown(socket.SHUT_WR)
            status, _, body = read_answer(sock)
        assert status == 400
        assert body == {
            "error": {"code": "BAD_REQUEST", "message": "body ended after 2 of 500 bytes"}
        }

    def test_other_requests_are_answered_while_a_body_is_awaited(
        self, sim_server_factory: Callable[..., SimulatorServer]
    ) -> None:
        server = sim_server_factory(body_timeout=2.0)
        with connect(server) as sock, httpx.Client(base_url=server.url, timeout=WAIT_S) as http:
            sock.sendall(SHORT_POST)
            assert http.get("/operations/").status_code == 200
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)  # the slow request is still unanswered
            sock.setblocking(True)
            sock.settimeout(WAIT_S)
            status, _, _ = read_answer(sock)
        assert status == 408

    def test_a_keep_alive_connection_waits_for_its_next_request_past_the_deadline(
        self, slow_sim: SimulatorServer
    ) -> None:
        # The deadline is for a body; the idle timeout comes back for the wait between requests.
        request = b'POST /scene/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'
        with connect(slow_sim) as sock, sock.makefile("rb") as answers:
            for _ in range(2):
                sock.sendall(request)
                assert answers.readline().startswith(b"HTTP/1.1 200 ")
                length = 0
                while (line := answers.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                json.loads(answers.read(length))
                threading.Event().wait(1.0)  # idle twice the body deadline
        assert [e.status for e in slow_sim.exchanges] == [200, 200]


class TestADashboardBodyThatNeverComes:
    """The Dashboard simulator answers 408 with DRF's ``detail`` body, and closes."""

    @pytest.fixture
    def dashboard(self, tmp_path: Path) -> Iterator[Any]:
        with dashboard_server(
            tmp_path / "fleet", clock=ManualClock(), poll_interval=0.005, body_timeout=0.5
        ) as server:
            yield server
            server.check()

    def test_a_short_token_request_is_408(self, dashboard: Any) -> None:
        with connect(dashboard) as sock:
            sock.sendall(
                b"POST /developer/v1/o/token/ HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 300\r\n\r\ngrant_type=client_credentials"
            )
            status, headers, body = read_answer(sock)
        assert status == 408
        assert headers["connection"] == "close"
        assert body == {
            "detail": "body came too slowly: 29 of 300 bytes "
            "(the whole body must arrive within 0.5 s)"
        }
