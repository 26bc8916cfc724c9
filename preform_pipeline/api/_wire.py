"""HTTP/1.1 over kept-alive sockets: the Local API client's default transport.

A PreFormServer speaks plain HTTP/1.1 with JSON bodies on a local port, and a build sends it
a dozen requests. httpx's own transport (httpcore and h11: connection-pool bookkeeping, an
event state machine, header validation on every byte) cost more runner CPU per request than
everything else a build does; this one writes the request in one ``sendall`` and reads the
answer with a buffered reader, and keeps each connection for the next request.

It is still an ``httpx.BaseTransport`` (``handle_request`` takes an ``httpx.Request``), so it
fits wherever httpx expects a transport, and its failures are httpx's transport errors
(``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...), so callers map them as
before. :class:`~preform_pipeline.api._http.HttpSession` calls :meth:`WireTransport.exchange`
directly and skips building httpx request and response objects.

What it does not do (the Local API needs none of it): TLS, proxies, HTTP/2, compressed
bodies, upgrades. Answers may be delimited by ``Content-Length``, chunked, or by the server
closing the connection; ``1xx`` interim answers are skipped.

Every answer is read within bounds (:mod:`preform_pipeline.answers`): at most ``max_body``
bytes of body, and all of it, head included, within the request's ``timeout`` (a server
that drips a byte a second would otherwise pass every per-read timeout).
"""

from __future__ import annotations

import io
import select
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from preform_pipeline.answers import (
    MAX_ANSWER_BYTES,
    TLS_ANSWER,
    TLS_RECORD_STARTS,
    too_large,
)

__all__ = ["WireAnswer", "WireTransport"]

#: Idle connections kept per server: a client sends one request at a time; a few more
#: cover a client shared by threads.
_IDLE_PER_SERVER: Final = 4
#: Longest status or header line, and most header lines, accepted in an answer.
_MAX_LINE: Final = 65_536
_MAX_HEADERS: Final = 100
_CRLF: Final = b"\r\n"
#: Bytes read at a time from an answer that ends when the server closes the connection.
_READ_CHUNK: Final = 65_536
#: Methods that state an empty body (as httpx does): a server may wait for one otherwise.
_SENDS_BODY: Final = frozenset({"POST", "PUT", "PATCH"})
#: Statuses that never have a body.
_NO_BODY: Final = frozenset({204, 304})


@dataclass(frozen=True)
class WireAnswer:
    """A complete answer: status, header pairs (names as sent), and the whole body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class _SocketReads(io.RawIOBase):
    """The raw stream under a connection's buffered reader: the socket's ``recv_into``,
    bounded by the time the request in flight has left.

    ``socket.makefile`` puts ``SocketIO`` there, whose ``readinto`` adds checks not needed
    here: a timeout is raised as it is (and the connection is then closed, never read
    again), and the socket is never non-blocking without a timeout. What this adds instead
    is the answer's end time (``ends``, on ``time.monotonic``): each read waits at most until
    then, so an answer that keeps arriving slowly still ends with the request's time.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._recv_into = sock.recv_into
        #: When the answer being read must be in (None: no limit).
        self.ends: float | None = None

    def readinto(self, buffer: Any) -> int:
        ends = self.ends
        if ends is not None:
            left = ends - time.monotonic()
            if left <= 0:
                raise TimeoutError("the answer was still arriving when its time was up")
            timeout = self._sock.gettimeout()
            if timeout is None or left < timeout:
                self._sock.settimeout(left)
        return self._recv_into(buffer)

    def readable(self) -> bool:
        return True


class _Connection:
    """One socket with its buffered reader (and, where there is ``poll``, its poller)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = _SocketReads(sock)
        self.reader: io.BufferedReader = io.BufferedReader(self.reads)
        # Registered once: the staleness check runs before every request on the connection.
        self._poller: select.poll | None = None
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)

    def stale(self) -> bool:
        """An idle connection the server closed (or wrote to unasked) must not be reused."""
        try:
            if self._poller is not None:
                return bool(self._poller.poll(0))
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class WireTransport(httpx.BaseTransport):
    """Plain-HTTP requests on kept-alive connections, one pool of idle ones per host:port.

    Safe to share between threads: a connection is used by one request at a time.
    """

    def __init__(
        self, *, idle_per_server: int = _IDLE_PER_SERVER, max_body: int = MAX_ANSWER_BYTES
    ) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._keep = idle_per_server
        self._max_body = max_body
        self._closed = False

    # -- httpx's seam -----------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                f"this transport speaks plain http, not {url.scheme!r}", request=request
            )
        limits = request.extensions.get("timeout", {})
        read = limits.get("read")
        timeout = float(read) if read is not None else None
        connect = limits.get("connect")
        head = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            answer = self.exchange(
                request.method,
                url.host,
                url.port or 80,
                url.raw_path.decode("ascii"),
                head,
                request.read() or None,
                timeout=timeout,
                connect_timeout=float(connect) if connect is not None else timeout,
            )
        except httpx.TransportError as exc:
            exc.request = request
            raise
        return httpx.Response(
            answer.status, headers=list(answer.headers), content=answer.body, request=request
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._idle = list(self._idle.values()), {}
        for pool in pools:
            for connection in pool:
                connection.close()

    # -- one exchange -----------------------------------------------------------------------

    def exchange(
        self,
        method: str,
        host: str,
        port: int,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
        *,
        timeout: float | None,
        connect_timeout: float | None,
    ) -> WireAnswer:
        """Send one request and read its whole answer.

        ``headers`` are sent as given (``Host`` is added when missing, ``Content-Length``
        when there is a body and it is missing); ``timeout`` bounds the sending and the
        whole answer, ``connect_timeout`` the connection. Raises httpx's transport errors.
        """
        key = (host, port)
        fixed, has_length = _header_lines_for(key, headers)
        head = f"{method} {target} HTTP/1.1\r\n{fixed}"
        if not has_length and (body is not None or method in _SENDS_BODY):
            head += f"Content-Length: {len(body or b'')}\r\n"
        payload = (head + "\r\n").encode("latin-1")
        if body:
            payload += body
        connection = self._checkout(key, connect_timeout)
        connection.reads.ends = None if timeout is None else time.monotonic() + timeout
        try:
            # Set each time: the previous answer's reads left the socket at the time that
            # answer had left (_SocketReads), never this request's timeout.
            connection.sock.settimeout(timeout)
            try:
                connection.sock.sendall(payload)
            except TimeoutError as exc:
                raise httpx.WriteTimeout(str(exc) or "timed out sending the request") from exc
            except OSError as exc:
                raise httpx.WriteError(str(exc)) from exc
            answer, reusable = _receive(connection, method, self._max_body)
        except BaseException:
            connection.close()
            raise
        self._checkin(key, connection, reusable)
        return answer

    def _checkout(self, key: tuple[str, int], connect_timeout: float | None) -> _Connection:
        while True:
            with self._lock:
                pool = self._idle.get(key)
                connection = pool.pop() if pool else None
            if connection is None:
                break
            if not connection.stale():
                return connection
            connection.close()
        return _connect(key, connect_timeout)

    def _checkin(self, key: tuple[str, int], connection: _Connection, reusable: bool) -> None:
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if reusable and not self._closed and len(pool) < self._keep:
                pool.append(connection)
                return
        connection.close()


def _connect(key: tuple[str, int], timeout: float | None) -> _Connection:
    try:
        sock = socket.create_connection(key, timeout=timeout)
    except TimeoutError as exc:
        raise httpx.ConnectTimeout(f"no connection to {key[0]}:{key[1]}: {exc}") from exc
    except OSError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    # Requests are written whole: Nagle's delay would only hold the next one up.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _Connection(sock)


def _receive(connection: _Connection, method: str, limit: int) -> tuple[WireAnswer, bool]:
    """The answer, and whether the connection may carry another request; a body over
    ``limit`` bytes is refused (``AnswerTooLargeError``), unread when its length says so."""
    try:
        while True:
            version, status, headers, fields = _head(connection.reader)
            if not 100 <= status < 200:
                break
        # The usual answer (HTTP/1.1, no Connection header, one plain Content-Length) is
        # read without the helpers' calls; they give the same for it.
        persistent = (
            version != "HTTP/1.0" if "connection" not in fields
            else _persistent(version, fields["connection"])
        )
        if method == "HEAD" or status in _NO_BODY:
            body = b""
        elif "transfer-encoding" in fields and "chunked" in fields["transfer-encoding"].lower():
            body = _chunked(connection.reader, limit)
        elif "content-length" in fields:
            text = fields["content-length"]
            size = int(text) if text.isdecimal() else _length(text)
            if size > limit:
                raise too_large(limit, size)
            body = connection.reader.read(size)
            if len(body) < size:
                raise _cut_short(len(body), size)
        else:
            body = _until_closed(connection.reader, limit)
            persistent = False
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out waiting for the answer") from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc
    return WireAnswer(status, tuple(headers), body), persistent


def _header_lines_for(
    key: tuple[str, int], headers: Iterable[tuple[str, str]]
) -> tuple[str, bool]:
    """The header lines after the request line (``Host`` first when not given), and whether
    they hold a ``Content-Length``."""
    lines: list[str] = []
    names: set[str] = set()
    for name, value in headers:
        names.add(name.lower())
        lines.append(f"{name}: {value}\r\n")
    if "host" not in names:
        host, port = key
        name = f"[{host}]" if ":" in host else host
        lines.insert(0, f"Host: {name}:{port}\r\n" if port != 80 else f"Host: {name}\r\n")
    return "".join(lines), "content-length" in names


def _head(
    reader: io.BufferedReader,
) -> tuple[str, int, list[tuple[str, str]], dict[str, str]]:
    """The status line, the header lines, and the headers by lower-case name (the last of a
    repeated name; what ``_receive`` looks up).

    An answer's head usually arrives whole in the reader's first read: then it is taken in
    one piece, decoded once and split, the same lines with the same checks as reading it line
    by line (which is what happens otherwise: a head split across reads, or lines ended by a
    bare LF). It is the first work after each wait for the server, where every call costs
    several times its warm cost.
    """
    buffered = reader.peek(1)
    end = buffered.find(b"\r\n\r\n")
    if end < 0 or buffered.count(b"\n", 0, end) != buffered.count(b"\r\n", 0, end):
        version, status = _status_line(reader)
        pairs = _header_lines(reader)
        return version, status, pairs, {name.lower(): value for name, value in pairs}
    # latin-1 maps each byte to one character and back: a line is quoted as read.
    lines = reader.read(end + 4)[:end].decode("latin-1").split("\r\n")
    version, status = _status_of(lines[0] + "\r\n")
    headers: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    # Checked as they come, the first one too many included: a malformed line among them is
    # the error, as when read line by line.
    for line in lines[1:_MAX_HEADERS + 2]:
        # _parse_header's work, inline: a call per header line is what this path saves.
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            quoted = (line.encode("latin-1") + _CRLF)[:80]
            raise httpx.RemoteProtocolError(f"malformed header line: {quoted!r}")
        value = value.strip()
        headers.append((name, value))
        fields[name.lower()] = value
    if len(lines) > _MAX_HEADERS + 1:
        raise httpx.RemoteProtocolError(f"more than {_MAX_HEADERS} header lines")
    return version, status, headers, fields


def _line(reader: io.BufferedReader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise httpx.RemoteProtocolError("the server sent a line longer than 64 KiB")
    return line


def _status_line(reader: io.BufferedReader) -> tuple[str, int]:
    line = _line(reader)
    if not line:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    return _parse_status(line)


def _parse_status(line: bytes) -> tuple[str, int]:
    return _status_of(line.decode("latin-1"))


def _status_of(line: str) -> tuple[str, int]:
    """The version and status of a status line, as decoded from latin-1 (its CRLF, when it
    came with one, is only quoted: the split drops it)."""
    if line.startswith(TLS_RECORD_STARTS):
        raise httpx.RemoteProtocolError(TLS_ANSWER)
    parts = line.split(None, 2)
    # isdecimal: what int() takes (isdigit also takes superscripts; see _length).
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdecimal():
        quoted = line.encode("latin-1")[:80]
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {quoted!r}")
    return parts[0], int(parts[1])


def _header_lines(reader: io.BufferedReader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = _line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise httpx.RemoteProtocolError("the server closed the connection within the headers")
        headers.append(_parse_header(line))
        if len(headers) > _MAX_HEADERS:
            raise httpx.RemoteProtocolError(f"more than {_MAX_HEADERS} header lines")


def _parse_header(line: bytes) -> tuple[str, str]:
    name, colon, value = line.decode("latin-1").partition(":")
    if not colon or not name.strip():
        raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
    return name.strip(), value.strip()


def _persistent(version: str, connection: str) -> bool:
    if not connection:
        # No Connection header (the usual answer): HTTP/1.1 keeps the connection.
        return version != "HTTP/1.0"
    tokens = {token.strip().lower() for token in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _length(value: str) -> int:
    # isdecimal, not isdigit: isdigit also accepts the superscripts a latin-1 head may hold
    # (bytes B2, B3, B9), which int() refuses; such a length is a bad one, as any other.
    if value.isdecimal():
        return int(value)  # one plain length, the usual answer: what the check below finds
    # Repeated Content-Length headers arrive joined by commas; they must agree.
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not next(iter(values)).isdecimal():
        raise httpx.RemoteProtocolError(f"bad Content-Length: {value!r}")
    return int(values.pop())


def _exactly(reader: io.BufferedReader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise _cut_short(len(data), size)
    return data


def _cut_short(got: int, size: int) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        f"the server closed the connection after {got} of {size} body bytes"
    )


def _chunked(reader: io.BufferedReader, limit: int) -> bytes:
    parts: list[bytes] = []
    size_so_far = 0
    while True:
        line = _line(reader)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError(f"bad chunk size line: {line[:80]!r}") from None
        if size == 0:
            break
        size_so_far += size
        if size_so_far > limit:
            raise too_large(limit)
        parts.append(_exactly(reader, size))
        if _line(reader) not in (b"\r\n", b"\n"):
            raise httpx.RemoteProtocolError("a chunk did not end with CRLF")
    _header_lines(reader)  # trailers, unused
    return b"".join(parts)


def _until_closed(reader: io.BufferedReader, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := reader.read1(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)
