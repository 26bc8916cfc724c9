"""HTTP plumbing shared by the two simulators' servers (PreFormServer and Dashboard).

Both speak JSON over stdlib ``ThreadingHTTPServer``; what they share lives here:

* :class:`JsonHTTPServer`: a threaded server that binds without a reverse DNS lookup, claims
  its port exclusively where SO_REUSEADDR would let a second server share it (Windows), and
  hands every request to one ``dispatch`` callable;
* :class:`JsonRequestHandler`: keep-alive HTTP/1.1 with Nagle off, an idle timeout between
  requests, a deadline for a request's head (its line and headers) once its first byte came,
  and a JSON answer (never an HTML page) to requests too malformed or slow to dispatch (a
  request line too slow has no answer: the ``http_head_timeout`` event says who and how much);
* :func:`read_body`: a request body read in full within a deadline, or :class:`BadFraming`
  (:class:`BodyTimeout` when it does not come in time);
* :class:`ThreadedHTTPApp`: bound on construction, served in a background thread or the
  caller's, stopped once.

What differs between the simulators (server name, error body shape, body size limit, thread
name, exchange logging) stays with each server, as overrides and arguments.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from preform_pipeline.logging import get_logger
from preform_pipeline.wording import REQUEST_START_BYTES, request_start

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_HEAD_TIMEOUT_S",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_POLL_INTERVAL_S",
    "BadFraming",
    "BodyTimeout",
    "JsonHTTPServer",
    "JsonRequestHandler",
    "ThreadedHTTPApp",
    "json_deeper_than",
    "json_depth",
    "read_body",
]

#: An idle keep-alive connection is closed after this long, so forgotten clients do not pin
#: a thread each for the life of the process.
DEFAULT_IDLE_TIMEOUT_S: Final = 120.0

#: Longest a request body may take to arrive once its headers are read. Far shorter than the
#: idle timeout: a client that announced a Content-Length and sends less (or dribbles it) is
#: answered 408 in seconds, as a real HTTP server would, instead of holding its thread for
#: two minutes. The bodies are small JSON documents, so loopback and a LAN need milliseconds.
DEFAULT_BODY_TIMEOUT_S: Final = 10.0

#: Longest a request's head (its request line and headers) may take to arrive once its first
#: byte came. The wait for that first byte is the idle timeout (a kept-alive connection between
#: requests); a client that starts a request and sends the rest slowly, or never, is answered
#: 408 (or, without a whole request line to answer, its connection closed) in seconds instead
#: of holding its thread for two minutes. A head is a few hundred bytes.
DEFAULT_HEAD_TIMEOUT_S: Final = 10.0

#: How often the serving loop checks for shutdown: bounds how long stopping takes.
DEFAULT_POLL_INTERVAL_S: Final = 0.05

# Pending connections the listening socket queues: a pool's executor may open many at once.
_LISTEN_BACKLOG: Final = 128

# Longest line of chunked transfer framing (size line, trailer) read at once.
_CHUNK_LINE_LIMIT: Final = 1024

#: Deepest JSON nesting a request body may have. The Local API's bodies nest four or five
#: levels; Python's decoder recurses per level and fails with RecursionError near 1000.
DEFAULT_MAX_JSON_DEPTH: Final = 64

# A JSON string literal, escapes included: brackets inside strings do not nest anything.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)

_log = get_logger(__name__)

_App = TypeVar("_App", bound="ThreadedHTTPApp")


class BadFraming(Exception):
    """The request body cannot be read; the connection must close after the answer."""

    #: HTTP status of the answer.
    status: int = 400


class BodyTimeout(BadFraming):
    """The request body did not arrive in full within the body deadline."""

    status = 408


class JsonHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that passes every request to ``dispatch``."""

    daemon_threads = True
    request_queue_size = _LISTEN_BACKLOG
    # Windows lets a second socket bind a port held by another with SO_REUSEADDR; there the
    # port is claimed exclusively instead, so "address already in use" is reported as it
    # would be on macOS and Linux.
    allow_reuse_address = not hasattr(socket, "SO_EXCLUSIVEADDRUSE")

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[JsonRequestHandler],
        dispatch: Callable[[JsonRequestHandler], None],
        head_timeout: float = DEFAULT_HEAD_TIMEOUT_S,
    ) -> None:
        self.dispatch = dispatch
        self.head_timeout = head_timeout
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
        if exclusive is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        # HTTPServer.server_bind would also resolve the host's FQDN, which can stall for
        # seconds on machines with slow reverse DNS; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.exception("http_connection_error", client=str(client_address))


class JsonRequestHandler(BaseHTTPRequestHandler):
    """Keep-alive request handler; subclasses name the server and shape error bodies."""

    server: JsonHTTPServer
    protocol_version = "HTTP/1.1"
    timeout = DEFAULT_IDLE_TIMEOUT_S
    #: Message of a malformed-request answer when http.server gives none.
    default_error_text = "malformed HTTP request"
    #: True from a request's first byte until its request line is in (``parse_request``).
    _reading_request_line = False

    def setup(self) -> None:
        # Headers and body leave in separate writes; with Nagle's algorithm and delayed ACKs
        # every keep-alive request after the first would then wait ~40 ms for nothing.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        # Every receive goes through _Receives, so a deadline bounds a whole line's receives.
        self.receives = _Receives(self.rfile.detach(), self.connection)
        self.rfile = self._reader = io.BufferedReader(self.receives)

    def handle_one_request(self) -> None:
        # The first byte of a request may take the idle timeout (a kept-alive connection
        # waiting for its next request); the rest of its head must follow within the head
        # deadline. http.server's own handling closes the connection on a timed-out request
        # line (there is nothing to answer); parse_request answers timed-out headers.
        self.receives.start_request()
        try:
            if not self._reader.peek(1):
                self.close_connection = True
                return
        except TimeoutError:
            self.close_connection = True
            return
        self.receives.deadline = time.monotonic() + self.server.head_timeout
        self._reading_request_line = True
        try:
            super().handle_one_request()
        finally:
            self._end_head()
        if self._reading_request_line and self.receives.timed_out:
            self._log_request_line_timeout()

    def _log_request_line_timeout(self) -> None:
        # http.server closes the connection with only a debug message; there is no request
        # to log as an exchange, so say who sent how much of what (a safe start only).
        _log.info(
            "http_head_timeout",
            client=str(self.client_address[0]),
            port=self.client_address[1],
            stage="request line",
            received_bytes=self.receives.received,
            start=self.receives.safe_start(),
            head_timeout_s=self.server.head_timeout,
        )

    def parse_request(self) -> bool:
        self._reading_request_line = False  # the line came (parse_request reads the headers)
        try:
            parsed = super().parse_request()
        except TimeoutError:
            # The request line came, its headers did not: 408, as HTTP says, and close.
            self._end_head()
            limit = f"{self.server.head_timeout:g} s of their first byte"
            self.send_error(
                408, None, f"headers came too slowly (the request line and headers must "
                f"arrive within {limit})"
            )
            return False
        self._end_head()
        return parsed

    def _end_head(self) -> None:
        """The head (or the request) is read or given up: no deadline, the idle timeout back."""
        if self.receives.deadline is None:
            return
        self.receives.deadline = None
        with contextlib.suppress(OSError):  # the client already closed the socket
            self.connection.settimeout(self.timeout)

    def _dispatch(self) -> None:
        self.server.dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch

    def error_payload(self, status: int, text: str) -> bytes:
        """The JSON body answering a request http.server refused before dispatch."""
        raise NotImplementedError

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and headers are answered by http.server before dispatch;
        # answer those with JSON too, never an HTML page.
        self.close_connection = True
        status = int(code) if 400 <= code < 600 else 400
        payload = self.error_payload(status, message or explain or self.default_error_text)
        try:
            self.send_response(status, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # every exchange is logged once, structured, by the dispatcher

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("http_server_message", message=format % args)


class _Receives(io.RawIOBase):
    """A connection's receives; under a deadline each gets only the time left before it.

    A socket's timeout bounds one receive, and a line is read in as many receives as the
    client makes of it: without this, a client sending a byte just within each timeout
    could make one line last for hours.
    """

    def __init__(self, raw: io.RawIOBase, connection: socket.socket) -> None:
        super().__init__()
        self._raw = raw
        self._connection = connection
        #: ``time.monotonic()`` by which the reads under way must be done; None: no deadline
        #: (the socket's own timeout alone bounds each receive).
        self.deadline: float | None = None
        #: Since :meth:`start_request`: bytes received, the first of them (at most
        #: ``REQUEST_START_BYTES``), and whether a receive timed out.
        self.received = 0
        self._start = bytearray()
        self.timed_out = False

    def start_request(self) -> None:
        self.received = 0
        self._start.clear()
        self.timed_out = False

    def safe_start(self) -> str:
        """The first bytes received, as a log line may show them (``wording.request_start``)."""
        return request_start(bytes(self._start))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        try:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the deadline passed")
                self._connection.settimeout(left)
            count = self._raw.readinto(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        if count:
            self.received += count
            room = REQUEST_START_BYTES - len(self._start)
            if room > 0:
                self._start += memoryview(buffer).cast("B")[: min(count, room)]
        return count

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def read_body(
    handler: JsonRequestHandler,
    max_bytes: int,
    *,
    accept_chunked: bool,
    limit_unit: str = " bytes",
    timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
) -> bytes:
    """The request body in full (empty without one); :class:`BadFraming` when it cannot be read.

    The whole body must arrive within ``timeout_s`` of this call (:class:`BodyTimeout`
    otherwise): a deadline for the body, not for each read, so a client sending a byte at a
    time cannot stretch it. ``limit_unit`` follows the limit in the out-of-range message (each
    server keeps its text).
    """
    with _Deadline(handler, timeout_s) as deadline:
        return _read_body(handler, max_bytes, accept_chunked, limit_unit, deadline)


def _read_body(
    handler: BaseHTTPRequestHandler,
    max_bytes: int,
    accept_chunked: bool,
    limit_unit: str,
    deadline: _Deadline,
) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        if not accept_chunked:
            raise BadFraming("chunked request bodies are not accepted; send Content-Length")
        return _read_chunked(handler, max_bytes, deadline)
    length_text = handler.headers.get("Content-Length")
    if length_text is None:
        return b""
    try:
        length = int(length_text)
    except ValueError:
        raise BadFraming(f"Content-Length {length_text!r} is not a number") from None
    if not 0 <= length <= max_bytes:
        raise BadFraming(f"Content-Length {length} is outside 0..{max_bytes}{limit_unit}")
    parts: list[bytes] = []
    got = 0
    while got < length:
        deadline.arm(f"body came too slowly: {got} of {length} bytes")
        # read1: at most one receive, so the deadline is checked between receives.
        chunk = handler.rfile.read1(min(length - got, 1 << 16))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    if got != length:
        raise BadFraming(f"body ended after {got} of {length} bytes")
    return b"".join(parts)


class _Deadline:
    """The body's deadline, applied by the connection's receives before each receive.

    A receive that outlives it raises :class:`BodyTimeout`; on leaving, the socket gets its
    idle timeout back (a keep-alive connection waits for the next request as before). It is
    checked before each part of the body (``arm``) and by the connection's receives within a
    part, so a chunk dribbled a byte at a time cannot stretch it either (the handler lifts the
    receives' deadline once the request is answered).
    """

    def __init__(self, handler: JsonRequestHandler, timeout_s: float) -> None:
        self._socket: socket.socket = handler.connection
        self._idle = self._socket.gettimeout()
        self._ends = time.monotonic() + timeout_s
        self._receives = handler.receives
        self._receives.deadline = self._ends
        self._timeout_s = timeout_s
        self._what = "body came too slowly"

    def arm(self, what: str) -> None:
        """Before a part of the body: ``what`` says where it stood, and a part begun past the
        deadline is refused even when its bytes are already buffered. Each receive is given
        the time left by the connection's receives (``deadline`` set above)."""
        self._what = what
        if self._ends - time.monotonic() <= 0:
            raise self._expired()

    def _expired(self) -> BodyTimeout:
        limit = f"the whole body must arrive within {self._timeout_s:g} s"
        return BodyTimeout(f"{self._what} ({limit})")

    def __enter__(self) -> _Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, TimeoutError):
            # The socket is unusable after a timed-out receive; the connection closes anyway.
            raise self._expired() from None
        with contextlib.suppress(OSError):  # the client already closed the socket
            self._socket.settimeout(self._idle)


def _read_chunked(handler: BaseHTTPRequestHandler, max_bytes: int, deadline: _Deadline) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        deadline.arm(f"chunked body came too slowly: {total} bytes")
        line = handler.rfile.readline(_CHUNK_LINE_LIMIT)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadFraming("malformed chunked transfer encoding") from None
        if size == 0:
            while handler.rfile.readline(_CHUNK_LINE_LIMIT) not in (b"\r\n", b"\n", b""):
                deadline.arm(f"chunked body's trailer came too slowly: {total} bytes")
            return b"".join(parts)
        total += size
        if total > max_bytes:
            raise BadFraming(f"chunked body exceeds {max_bytes} bytes")
        deadline.arm(f"chunked body came too slowly: {total - size} bytes")
        parts.append(handler.rfile.read(size))
        deadline.arm(f"chunked body came too slowly: {total} bytes")
        handler.rfile.readline(_CHUNK_LINE_LIMIT)


class ThreadedHTTPApp:
    """An HTTP app bound on construction (``super().__init__`` last, once ready to dispatch).

    Use it as a context manager (serves in a background thread, like pytest-httpserver's
    ``HTTPServer``) or call :meth:`serve_forever` from the main thread. Subclasses answer
    requests in :meth:`_dispatch`.
    """

    #: Name of the serving thread, before ``-<port>``.
    thread_name_prefix = "http"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        handler: type[JsonRequestHandler],
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT_S,
    ) -> None:
        self.poll_interval = poll_interval
        self._thread: threading.Thread | None = None
        self._closed = False
        self._httpd = JsonHTTPServer((host, port), handler, self._dispatch, head_timeout)

    def _dispatch(self, handler: JsonRequestHandler) -> None:
        raise NotImplementedError

    def _on_shutdown(self) -> None:
        """Called once as :meth:`shutdown` begins, before the serving loop is stopped."""

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=self.poll_interval)

    def start(self: _App) -> _App:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever,
                name=f"{self.thread_name_prefix}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting requests and close the socket (again: nothing)."""
        if self._closed:
            return
        self._closed = True
        self._on_shutdown()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self: _App) -> _App:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def json_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the JSON text ``raw`` nests deeper than ``limit``. A body with no more opening
    brackets than that (anywhere, strings included) cannot, and is answered without
    :func:`json_depth` and the numpy it imports: a simulator's first login or scene does not
    pay for numpy before its modelled latency."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    return json_depth(raw) > limit


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of the JSON text ``raw`` nest, without decoding it.

    Counts brackets outside string literals in one vectorised pass, so a hostile body of
    megabytes of ``[`` costs milliseconds and is refused before the recursive decoder sees it.
    Malformed text gives some number; the decoder reports the malformation itself.
    """
    # Imported here: the Dashboard simulator serves with this module too and reads no model,
    # and the PreFormServer simulator imports numpy only with its first operation on a model
    # (engine.py); json_deeper_than asks this only of a body with many brackets.
    import numpy as np

    bare = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    if bare.size == 0:
        return 0
    steps = (
        (bare == ord("[")).astype(np.int64) + (bare == ord("{"))
        - (bare == ord("]")) - (bare == ord("}"))
    )
    return int(max(0, int(np.cumsum(steps).max())))
