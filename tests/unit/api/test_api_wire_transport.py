"""The default transport speaks HTTP/1.1 to a real loopback server: reuse, bodies, failures."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import httpx
import pytest

from preform_pipeline import __version__
from preform_pipeline.api import PreFormClient
from preform_pipeline.api._wire import WireTransport
from preform_pipeline.errors import (
    ServerInternalError,
    ServerTimeoutError,
    ServerUnreachableError,
)

#: How long a test waits for the other side before it fails instead of hanging.
WAIT_S = 10.0

#: One connection's conversation: the server, the accepted socket and a reader on it.
Handler = Callable[["LoopbackServer", socket.socket, io.BufferedReader], None]


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
                handler(self, conn, reader)
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


def json_answers(server: LoopbackServer, conn: socket.socket, reader: io.BufferedReader) -> None:
    """Answer every request on the connection with its method and target, as JSON."""
    while (request := server.read_request(reader)) is not None:
        method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ")
        conn.sendall(answer(200, json.dumps({"method": method, "target": target}).encode()))


def replying(*payloads: bytes) -> Handler:
    """Read a request and send the next payload as it is, for each payload; then hang up."""

    def handle(server: LoopbackServer, conn: socket.socket, reader: io.BufferedReader) -> None:
        for payload in payloads:
            server.read_request(reader)
            conn.sendall(payload)

    return handle


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    with contextlib.ExitStack() as servers:
        yield lambda *handlers: servers.enter_context(contextlib.closing(LoopbackServer(*handlers)))


@pytest.fixture
def connect() -> Iterator[Callable[[str], PreFormClient]]:
    """Clients on the default transport, closed after the test (before the servers)."""
    with contextlib.ExitStack() as clients:
        yield lambda url: clients.enter_context(
            PreFormClient(url, check_version_on_first_use=False)
        )


@pytest.fixture
def echo(
    serve: Callable[..., LoopbackServer], connect: Callable[[str], PreFormClient]
) -> tuple[LoopbackServer, PreFormClient]:
    """A server that answers every request with its method and target, and a client of it."""
    server = serve(json_answers)
    return server, connect(server.url)


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
        self, echo: tuple[LoopbackServer, PreFormClient]
    ) -> None:
        server, client = echo
        for _ in range(5):
            client.delete_scene("scene-1")

        assert server.connections == 1
        assert len(server.requests) == 5
        assert all(r.startswith(b"DELETE /scene/scene-1/ HTTP/1.1\r\n") for r in server.requests)
        assert f"Host: 127.0.0.1:{server.port}".encode() in server.requests[0]

    def test_a_connection_the_server_closed_while_idle_is_replaced(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        closed = threading.Event()

        def answer_once(
            server: LoopbackServer, conn: socket.socket, reader: io.BufferedReader
        ) -> None:
            replying(answer(200, b"{}"))(server, conn, reader)
            conn.shutdown(socket.SHUT_RDWR)
            closed.set()

        server = serve(answer_once, json_answers)
        assert exchange(transport, server).status_code == 200
        assert closed.wait(WAIT_S)

        second = exchange(transport, server)

        assert second.json() == {"method": "GET", "target": "/scene/"}
        assert server.connections == 2

    def test_an_answer_that_says_connection_close_is_not_reused(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(answer(200, b"[]", extra="Connection: close\r\n")))

        assert exchange(transport, server).json() == []
        assert exchange(transport, server).json() == []
        assert server.connections == 2


class TestBodies:
    """Bodies arrive whole however the server delimits them, and requests carry theirs."""

    LARGE = json.dumps({"data": "x" * 3_000_000}).encode()

    def test_a_large_body_with_a_length_arrives_whole(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(answer(200, self.LARGE)))

        assert exchange(transport, server).content == self.LARGE

    def test_a_chunked_body_is_joined(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        for start in range(0, len(self.LARGE), 700_000):
            piece = self.LARGE[start:start + 700_000]
            chunked += f"{len(piece):x};note=1\r\n".encode() + piece + b"\r\n"
        chunked += b"0\r\nX-Trailer: done\r\n\r\n"
        # The second answer shows the connection is still usable after the chunked one.
        server = serve(replying(chunked, answer(200, b"{}")))

        assert exchange(transport, server).content == self.LARGE
        assert exchange(transport, server).json() == {}
        assert server.connections == 1

    def test_a_body_ended_by_closing_the_connection_arrives_whole(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(b"HTTP/1.0 200 OK\r\n\r\n" + self.LARGE))

        assert exchange(transport, server).content == self.LARGE

    def test_an_interim_answer_is_skipped(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(201, b'{"id": "s"}')))

        response = exchange(transport, server)

        assert (response.status_code, response.json()) == (201, {"id": "s"})

    def test_a_json_request_body_is_sent_with_its_length_and_type(
        self, echo: tuple[LoopbackServer, PreFormClient]
    ) -> None:
        server, client = echo
        client.save_form("scene-1", "/tmp/out é.form")

        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        assert head.startswith(b"POST /scene/scene-1/save-form/?async=true HTTP/1.1")
        assert b"Content-Type: application/json" in head
        assert f"Content-Length: {len(body)}".encode() in head
        assert json.loads(body) == {"file": "/tmp/out é.form"}

    def test_an_empty_post_states_a_zero_length(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(json_answers)

        exchange(transport, server, method="POST")

        assert b"Content-Length: 0\r\n" in server.requests[0]

    def test_it_serves_httpx_as_a_transport(self, serve: Callable[..., LoopbackServer]) -> None:
        server = serve(json_answers)

        with httpx.Client(transport=WireTransport(), base_url=server.url) as client:
            response = client.post("/scene/a%20b/", json={"k": 1})

        assert response.json() == {"method": "POST", "target": "/scene/a%20b/"}


class TestRequestHeads:
    """Each request's head is written whole and the same for every request, though a
    transport writes each header set out once per server and keeps it."""

    def test_a_client_s_heads_are_exact_before_and_after_a_json_request(
        self, echo: tuple[LoopbackServer, PreFormClient]
    ) -> None:
        server, client = echo
        client.delete_scene("scene-1")
        client.save_form("scene-1", "/tmp/a.form")
        client.delete_scene("scene-2")

        heads = [r.partition(b"\r\n\r\n")[0].decode() for r in server.requests]
        common = (f"Host: 127.0.0.1:{server.port}\r\nAccept: application/json\r\n"
                  f"User-Agent: preform-pipeline/{__version__}")
        body = server.requests[1].partition(b"\r\n\r\n")[2]
        assert heads == [
            f"DELETE /scene/scene-1/ HTTP/1.1\r\n{common}",
            f"POST /scene/scene-1/save-form/?async=true HTTP/1.1\r\n{common}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}",
            f"DELETE /scene/scene-2/ HTTP/1.1\r\n{common}",
        ]

    def test_one_transport_names_each_server_in_its_own_requests(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        first, second = serve(json_answers), serve(json_answers)
        headers = (("Accept", "application/json"),)
        for server in (first, second, first):
            transport.exchange("GET", "127.0.0.1", server.port, "/", headers, None,
                               timeout=WAIT_S, connect_timeout=WAIT_S)

        for server in (first, second):
            for request in server.requests:
                assert request.startswith(
                    f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
        assert (len(first.requests), len(second.requests)) == (2, 1)

    def test_headers_given_as_a_list_are_sent_as_given(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(json_answers)
        for length in ("2", "4"):
            transport.exchange(
                "POST", "127.0.0.1", server.port, "/", [("Host", "printer.local"),
                                                         ("Content-Length", length)],
                b"{}" if length == "2" else b"{ }\n", timeout=WAIT_S, connect_timeout=WAIT_S,
            )

        heads = [r.partition(b"\r\n\r\n")[0] for r in server.requests]
        assert heads == [b"POST / HTTP/1.1\r\nHost: printer.local\r\nContent-Length: 2",
                         b"POST / HTTP/1.1\r\nHost: printer.local\r\nContent-Length: 4"]


class TestFailures:
    """A server that refuses, hangs, hangs up or garbles is a transient, named failure."""

    def test_a_refused_connection_is_unreachable(
        self, connect: Callable[[str], PreFormClient]
    ) -> None:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        client = connect(f"http://127.0.0.1:{port}")

        with pytest.raises(ServerUnreachableError) as caught:
            client.get_scene("scene-1")

        assert caught.value.request is not None
        assert caught.value.request.url == f"http://127.0.0.1:{port}/scene/scene-1/"
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
        assert caught.value.hint
        # said in words, not by httpx's class name
        assert caught.value.said.startswith("server unreachable: could not connect: ")
        assert "ConnectError" not in str(caught.value)

    def test_no_answer_within_the_timeout_is_a_server_timeout(
        self, serve: Callable[..., LoopbackServer],
        connect: Callable[[str], PreFormClient]
    ) -> None:
        released = threading.Event()

        def silent(server: LoopbackServer, conn: socket.socket, reader: io.BufferedReader) -> None:
            server.read_request(reader)
            released.wait(WAIT_S)

        server = serve(silent)
        client = connect(server.url)
        try:
            with pytest.raises(ServerTimeoutError) as caught:
                client.get_scene("scene-1", timeout=0.2)
        finally:
            released.set()

        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        assert caught.value.request is not None
        assert caught.value.request.operation == "getScene"
        assert caught.value.said == "no answer within 0.2 s"

    def test_a_server_that_hangs_up_without_answering_is_unreachable(
        self, serve: Callable[..., LoopbackServer],
        connect: Callable[[str], PreFormClient]
    ) -> None:
        server = serve(replying(b""))
        client = connect(server.url)

        with pytest.raises(ServerUnreachableError) as caught:
            client.get_scene("scene-1")

        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)

    def test_a_body_cut_short_is_unreachable_and_the_connection_is_dropped(
        self, serve: Callable[..., LoopbackServer],
        connect: Callable[[str], PreFormClient]
    ) -> None:
        server = serve(replying(answer(200, b'{"id": "scene-1", "models": []}')[:-10]),
                       json_answers)
        client = connect(server.url)
        with pytest.raises(ServerUnreachableError, match="closed the connection"):
            client.get_scene("scene-1")
        client.delete_scene("scene-1")

        assert server.connections == 2

    def test_a_garbled_status_line_is_unreachable(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(b"SMTP ready\r\n\r\n"))

        with pytest.raises(httpx.RemoteProtocolError, match="status line"):
            exchange(transport, server)

    def test_an_error_answer_keeps_its_code_and_a_text_excerpt(
        self, serve: Callable[..., LoopbackServer],
        connect: Callable[[str], PreFormClient]
    ) -> None:
        body = json.dumps({"error": {"code": "SCENE_NOT_FOUND", "message": "no"}}).encode()
        text = "défaillance".encode("latin-1")
        server = serve(replying(
            answer(404, body, reason="Not Found"),
            b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain; charset=latin-1\r\n"
            + f"Content-Length: {len(text)}\r\n\r\n".encode() + text,
        ))
        client = connect(server.url)
        # A scene the server does not have is one it lost (ServerInternalError, session 39).
        with pytest.raises(ServerInternalError) as rejected:
            client.get_scene("scene-1")
        with pytest.raises(ServerInternalError) as failed:
            client.get_scene("scene-1")

        assert (rejected.value.status_code, rejected.value.code) == (404, "SCENE_NOT_FOUND")
        assert failed.value.status_code == 500
        assert failed.value.server_message == "défaillance"


class TestWriteTimeout:
    """A request the server does not read within the timeout is a write timeout."""

    def test_a_body_the_server_never_reads_times_out_as_a_write(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        released = threading.Event()

        def deaf(server: LoopbackServer, conn: socket.socket, reader: io.BufferedReader) -> None:
            released.wait(WAIT_S)  # reads nothing: the client's send buffer fills up

        server = serve(deaf)
        # More than the loopback's socket buffers on both sides can hold.
        body = b"x" * (64 * 1024 * 1024)
        try:
            with pytest.raises(httpx.WriteTimeout):
                exchange(transport, server, body=body, method="POST", timeout=0.3)
        finally:
            released.set()


class TestDigitsIntRefuses:
    """A status or a length written with superscript digits (latin-1 bytes B2, B3, B9,
    which ``str.isdigit`` accepts and ``int`` refuses) is a garbled answer, not an internal
    error."""

    def test_a_content_length_of_a_superscript_digit_is_unreachable(
        self, serve: Callable[..., LoopbackServer],
        connect: Callable[[str], PreFormClient]
    ) -> None:
        server = serve(replying(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n{}"))
        client = connect(server.url)

        with pytest.raises(ServerUnreachableError, match="bad Content-Length") as caught:
            client.get_scene("scene-1")

        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)

    def test_repeated_lengths_of_superscript_digits_are_unreachable(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(b"HTTP/1.1 200 OK\r\nContent-Length: \xb9, \xb9\r\n\r\n{}"))

        with pytest.raises(httpx.RemoteProtocolError, match="bad Content-Length"):
            exchange(transport, server)

    def test_a_status_of_superscript_digits_is_unreachable(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(b"HTTP/1.1 \xb200 OK\r\nContent-Length: 2\r\n\r\n{}"))

        with pytest.raises(httpx.RemoteProtocolError, match="status line"):
            exchange(transport, server)


class TestUsualAnswer:
    """The usual answer (HTTP/1.1, a plain length, no Connection header) is read the short
    way, and anything else still the long way."""

    def test_an_http_1_0_answer_without_a_connection_header_is_not_reused(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        # The server would answer a second request on the same connection: only the
        # client's rule (HTTP/1.0 closes unless told keep-alive) makes it connect again.
        old_style = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n[]"
        server = serve(replying(old_style, old_style))

        assert exchange(transport, server).json() == []
        assert exchange(transport, server).json() == []
        assert server.connections == 2

    def test_an_http_1_0_answer_that_says_keep_alive_is_reused(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n[]"
        server = serve(replying(kept, kept))

        assert exchange(transport, server).json() == []
        assert exchange(transport, server).json() == []
        assert server.connections == 1

    def test_a_later_http_1_minor_version_keeps_the_connection(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        later = b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\n[]"
        server = serve(replying(later, later))

        assert exchange(transport, server).json() == []
        assert exchange(transport, server).json() == []
        assert server.connections == 1

    def test_a_body_by_length_with_another_transfer_coding_named_arrives_whole(
        self, serve: Callable[..., LoopbackServer], transport: WireTransport
    ) -> None:
        server = serve(replying(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 7\r\n\r\n[1,2,3]"
        ))

        assert exchange(transport, server).json() == [1, 2, 3]

    def test_no_helper_and_no_socket_file_layer_is_called_for_it(
        self, echo: tuple[LoopbackServer, PreFormClient]
    ) -> None:
        server, client = echo
        client.delete_scene("scene-1")  # the connection is made before watching
        called: list[tuple[str, str]] = []

        def watch(frame: FrameType, event: str, _arg: Any) -> None:
            if event == "call":
                called.append((frame.f_code.co_filename.rsplit("/", 1)[-1],
                               frame.f_code.co_name))

        sys.setprofile(watch)
        try:
            client.delete_scene("scene-1")
        finally:
            sys.setprofile(None)

        assert not {"_persistent", "_length", "_exactly"} & {name for _, name in called}
        assert not [place for place in called if place[0] == "socket.py"]
        assert len(server.requests) == 2
