"""The default transport speaks HTTP/1.1 to a real loopback server: reuse, bodies, failures."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.api._wire import WireTransport
from preform_pipeline.errors import (
    RequestRejectedError,
    ServerInternalError,
    ServerTimeoutError,
    ServerUnreachableError,
)

#: How long a test waits for the other side before it fails instead of hanging.
WAIT_S = 10.0

#: One connection's conversation: the accepted socket and a reader on it.
Handler = Callable[[socket.socket, io.BufferedReader], None]


class LoopbackServer:
    """A raw TCP server on 127.0.0.1: each accepted connection runs the next handler."""

    def __init__(self, *handlers: Handler) -> None:
        self._handlers = list(handlers)
        self.connections = 0
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            handler = self._handlers[min(self.connections, len(self._handlers) - 1)]
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn, handler), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, handler: Handler) -> None:
        conn.settimeout(WAIT_S)
        reader = conn.makefile("rb")
        try:
            with contextlib.suppress(OSError):
                handler(conn, reader)
        finally:
            reader.close()
            conn.close()

    def read_request(self, reader: io.BufferedReader) -> bytes | None:
        """One request (head and body), recorded; None when the client closed."""
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return None
            head += line
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = head + reader.read(length)
        self.requests.append(request)
        return request

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepting.join(WAIT_S)
        for thread in self._threads:
            thread.join(WAIT_S)


def answer(status: int, body: bytes, *, extra: str = "", reason: str = "OK") -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def json_answers(server_of: Callable[[], LoopbackServer]) -> Handler:
    """Answer every request on the connection with its method and target, as JSON."""

    def handle(conn: socket.socket, reader: io.BufferedReader) -> None:
        while (request := server_of().read_request(reader)) is not None:
            method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ")
            conn.sendall(answer(200, json.dumps({"method": method, "target": target}).encode()))

    return handle


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    started: list[LoopbackServer] = []

    def start(*handlers: Handler) -> LoopbackServer:
        server = LoopbackServer(*handlers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def transport() -> Iterator[WireTransport]:
    made = WireTransport()
    yield made
    made.close()


def exchange(transport: WireTransport, server: LoopbackServer, *, timeout: float = WAIT_S,
             body: bytes | None = None, method: str = "GET") -> httpx.Response:
    answered = transport.exchange(
        method, "127.0.0.1", server.port, "/scene/", [("Accept", "application/json")], body,
        timeout=timeout, connect_timeout=timeout,
    )
    return httpx.Response(answered.status, headers=list(answered.headers),
                          content=answered.body)


class TestKeepAlive:
    """Requests to one server share one connection while the server keeps it open."""

    def test_a_client_sends_its_requests_on_one_connection(
        self, serve: Callable[..., LoopbackServer]
    ) -> None:
        server = serve(json_answers(lambda: server))
        client = PreFormClient(server.url, check_version_on_first_use=False)
        try:
            for _ in range(5):
                client.delete_scene("scene-1")
        finally:
            client.close()

        assert server.connections == 1
        assert len(server.requests) == 5
        assert all(r.startswith(b"DELETE /scene/scene-1/ HTTP/1.1\r\n") for r in server.requests)
        assert f"Host: 127.0.0.1:{server.port}".encode() in server.requests[0]

    def test_a_connection_the_server_closed_while_idle_is_replaced(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        closed = threading.Event()

        def answer_once(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(answer(200, b"{}"))
            conn.shutdown(socket.SHUT_RDWR)
            closed.set()

        server = serve(answer_once, json_answers(lambda: server))
        assert exchange(transport, server).status_code == 200
        assert closed.wait(WAIT_S)

        second = exchange(transport, server)

        assert second.json() == {"method": "GET", "target": "/scene/"}
        assert server.connections == 2

    def test_an_answer_that_says_connection_close_is_not_reused(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        def close_after(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(answer(200, b"[]", extra="Connection: close\r\n"))

        server = serve(close_after)

        assert exchange(transport, server).json() == []
        assert exchange(transport, server).json() == []
        assert server.connections == 2


class TestBodies:
    """Bodies arrive whole however the server delimits them, and requests carry theirs."""

    LARGE = json.dumps({"data": "x" * 3_000_000}).encode()

    def test_a_large_body_with_a_length_arrives_whole(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        def large(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(answer(200, self.LARGE))

        server = serve(large)

        assert exchange(transport, server).content == self.LARGE

    def test_a_chunked_body_is_joined(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        def chunked(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, len(self.LARGE), 700_000):
                piece = self.LARGE[start:start + 700_000]
                conn.sendall(f"{len(piece):x};note=1\r\n".encode() + piece + b"\r\n")
            conn.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
            server.read_request(reader)  # the connection stays usable
            conn.sendall(answer(200, b"{}"))

        server = serve(chunked)

        assert exchange(transport, server).content == self.LARGE
        assert exchange(transport, server).json() == {}
        assert server.connections == 1

    def test_a_body_ended_by_closing_the_connection_arrives_whole(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        def until_close(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + self.LARGE)

        server = serve(until_close)

        assert exchange(transport, server).content == self.LARGE

    def test_an_interim_answer_is_skipped(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        def interim(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(201, b'{"id": "s"}'))

        server = serve(interim)

        response = exchange(transport, server)

        assert (response.status_code, response.json()) == (201, {"id": "s"})

    def test_a_json_request_body_is_sent_with_its_length_and_type(
        self, serve: Callable[..., LoopbackServer]
    ) -> None:
        server = serve(json_answers(lambda: server))
        client = PreFormClient(server.url, check_version_on_first_use=False)
        try:
            client.save_form("scene-1", "/tmp/out é.form")
        finally:
            client.close()

        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        assert head.startswith(b"POST /scene/scene-1/save-form/?async=true HTTP/1.1")
        assert b"Content-Type: application/json" in head
        assert f"Content-Length: {len(body)}".encode() in head
        assert json.loads(body) == {"file": "/tmp/out é.form"}

    def test_an_empty_post_states_a_zero_length(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(json_answers(lambda: server))

        exchange(transport, server, method="POST")

        assert b"Content-Length: 0\r\n" in server.requests[0]

    def test_it_serves_httpx_as_a_transport(self, serve: Callable[..., LoopbackServer]) -> None:
        server = serve(json_answers(lambda: server))

        with httpx.Client(transport=WireTransport(), base_url=server.url) as client:
            response = client.post("/scene/a%20b/", json={"k": 1})

        assert response.json() == {"method": "POST", "target": "/scene/a%20b/"}


class TestFailures:
    """A server that refuses, hangs, hangs up or garbles is a transient, named failure."""

    def test_a_refused_connection_is_unreachable(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        client = PreFormClient(f"http://127.0.0.1:{port}", check_version_on_first_use=False)

        with pytest.raises(ServerUnreachableError) as caught:
            client.get_scene("scene-1")

        assert caught.value.request is not None
        assert caught.value.request.url == f"http://127.0.0.1:{port}/scene/scene-1/"
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
        assert caught.value.hint

    def test_no_answer_within_the_timeout_is_a_server_timeout(
        self, serve: Callable[..., LoopbackServer]
    ) -> None:
        released = threading.Event()

        def silent(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            released.wait(WAIT_S)

        server = serve(silent)
        client = PreFormClient(server.url, check_version_on_first_use=False)
        try:
            with pytest.raises(ServerTimeoutError) as caught:
                client.get_scene("scene-1", timeout=0.2)
        finally:
            released.set()
            client.close()

        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        assert caught.value.request is not None
        assert caught.value.request.operation == "getScene"

    def test_a_server_that_hangs_up_without_answering_is_unreachable(
        self, serve: Callable[..., LoopbackServer]
    ) -> None:
        def hang_up(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)

        server = serve(hang_up)
        client = PreFormClient(server.url, check_version_on_first_use=False)

        with pytest.raises(ServerUnreachableError) as caught:
            client.get_scene("scene-1")

        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)

    def test_a_body_cut_short_is_unreachable_and_the_connection_is_dropped(
        self, serve: Callable[..., LoopbackServer]
    ) -> None:
        def cut_short(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(answer(200, b'{"id": "scene-1", "models": []}')[:-10])

        server = serve(cut_short, json_answers(lambda: server))
        client = PreFormClient(server.url, check_version_on_first_use=False)
        try:
            with pytest.raises(ServerUnreachableError, match="closed the connection"):
                client.get_scene("scene-1")
            client.delete_scene("scene-1")
        finally:
            client.close()

        assert server.connections == 2

    def test_a_garbled_status_line_is_unreachable(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        def garbled(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            conn.sendall(b"SMTP ready\r\n\r\n")

        server = serve(garbled)

        with pytest.raises(httpx.RemoteProtocolError, match="status line"):
            exchange(transport, server)

    def test_an_error_answer_keeps_its_code_and_a_text_excerpt(
        self, serve: Callable[..., LoopbackServer]
    ) -> None:
        def rejecting(conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            body = json.dumps({"error": {"code": "SCENE_NOT_FOUND", "message": "no"}}).encode()
            conn.sendall(answer(404, body, reason="Not Found"))
            server.read_request(reader)
            text = "défaillance".encode("latin-1")
            conn.sendall(
                b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain; charset=latin-1\r\n"
                + f"Content-Length: {len(text)}\r\n\r\n".encode() + text
            )

        server = serve(rejecting)
        client = PreFormClient(server.url, check_version_on_first_use=False)
        try:
            with pytest.raises(RequestRejectedError) as rejected:
                client.get_scene("scene-1")
            with pytest.raises(ServerInternalError) as failed:
                client.get_scene("scene-1")
        finally:
            client.close()

        assert (rejected.value.status_code, rejected.value.code) == (404, "SCENE_NOT_FOUND")
        assert failed.value.status_code == 500
        assert failed.value.server_message == "défaillance"
