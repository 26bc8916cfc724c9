"""A hostile HTTP front: a real server on loopback that forwards to a real upstream server
(a simulator) and, for the requests a test names, answers as a misbehaving server, proxy or
network does instead.

It is the seam between our clients and "a server that misbehaves": the clients under test
talk real HTTP over real sockets to it, exactly as to PreFormServer or the Web API; only
what comes back is scripted. Each rule matches a method and a path (a regular expression on
the path without the query) and is used ``times`` times (``None``: always); a request no
rule takes is forwarded upstream and its answer passed back unchanged (or, with no upstream,
answered 404). Every request is recorded (:attr:`HostileFront.seen`), and a failure inside
the front is kept and re-raised by :meth:`HostileFront.check` (as pytest-httpserver does),
so a broken script fails the test instead of looking like a broken client.

Answers are callables that write to the client's socket themselves, so they can send what a
well-behaved server never would: a body cut short, a reset, one byte a second, nothing.
Those that keep the socket waiting watch :attr:`HostileFront.stopping`, so stopping the
front never waits on them.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "NGINX_HTTPS_PORT_PAGE",
    "Answer",
    "HostileFront",
    "Request",
    "drip",
    "gate",
    "huge",
    "never",
    "raw",
    "reply",
    "reset",
    "running_front",
]

#: nginx's page for plain HTTP sent to its TLS port (a server written http:// where the proxy
#: wants https://), as nginx sends it with a 400.
NGINX_HTTPS_PORT_PAGE: Final = (
    "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"
    "\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP "
    "request was sent to HTTPS port</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
    "</html>\r\n"
)

#: Upper bound of every wait inside the front; reached only when something is broken.
_WAIT_S: Final = 10.0
#: How long a forwarded request waits for the upstream's answer: nginx's default
#: ``proxy_read_timeout``, past the client's own request limit (30 s), so that limit is the one
#: that speaks, as behind a real proxy. 10 s cut a simulated screenshot short at load 25.
_UPSTREAM_WAIT_S: Final = 60.0


@dataclass(frozen=True)
class Request:
    """One request as the front read it."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


#: Writes an answer to the socket; returns True when the connection may carry another request.
Answer = Callable[[socket.socket, Request, "HostileFront"], bool]


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    answer: Answer
    times: int | None
    used: int = 0


@dataclass
class HostileFront:
    """The front's state: its rules, what it saw, and the failures its threads met."""

    upstream: str | None
    rules: list[_Rule] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, method: str, path: str, answer: Answer, *, times: int | None = None) -> None:
        """Answer ``method`` requests whose path fully matches ``path`` with ``answer``."""
        with self._lock:
            self.rules.append(_Rule(method.upper(), re.compile(path), answer, times))

    def requests_to(self, path: str) -> list[Request]:
        pattern = re.compile(path)
        with self._lock:
            return [r for r in self.seen if pattern.fullmatch(r.path)]

    def check(self) -> None:
        """Re-raise the first failure met inside the front."""
        if self.errors:
            raise self.errors[0]

    def _take(self, request: Request) -> Answer | None:
        with self._lock:
            self.seen.append(request)
            for rule in self.rules:
                if rule.method != request.method or not rule.path.fullmatch(request.path):
                    continue
                if rule.times is not None and rule.used >= rule.times:
                    continue
                rule.used += 1
                return rule.answer
        return None

    def forward(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream's answer to ``request``: status, headers, body."""
        if self.upstream is None:
            return 404, [("Content-Type", "application/json")], b'{"detail": "Not found."}'
        parts = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                                timeout=_UPSTREAM_WAIT_S)
        try:
            headers = {k: v for k, v in request.headers if k.lower() not in ("host", "connection")}
            connection.request(request.method, request.target, body=request.body or None,
                               headers=headers)
            response = connection.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            return response.status, kept, body
        finally:
            connection.close()


def _read_request(stream: io.BufferedReader) -> Request | None:
    # A request line starts with a method's letter; anything else (a TLS hello, which has
    # no line end to wait for) is hung up on at once, as a plain server does.
    if not stream.peek(1)[:1].isalpha():
        return None
    line = stream.readline(65_537)
    if not line:
        return None
    words = line.decode("latin-1").split(" ", 2)
    if len(words) != 3:
        return None  # not an HTTP request line: hang up
    method, target, _version = words
    headers: list[tuple[str, str]] = []
    while (header := stream.readline(65_537)) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = stream.read(length) if length else b""
    return Request(method.upper(), target, tuple(headers), body)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        front = self.server.front
        sock: socket.socket = self.request
        sock.settimeout(_WAIT_S)
        stream = sock.makefile("rb")
        assert isinstance(stream, io.BufferedReader)
        try:
            while not front.stopping.is_set():
                request = _read_request(stream)
                if request is None:
                    return
                answer = front._take(request) or _forwarded
                if not answer(sock, request, front):
                    return
        except (ConnectionError, TimeoutError, BrokenPipeError):
            return  # the client hung up or gave up: what these scripts provoke
        except BaseException as exc:  # kept for check(): the test fails, not the client
            front.errors.append(exc)
        finally:
            stream.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    front: HostileFront


@contextmanager
def running_front(upstream: str | None = None) -> Iterator[HostileFront]:
    """A front on a free loopback port, forwarding to ``upstream``; stopped on leaving."""
    front = HostileFront(upstream)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.front = front
    front.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="hostile-front", daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(_WAIT_S)


# -- answers ---------------------------------------------------------------------------------


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    reason = http.client.responses.get(status, "Whatever")
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _forwarded(sock: socket.socket, request: Request, front: HostileFront) -> bool:
    status, headers, body = front.forward(request)
    sock.sendall(_head(status, [*headers, ("Content-Length", str(len(body)))]) + body)
    return True


def reply(
    status: int,
    body: bytes | str = b"",
    *,
    content_type: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
) -> Answer:
    """A well-formed answer with any status and body (an HTML error page, ``null``...)."""
    data = body.encode() if isinstance(body, str) else body

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        head = [("Content-Type", content_type), *headers, ("Content-Length", str(len(data)))]
        sock.sendall(_head(status, head) + data)
        return True

    return answer


def raw(data: bytes) -> Answer:
    """These bytes exactly, then the connection closed (a TLS alert, half an answer...)."""

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        sock.sendall(data)
        return False

    return answer


def reset(head: bytes = b"") -> Answer:
    """``head`` (perhaps part of an answer), then a TCP reset."""

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        if head:
            sock.sendall(head)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        return False

    return answer


def never() -> Answer:
    """No answer at all, until the client gives up or the front stops."""

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        sock.settimeout(0.05)
        while not front.stopping.is_set():
            try:
                if not sock.recv(1):
                    return False  # the client gave up and closed
            except TimeoutError:
                continue
        return False

    return answer


def drip(status: int, body: bytes, *, every_s: float) -> Answer:
    """A whole head at once, then the body one byte every ``every_s`` seconds."""

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        sock.sendall(_head(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))]))
        for byte in body:
            if front.stopping.wait(every_s):
                return False
            sock.sendall(bytes([byte]))
        return True

    return answer


def huge(size: int, *, framing: str = "length") -> Answer:
    """A 200 whose body is ``size`` bytes of a JSON string, sent as fast as the client reads:
    framed by ``Content-Length`` (``"length"``), chunked (``"chunked"``) or by closing
    (``"close"``)."""
    block = b"x" * 65_536

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        headers = [("Content-Type", "application/json")]
        if framing == "length":
            headers.append(("Content-Length", str(size)))
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        sock.sendall(_head(200, headers))
        sent = 0
        while sent < size and not front.stopping.is_set():
            part = block[: min(len(block), size - sent)]
            data = b"%x\r\n%s\r\n" % (len(part), part) if framing == "chunked" else part
            sock.sendall(data)
            sent += len(part)
        if framing == "chunked":
            sock.sendall(b"0\r\n\r\n")
        return False

    return answer


def gate(authorization: str) -> Answer:
    """A reverse proxy's basic auth: a request whose ``Authorization`` is exactly this is
    forwarded upstream; any other (none, a wrong one) is answered 401, as nginx answers."""

    def answer(sock: socket.socket, request: Request, front: HostileFront) -> bool:
        sent = [v for k, v in request.headers if k.lower() == "authorization"]
        if sent == [authorization]:
            return _forwarded(sock, request, front)
        page = b"<html><head><title>401 Authorization Required</title></head></html>"
        sock.sendall(_head(401, [("Content-Type", "text/html"),
                                 ("WWW-Authenticate", 'Basic realm="printers"'),
                                 ("Content-Length", str(len(page)))]) + page)
        return True

    return answer
