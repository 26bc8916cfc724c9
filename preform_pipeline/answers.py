"""Reading an HTTP answer within bounds: at most so many bytes, and within so many seconds.

Both our clients (the Local API's and the Web API's) talk to servers we do not control, often
through proxies, VPNs and Wi-Fi. A proxy's error page, a misconfigured address that reaches
a file server, or a broken server can send a body of any size: read whole, a 200 MB answer
took 630 MB of the runner's memory. And a server that drips one byte a second never trips a
read timeout (each read gets its byte in time), so a request could last for hours. The rule,
written once here: an answer larger than :data:`MAX_ANSWER_BYTES` is refused (by its
``Content-Length`` before anything is read, else as soon as it passes the limit), and an
answer still arriving when its request's time is up is given up as a timeout.

The errors are httpx's transport errors, so every caller maps them with its others:
:class:`AnswerTooLargeError` (a ``RemoteProtocolError``) and ``httpx.ReadTimeout``.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Final

import httpx

__all__ = [
    "MAX_ANSWER_BYTES",
    "USE_HTTPS",
    "AnswerTooLargeError",
    "BoundedStream",
    "BoundedTransport",
    "bounded_response",
    "check_declared_length",
    "https_port_answer",
    "redirect_target",
    "tls_mismatch",
    "too_large",
]

#: The largest answer either API sends is a few megabytes (a scene of a thousand models, a
#: page of a hundred prints is a few hundred kilobytes); anything near this is not an answer
#: of theirs.
MAX_ANSWER_BYTES: Final = 32 * 1024 * 1024


#: The first bytes of a TLS record (an alert, or a handshake): a TLS server's answer to a
#: request it could not read as TLS.
TLS_RECORD_STARTS: Final = ("\x15\x03", "\x16\x03")
#: What both answers below mean, and what each message of theirs ends with.
_NEEDS_HTTPS: Final = "its address needs https://"
#: How Python's ssl module says the other side closed during the handshake.
_TLS_HUNG_UP: Final = "TLS/SSL connection has been closed (EOF)"
#: What helps with either.
USE_HTTPS: Final = "use the https:// address of this server"
#: What a TLS answer to plain HTTP means.
TLS_ANSWER: Final = f"the server answered in TLS, not plain HTTP: {_NEEDS_HTTPS}"
#: What nginx (and the proxies that copy it) says, in a 400 page, to plain HTTP sent to the
#: port where it expects TLS: a remote written ``http://`` where its proxy wants ``https://``.
_HTTPS_PORT_PAGE: Final = "the plain http request was sent to https port"
#: What that page means.
HTTPS_PORT_ANSWER: Final = (
    f'the server answered HTTP 400 "The plain HTTP request was sent to HTTPS port": '
    f"{_NEEDS_HTTPS}"
)


def redirect_target(location: str | None) -> str:
    """Where a redirect points, for a message: scheme, host and path, never its query (a
    sign-in page's link may carry anything)."""
    target = urllib.parse.urlsplit(location or "")
    return f"{target.scheme}://{target.netloc}{target.path}" if target.netloc else "elsewhere"


def https_port_answer(status: int, text: str) -> str | None:
    """:data:`HTTPS_PORT_ANSWER` when an answer (its status and body) is a proxy's page for
    plain HTTP sent to its HTTPS port, else None."""
    if status == 400 and _HTTPS_PORT_PAGE in " ".join(text.lower().split()):
        return HTTPS_PORT_ANSWER
    return None


def tls_mismatch(exc: BaseException) -> str | None:
    """What helps when a request failed because the two sides disagree about TLS (https:// to
    a plain server, http:// to a TLS one, a sign-in page intercepting https), else None."""
    text = str(exc)
    if TLS_ANSWER in text:
        return USE_HTTPS
    if "[SSL: CERTIFICATE_VERIFY_FAILED]" in text:
        return ("the server's certificate is not trusted: a sign-in page (a guest Wi-Fi's "
                "captive portal) or a proxy may be answering in the server's place")
    if _TLS_HUNG_UP in text or "UNEXPECTED_EOF_WHILE_READING" in text:
        # A plain server may hang up on a hello it cannot read rather than answer it: which
        # of the two a client meets depends on timing, so both are told, the hang-up hedged.
        return ("the server hung up during the TLS handshake: it may not speak TLS at this "
                "address: check whether it needs http://")
    if "[SSL:" in text:
        return "the server does not speak TLS at this address: check whether it needs http://"
    return None


class AnswerTooLargeError(httpx.RemoteProtocolError):
    """The answer's body is larger than the limit; nothing more of it was read."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


def too_large(limit: int, declared: int | None = None) -> AnswerTooLargeError:
    """The error for a body over ``limit`` bytes (``declared``: its stated length)."""
    size = f"{declared / 1_048_576:.0f} MiB, " if declared is not None else ""
    unread = "it was not read" if declared is not None else "the rest was not read"
    return AnswerTooLargeError(
        f"the answer's body is larger than any this API sends ({size}over the "
        f"{limit // 1_048_576} MiB limit); {unread}",
        limit=limit,
    )


def check_declared_length(value: str | None, limit: int) -> None:
    """Refuse, before reading, a body whose ``Content-Length`` is over ``limit``."""
    if value is not None and value.strip().isdecimal() and int(value) > limit:
        raise too_large(limit, int(value))


class BoundedStream(httpx.SyncByteStream):
    """An answer's body stream that stops at ``limit`` bytes or at ``ends`` on ``clock``
    (a ``time.monotonic``-like function)."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        *,
        limit: int,
        ends: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._ends = ends
        self._clock = clock

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise too_large(self._limit)
            if self._clock() > self._ends:
                raise httpx.ReadTimeout("the answer was still arriving when its time was up")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class BoundedTransport(httpx.BaseTransport):
    """Any httpx transport with every answer's body bounded: at most ``limit`` bytes, all of
    it arrived within the request's read timeout (none: no time bound)."""

    def __init__(self, inner: httpx.BaseTransport, *, limit: int = MAX_ANSWER_BYTES) -> None:
        self._inner = inner
        self._limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        read = request.extensions.get("timeout", {}).get("read")
        return bounded_response(
            request,
            self._inner.handle_request(request),
            seconds=float(read) if read is not None else float("inf"),
            limit=self._limit,
        )

    def close(self) -> None:
        self._inner.close()


def bounded_response(
    request: httpx.Request,
    response: httpx.Response,
    *,
    seconds: float,
    limit: int = MAX_ANSWER_BYTES,
    clock: Callable[[], float] = time.monotonic,
) -> httpx.Response:
    """``response`` to ``request`` (straight from a transport, body unread) with its body
    bounded: at most ``limit`` bytes, all arrived within ``seconds`` from now."""
    try:
        check_declared_length(response.headers.get("Content-Length"), limit)
    except AnswerTooLargeError:
        response.close()
        raise
    stream = response.stream
    assert isinstance(stream, httpx.SyncByteStream)  # a sync transport's answer
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=BoundedStream(stream, limit=limit, ends=clock() + seconds, clock=clock),
        request=request,
        extensions=response.extensions,
    )
