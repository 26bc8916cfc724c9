"""A request whose line or headers come too slowly is ended within the head deadline.

Each test speaks to a real server over a real loopback socket, as a client that starts a
request and never finishes its head (or dribbles it) would. The socket's own timeout
(``WAIT_S``) is far below the servers' two-minute idle timeout, so a server that still waited
for the rest of the head fails the test; a kept-alive connection between requests still waits
the idle timeout, not the head deadline.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_server_support import WAIT_S
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.simulator.cloud.testing import dashboard_server
from preform_pipeline.simulator.http import DEFAULT_HEAD_TIMEOUT_S, DEFAULT_IDLE_TIMEOUT_S
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract

HALF_HEADERS = b"POST /scene/ HTTP/1.1\r\nHost: x\r\nContent-Le"
HALF_LINE = b"POST /sce"
WHOLE = b"POST /scene/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse_answer(data: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers (lower-case names) and JSON body of one answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers, json.loads(body)


def read_one_answer(answers: Any) -> tuple[int, Any]:
    """Status and JSON body of the next answer on a kept-alive connection."""
    status = int(answers.readline().split(b" ", 2)[1])
    length = 0
    while (line := answers.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, json.loads(answers.read(length))


def connect(server: Any) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=WAIT_S)


def send_in_two(sock: socket.socket, request: bytes) -> None:
    """Send a request's line, then the rest a moment later (well within a 0.5 s deadline)."""
    line, _, rest = request.partition(b"\r\n")
    sock.sendall(line + b"\r\n")
    threading.Event().wait(0.1)
    sock.sendall(rest)


def dribble(sock: socket.socket, data: bytes, stop: threading.Event) -> threading.Thread:
    """Send ``data`` a byte every 50 ms (each well within a 0.5 s deadline) until ``stop``."""

    def send() -> None:
        for byte in data:
            if stop.wait(0.05):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return

    sender = threading.Thread(target=send)
    sender.start()
    return sender


@pytest.fixture
def slow_sim(sim_server_factory: Callable[..., SimulatorServer]) -> SimulatorServer:
    return sim_server_factory(head_timeout=0.5)


class TestTheHeadDeadline:
    """The head deadline is seconds, far below the idle timeout a keep-alive connection has."""

    def test_the_default_deadline_is_seconds_not_the_idle_timeout(self) -> None:
        assert DEFAULT_HEAD_TIMEOUT_S <= 10 < DEFAULT_IDLE_TIMEOUT_S


class TestALocalApiHeadThatNeverComes:
    """The Local API simulator answers slow headers 408 REQUEST_TIMEOUT, a slow line not at all."""

    def test_headers_cut_short_on_an_open_connection_are_408(
        self, slow_sim: SimulatorServer
    ) -> None:
        with capture_logs() as logs, connect(slow_sim) as sock:
            sock.sendall(HALF_HEADERS)
            status, headers, body = parse_answer(read_to_close(sock))
        assert status == 408
        assert headers["connection"] == "close"
        local_api_contract().assert_valid(
            body, local_api_contract().component("ErrorModel"), "408 answer"
        )
        assert body == {"error": {"code": "REQUEST_TIMEOUT", "message": (
            "headers came too slowly (the request line and headers must arrive within 0.5 s "
            "of their first byte)"
        )}}
        exchanges = [e for e in logs if e["event"] == "http_exchange"]
        assert [(e["method"], e["path"], e["status"]) for e in exchanges] == [
            ("POST", "/scene/", 408)
        ]
        # The request line came: the exchange is its record, not a request line's timeout.
        assert not any(e["event"] == "http_head_timeout" for e in logs)

    def test_headers_sent_a_byte_at_a_time_meet_the_same_deadline(
        self, slow_sim: SimulatorServer
    ) -> None:
        # Each byte comes well within 0.5 s of the last, so only a deadline for the whole head
        # (not for each receive) ends this before the 20 s the 400 header bytes would take.
        stop = threading.Event()
        with connect(slow_sim) as sock:
            sock.sendall(b"POST /scene/ HTTP/1.1\r\n")
            sender = dribble(sock, b"X-Slow: " + b"y" * 392, stop)
            try:
                status, _, body = parse_answer(read_to_close(sock))
            finally:
                stop.set()
                sender.join(WAIT_S)
        assert status == 408
        assert body["error"]["code"] == "REQUEST_TIMEOUT"

    def test_half_a_request_line_is_closed_unanswered(self, slow_sim: SimulatorServer) -> None:
        with capture_logs() as logs, connect(slow_sim) as sock:
            sock.sendall(HALF_LINE)
            assert read_to_close(sock) == b""
            client = sock.getsockname()
        assert slow_sim.exchanges == []
        # The event is logged before the server closes the connection the test saw closed.
        assert [e for e in logs if e["event"] == "http_head_timeout"] == [{
            "event": "http_head_timeout", "log_level": "info", "client": client[0],
            "port": client[1], "stage": "request line", "received_bytes": len(HALF_LINE),
            "start": "POST /sce", "head_timeout_s": 0.5,
        }]

    def test_a_timed_out_request_lines_start_is_logged_without_its_query_or_raw_bytes(
        self, slow_sim: SimulatorServer
    ) -> None:
        # A token may ride in a query string; control bytes must not reach a log line as such.
        line = b"GET /scene/\x1b[2J?access_token=s3cret-token-value&x=1"
        with capture_logs() as logs, connect(slow_sim) as sock:
            sock.sendall(line)
            assert read_to_close(sock) == b""
        (event,) = [e for e in logs if e["event"] == "http_head_timeout"]
        assert (event["start"], event["received_bytes"]) == ("GET /scene/\\x1b[2J", len(line))
        assert "s3cret" not in repr(logs)

    def test_only_the_first_32_bytes_of_a_long_request_line_are_logged(
        self, slow_sim: SimulatorServer
    ) -> None:
        with capture_logs() as logs, connect(slow_sim) as sock:
            sock.sendall(b"GET /")  # received apart from the rest: two receives to bound
            threading.Event().wait(0.1)
            sock.sendall(b"a" * 1000)
            assert read_to_close(sock) == b""
        (event,) = [e for e in logs if e["event"] == "http_head_timeout"]
        assert (event["start"], event["received_bytes"]) == ("GET /" + "a" * 27, 1005)

    def test_a_request_that_comes_in_time_logs_no_head_timeout(
        self, slow_sim: SimulatorServer
    ) -> None:
        # The idle timeout of a kept-alive connection is not a head that timed out.
        with capture_logs() as logs, connect(slow_sim) as sock:
            send_in_two(sock, WHOLE)
            sock.shutdown(socket.SHUT_WR)
            assert read_to_close(sock).startswith(b"HTTP/1.1 200")
        assert [e["event"] for e in logs if e["event"] == "http_head_timeout"] == []

    def test_a_request_line_sent_a_byte_at_a_time_is_closed_unanswered(
        self, slow_sim: SimulatorServer
    ) -> None:
        stop = threading.Event()
        with connect(slow_sim) as sock:
            sender = dribble(sock, b"POST /" + b"s" * 400, stop)
            try:
                assert read_to_close(sock) == b""
            finally:
                stop.set()
                sender.join(WAIT_S)

    def test_a_kept_alive_connection_waits_for_its_requests_past_the_deadline(
        self, slow_sim: SimulatorServer
    ) -> None:
        # The deadline runs from a request's first byte: the wait before it (a new connection,
        # or one kept alive between requests) is the idle timeout. Each head comes in two
        # receives, so the second is made under the deadline.
        with connect(slow_sim) as sock, sock.makefile("rb") as answers:
            for _ in range(2):
                threading.Event().wait(1.0)  # idle twice the head deadline
                send_in_two(sock, WHOLE)
                assert read_one_answer(answers)[0] == 200
        assert [e.status for e in slow_sim.exchanges] == [200, 200]

    def test_a_head_within_the_deadline_is_answered_as_before(
        self, slow_sim: SimulatorServer
    ) -> None:
        # The head's deadline ends with the head: a body slower than it but within the body
        # deadline is still read.
        with connect(slow_sim) as sock, sock.makefile("rb") as answers:
            send_in_two(sock, WHOLE[:-2])
            threading.Event().wait(1.0)
            sock.sendall(b"{}")
            assert read_one_answer(answers)[0] == 200
        assert [e.status for e in slow_sim.exchanges] == [200]


class TestADashboardHeadThatNeverComes:
    """The Dashboard simulator answers slow headers 408 with DRF's ``detail`` body."""

    @pytest.fixture
    def dashboard(self, tmp_path: Path) -> Iterator[Any]:
        with dashboard_server(
            tmp_path / "fleet", clock=ManualClock(), poll_interval=0.005, head_timeout=0.5
        ) as server:
            yield server
            server.check()

    def test_a_token_request_with_half_its_headers_is_408(self, dashboard: Any) -> None:
        with connect(dashboard) as sock:
            sock.sendall(b"POST /developer/v1/o/token/ HTTP/1.1\r\nHost: x\r\nContent-Ty")
            status, headers, body = parse_answer(read_to_close(sock))
        assert status == 408
        assert headers["connection"] == "close"
        assert body == {"detail": (
            "headers came too slowly (the request line and headers must arrive within 0.5 s "
            "of their first byte)"
        )}

    def test_half_a_request_line_is_closed_unanswered(self, dashboard: Any) -> None:
        with capture_logs() as logs, connect(dashboard) as sock:
            sock.sendall(b"GET /developer/v1/pri")
            assert read_to_close(sock) == b""
        (event,) = [e for e in logs if e["event"] == "http_head_timeout"]
        assert (event["start"], event["received_bytes"]) == ("GET /developer/v1/pri", 21)
