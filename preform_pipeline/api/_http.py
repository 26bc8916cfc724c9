"""One HTTP exchange with a PreFormServer, and the mapping of its failures onto errors.

The mapping is what lets the executor choose between "retry on another server" and "this input
is wrong":

=====================================  ===========================  ==========
what happened                          error                        kind
=====================================  ===========================  ==========
connect refused, reset, broken reply   ServerUnreachableError       transient
no whole answer before the timeout     ServerTimeoutError           transient
HTTP 408                               ServerTimeoutError           transient
HTTP 429, 503 (after their Retry-After)  ServerBusyError            transient
HTTP 5xx, 1xx/3xx, unreadable 2xx      ServerInternalError          transient
a 2xx but 200 and 202, or one holding
an ErrorModel ``error``                ServerInternalError          transient
an answer over MAX_ANSWER_BYTES        ServerInternalError          transient
HTTP 4xx (other than 408)              RequestRejectedError         permanent
=====================================  ===========================  ==========

A 429 or 503 that says when to come back (``Retry-After``: a proxy in front of PreFormServer
in maintenance) is waited out and the request sent again, within the request's own time (or
the time its caller says it may wait, ``wait_until``: a long operation's deadline for its
status reads) and the rules of :mod:`preform_pipeline.retryafter`; one that still stands, or
asks for longer,
is a :class:`~preform_pipeline.errors.ServerBusyError` saying until when (another server
takes the build meanwhile).

Every error carries the :class:`~preform_pipeline.errors.RequestInfo` (method, URL, contract
operation id; the URL without the password a server's url may carry:
:attr:`HttpSession.base_url`), the HTTP status, and the ErrorModel ``code`` and ``message``
when the server sent one. One ``api_request`` debug event is logged per exchange; request
bodies are never logged, so credentials sent to ``/login/`` cannot reach a log.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx

from preform_pipeline import __version__
from preform_pipeline.answers import (
    USE_HTTPS,
    AnswerTooLargeError,
    BoundedTransport,
    https_port_answer,
    redirect_target,
    tls_mismatch,
)
from preform_pipeline.api._wire import WireAnswer, WireTransport
from preform_pipeline.clock import Clock
from preform_pipeline.cloud.login import LOGIN_SETTING_HINT
from preform_pipeline.errors import (
    ApiError,
    RequestInfo,
    RequestRejectedError,
    ServerBusyError,
    ServerInternalError,
    ServerTimeoutError,
    ServerUnreachableError,
)
from preform_pipeline.logging import dropped, get_logger, hide_secrets
from preform_pipeline.retryafter import (
    MAX_RETRY_AFTER_S,
    MAX_RETRY_AFTER_TRIES,
    RETRY_AFTER_STATUSES,
    AnswersWait,
    WaitTally,
    asked_to_wait,
    longest_wait,
)
from preform_pipeline.transportwords import transport_failure
from preform_pipeline.urlauth import CREDENTIALS_REFUSED, url_auth

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "ApiResponse",
    "HttpSession",
    "code_hint",
    "error_for_status",
    "error_for_transport",
    "error_fields",
]

#: A local server accepts or refuses a connection at once; waiting long only delays failover.
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0

#: Parsed request URLs kept for reuse (a few per scene: its import, step and scene URLs).
_PARSED_URLS: Final = 256

#: Characters a request target keeps as they are (everything else is percent-encoded, as
#: httpx does): the client quotes ids itself, so this only guards against a stray space.
_TARGET_SAFE: Final = "/?&=%:@!$'()*+,;~-._"
#: A target made only of characters ``quote`` keeps (its own safe set and
#: ``_TARGET_SAFE``): quoting it would return it unchanged, so it is sent as it is (every
#: request's target is such; quoting took four calls per request).
_PLAIN_TARGET: Final = re.compile(r"[A-Za-z0-9/?&=%:@!$'()*+,;~\-._]*")

#: How much of an unreadable error body an error keeps.
_BODY_EXCERPT_CHARS: Final = 500

_HINT_REJECTED = "the server refused this input; change the request, retrying it will not help"
_HINT_INTERNAL = "the server failed; retry on another server or restart this one"
_HINT_UNREACHABLE = "check that PreFormServer is running and listening at this address"
_HINT_TIMEOUT = "the server may be hung or overloaded; retry elsewhere or allow more time"
_HINT_NOT_PREFORM = (
    "something other than PreFormServer may be answering at this address, such as a proxy "
    "or another program; check the server address"
)

#: The statuses PreFormServer answers a success with (every operation of the Local API
#: contract): 200, and 202 for an operation accepted to run on. Another 2xx (a 204 without
#: the answer, a 206 with part of it) is not PreFormServer's: taken as a success, a step the
#: server never did (a label, an interference check) passed as done (session 47's fuzzer).
SUCCESS_STATUSES: Final = frozenset({200, 202})

log = get_logger(__name__)


@dataclass(frozen=True)
class ApiResponse:
    """A 2xx answer: status, the decoded JSON body (``None`` when empty), and the request."""

    status_code: int
    body: Any
    request: RequestInfo


def error_fields(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from an error body: ErrorModel, or hollow's ``failures`` list."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            message = error.get("message")
            return (
                code if isinstance(code, str) else None,
                message if isinstance(message, str) else None,
            )
        failures = body.get("failures")
        if isinstance(failures, list):
            ids = ", ".join(str(f) for f in failures)
            return None, f"the operation failed for models: {ids}"
    if isinstance(body, str) and body.strip():
        return None, body.strip()[:_BODY_EXCERPT_CHARS]
    return None, None


#: What to do about the server's error codes whose fix is the user's, not the request's: the
#: server's own message speaks of its API (``NOT_LOGGED_IN``: "POST /login/ first").
_CODE_HINTS: Final = {
    "NOT_LOGGED_IN": f"the server is not logged in to the Dashboard: {LOGIN_SETTING_HINT}",
}


def code_hint(code: str | None, default: str) -> str:
    """The hint for an error with the server's ``code``: its own when it has one (see
    ``_CODE_HINTS``), else ``default``."""
    return _CODE_HINTS.get(code or "", default)


def _describe(status: int, code: str | None, message: str | None) -> str:
    detail = ": ".join(part for part in (code, message) if part)
    return f"server answered {status}" + (f" {detail}" if detail else "")


def _answer_fields(status: int, body: Any, request: RequestInfo) -> dict[str, Any]:
    """What every error of an answer carries: the request, the status, the ErrorModel's code
    and message (when it has one) and the body."""
    code, message = error_fields(body)
    return {"request": request, "status_code": status, "code": code, "server_message": message,
            "body": body}


def error_for_status(
    status: int, body: Any, request: RequestInfo, wait: AnswersWait | None = None, *,
    limit_s: float = MAX_RETRY_AFTER_S, limit: str = "", sent: int = 1,
) -> ApiError:
    """The error for a non-2xx answer (see the table in the module docstring). ``wait``: what
    a 429 or 503 said of when to come back; ``limit_s`` and ``limit``: the longest wait the
    request could take, and its words when that was not the Retry-After rule's own;
    ``sent``: how many times the request was sent, each after the wait the last asked."""
    fields = _answer_fields(status, body, request)
    code, message = fields["code"], fields["server_message"]
    text = _describe(status, code, message)
    if status in RETRY_AFTER_STATUSES:
        seconds = None if wait is None else wait.seconds
        asked = "" if wait is None or seconds is None else (
            f": {asked_to_wait(seconds, wait.now, limit_s=limit_s, limit=limit)}")
        when = "" if wait is None or seconds is None else f", or try again {wait.when}"
        # Its time waited out already, as often as a request is: not "asked to wait 1 s" alone.
        # "As often as a request may be" only when it was: a repeat's wait refused by a bound
        # (the time left, the total) ends it sooner.
        again = "" if sent <= 1 else (
            f"; sent {sent} times, waiting what it asked between them"
            + (", as often as a request may be" if sent > MAX_RETRY_AFTER_TRIES else ""))
        return ServerBusyError(
            text + asked + again, retry_after_s=seconds,
            # Not "the build is tried on another server": with one server, or on the last
            # attempt, it is not; the runner says where a retry goes (build_retry).
            hint=f"the server, or a proxy in front of it, is busy or down for now; retry on "
            f"another server{when}", **fields)
    if status == httpx.codes.REQUEST_TIMEOUT:
        return ServerTimeoutError(text, hint=_HINT_TIMEOUT, **fields)
    if 400 <= status < 500:
        # A proxy's page for plain HTTP sent to its HTTPS port: the address is wrong, not
        # the request.
        https = https_port_answer(status, message or "")
        if https is not None:
            return RequestRejectedError(https, hint=USE_HTTPS, **fields)
        if status == httpx.codes.UNAUTHORIZED:
            return RequestRejectedError(text, hint=CREDENTIALS_REFUSED, **fields)
        return RequestRejectedError(text, hint=code_hint(code, _HINT_REJECTED), **fields)
    if status >= 500:
        return ServerInternalError(text, hint=_HINT_INTERNAL, **fields)
    return ServerInternalError(f"unexpected answer: {text}", hint=_HINT_INTERNAL, **fields)


def error_for_transport(
    exc: httpx.TransportError, request: RequestInfo, timeout: float
) -> ApiError:
    """The error for a request that got no (complete) answer."""
    if isinstance(exc, AnswerTooLargeError):
        return ServerInternalError(str(exc), request=request, hint=_HINT_NOT_PREFORM)
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeoutError(
            f"{transport_failure(exc)} within {timeout:.3g} s",
            request=request,
            hint=_HINT_TIMEOUT,
        )
    return ServerUnreachableError(
        f"server unreachable: {transport_failure(exc)}",
        request=request,
        hint=tls_mismatch(exc) or _HINT_UNREACHABLE,
    )


#: ``json.loads``' own decoder settings, for the answers decoded the short way.
_JSON_DECODER: Final = json.JSONDecoder()
#: The first bytes of a JSON object or array.
_JSON_OPENERS: Final = (b"{", b"[")


def _decode(content: bytes) -> Any:
    """The JSON body, ``None`` when empty; raises ``ValueError`` when it is not JSON.

    ``json.loads`` first works out a body's encoding from its first bytes; a body that
    opens with ``{`` or ``[`` followed by anything but a NUL has no byte-order mark and is
    not UTF-16 or UTF-32, so ``json.loads`` would take it as UTF-8: it is decoded as such
    here, without those checks (every answer passes here, right after a wait).
    """
    if not content.strip():
        return None
    if content[:1] in _JSON_OPENERS and content[1:2] != b"\x00":
        return _JSON_DECODER.decode(content.decode("utf-8", "surrogatepass"))
    return json.loads(content)


def _text(content: bytes, content_type: str | None) -> str:
    """A body as text for an error excerpt: its stated charset, else UTF-8 (as httpx)."""
    charset = "utf-8"
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


#: httpx's ``json=`` encoding, one encoder for every request (``json.dumps`` with options
#: builds a new one per call).
_JSON_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_bytes(body: Any) -> bytes:
    """A request's JSON body, encoded as httpx encodes ``json=``."""
    return _JSON_ENCODER.encode(body).encode()


@lru_cache(maxsize=_PARSED_URLS)
def _parsed(url: str) -> httpx.URL:
    """The parsed URL, kept: a build sends one import per model to the same URL, and
    parsing (httpx validates every character) is a good part of a request's CPU."""
    return httpx.URL(url)


class HttpSession:
    """Sends requests to one server and maps every failure.

    The Local API needs none of what ``httpx.Client.send`` adds around a transport
    (redirects, cookies, auth flows, event hooks, proxies from the environment), and those
    layers were most of the runner's CPU per request. By default a plain-HTTP server gets a
    :class:`~preform_pipeline.api._wire.WireTransport`, called directly with the request's
    method, target, headers and body. An injected ``transport=`` (the seam tests use:
    ``httpx.MockTransport``) gets each request as one ``httpx.Request`` built from the full
    URL, its body read at once; so does an https server, through httpx's own transport.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None,
        clock: Clock,
    ) -> None:
        # A url's ``user:password@`` is basic auth on every request, as the health check sends
        # it (a remote behind a proxy with basic auth): the rule of urlauth, written once.
        auth = url_auth(base_url)
        parsed = httpx.URL(auth.url)
        self._base = str(parsed).rstrip("/")
        # What its errors and events name it by: a password written in the url
        # (``http://olivia:hunter2@printhost:44388``) as the log shows one, never whole; an
        # error's message is a build's reason, which the summary, report and job store repeat.
        self._shown = hide_secrets(str(httpx.URL(base_url)).rstrip("/"))
        self._wire: WireTransport | None = None
        if transport is None and parsed.scheme == "http":
            transport = self._wire = WireTransport()
        elif isinstance(transport, WireTransport):
            self._wire = transport
        else:
            # The wire transport bounds its answers itself; httpx's get the same bounds.
            transport = BoundedTransport(transport or httpx.HTTPTransport())
        self._transport = transport
        self._host = parsed.host
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._prefix = parsed.raw_path.decode("ascii").rstrip("/")
        self._wire_headers: tuple[tuple[str, str], ...] = (
            ("Accept", "application/json"), ("User-Agent", f"preform-pipeline/{__version__}"),
            *auth.headers(),
        )
        # Made once, not per JSON request.
        self._json_headers = (*self._wire_headers, ("Content-Type", "application/json"))
        self._headers = httpx.Headers(dict(self._wire_headers))
        self._clock = clock.monotonic
        self._wall = clock.now
        self._sleep = clock.sleep

    @property
    def base_url(self) -> str:
        """The server's url as errors and events name it: its password, if any, hidden."""
        return self._shown

    def close(self) -> None:
        self._transport.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        timeout: float,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        wait_until: tuple[float, str] | None = None,
        waited_for: str = "",
        tally: WaitTally | None = None,
    ) -> ApiResponse:
        """Send one request; a 2xx answer comes back, anything else raises an ApiError.

        ``waited_for``: for a long operation's status read, the operation it waits for, which
        its errors and events name (:class:`~preform_pipeline.errors.RequestInfo`).

        ``wait_until``: how long a Retry-After may be waited when that is longer than the
        request's own time, as a time on the clock and its words ("the operation's"): a long
        operation's status read may wait out its proxy's maintenance as long as the operation
        itself may take, each read sent again with its own ``timeout``.

        ``tally``: the Retry-After waits of the operation this request is part of, which
        count together against the total (a fresh one: this request's alone)."""
        query = "?" + urlencode(params) if params else ""
        url = self._base + path + query
        info = RequestInfo(method=method, url=self._shown + path + query, operation=operation,
                           waited_for=waited_for)
        if timeout <= 0:
            raise ServerTimeoutError(
                "the deadline passed before the request was sent", request=info, hint=_HINT_TIMEOUT
            )
        ends = self._clock() + timeout
        waits_end, whose = ends, "the request's"
        if wait_until is not None and wait_until[0] > ends:
            waits_end, whose = wait_until
        tries = 0
        # The Retry-After waits this request, or its operation, took: at most their total.
        tally = WaitTally() if tally is None else tally
        while True:
            left = ends - self._clock()
            connect = min(left, DEFAULT_CONNECT_TIMEOUT_S)
            started = self._clock()
            try:
                if self._wire is not None:
                    answer = self._exchange(method, path + query, json_body, left, connect)
                else:
                    answer = self._send(method, url, json_body, left, connect)
            except httpx.TransportError as exc:
                self._log(info, path, None, started, error=type(exc).__name__)
                raise error_for_transport(exc, info, left) from exc
            if not dropped(__name__, logging.DEBUG):  # asked here: no call when it is dropped
                self._log(info, path, answer.status, started)
            if answer.status not in RETRY_AFTER_STATUSES:
                return _api_response(answer, info)
            waited_s = tally.seconds
            wait = AnswersWait.of(answer.status, answer.header("retry-after"), self._wall(),
                                  waited_s=waited_s)
            # The wait counts against the request's own time (or its caller's), and with the
            # earlier ones against the total (retryafter.longest_wait: every bound's words).
            limit_s, limit = longest_wait(
                waited_s, time_left=(waits_end - self._clock(), whose), of=tally.of)
            # "At most" the longest wait, as the Web API client and asked_to_wait read it.
            if wait.seconds is None or tries >= MAX_RETRY_AFTER_TRIES \
                    or wait.seconds > limit_s:
                if wait.seconds is not None:
                    log.info("api_retry_after_not_waited", operation=info.named,
                             method=method, path=path, status=answer.status,
                             retry_after_s=round(wait.seconds, 3), attempt=tries + 1,
                             waited_s=round(waited_s, 3))
                raise _api_error(answer, info, wait, limit_s=limit_s, limit=limit,
                                 sent=tries + 1)
            log.warning("api_retry_after", operation=info.named, method=method, path=path,
                        status=answer.status, retry_after_s=round(wait.seconds, 3),
                        attempt=tries + 1, max_retries=MAX_RETRY_AFTER_TRIES,
                        waited_s=round(waited_s, 3))
            self._sleep(wait.seconds)
            tally.seconds += wait.seconds
            # Sent again with its own time, within what its caller may wait.
            ends = max(ends, min(self._clock() + timeout, waits_end))
            tries += 1

    def _exchange(
        self, method: str, target: str, json_body: Any, timeout: float, connect: float
    ) -> WireAnswer:
        assert self._wire is not None
        headers = self._wire_headers
        body = None
        if json_body is not None:
            body = _json_bytes(json_body)
            headers = self._json_headers
        return self._wire.exchange(
            method, self._host, self._port, _quoted_target(self._prefix + target),
            headers, body, timeout=timeout, connect_timeout=connect,
        )

    def _send(
        self, method: str, url: str, json_body: Any, timeout: float, connect: float
    ) -> WireAnswer:
        limits = httpx.Timeout(timeout, connect=connect)
        request = httpx.Request(
            method, _parsed(url), headers=self._headers, json=json_body,
            extensions={"timeout": limits.as_dict()},
        )
        response = self._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        headers = tuple(
            (name, response.headers[name])
            for name in ("content-type", "location", "retry-after") if name in response.headers
        )
        return WireAnswer(response.status_code, headers, response.content)

    def _log(
        self,
        info: RequestInfo,
        path: str,
        status: int | None,
        started: float,
        *,
        error: str | None = None,
    ) -> None:
        if dropped(__name__, logging.DEBUG):
            return
        elapsed_ms = round((self._clock() - started) * 1000.0, 1)
        extra = {"error": error} if error else {}
        log.debug(
            "api_request",
            method=info.method,
            path=path,
            operation=info.operation,
            status=status,
            elapsed_ms=elapsed_ms,
            **extra,
        )


def _quoted_target(target: str) -> str:
    """``quote(target, safe=_TARGET_SAFE)``, without the call when nothing needs quoting."""
    if _PLAIN_TARGET.fullmatch(target):
        return target
    return quote(target, safe=_TARGET_SAFE)


def _body(answer: WireAnswer) -> Any:
    """The answer's decoded JSON body, else an excerpt of its text (raises ``ValueError``
    when a 2xx is not JSON).

    The header pairs are searched for the content type only when the body is not JSON (its
    charset decodes the error excerpt), not for every answer."""
    try:
        return _decode(answer.body)
    except ValueError:
        if 200 <= answer.status < 300:
            raise
        return _text(answer.body, answer.header("content-type"))[:_BODY_EXCERPT_CHARS]


def _api_error(answer: WireAnswer, info: RequestInfo, wait: AnswersWait, *,
               limit_s: float, limit: str, sent: int) -> ApiError:
    """The error for a 429 or 503 not waited out (see :func:`error_for_status`)."""
    return error_for_status(answer.status, _body(answer), info, wait, limit_s=limit_s,
                            limit=limit, sent=sent)


def _api_response(answer: WireAnswer, info: RequestInfo) -> ApiResponse:
    """A 2xx answer's decoded body; any other answer, or an unreadable 2xx, raises."""
    success = 200 <= answer.status < 300
    try:
        body = _body(answer)
    except ValueError:
        raise ServerInternalError(
            f"server answered {answer.status} with a body that is not JSON",
            request=info,
            status_code=answer.status,
            body=_text(answer.body, answer.header("content-type"))[:_BODY_EXCERPT_CHARS],
            hint=_HINT_INTERNAL,
        ) from None
    if 300 <= answer.status < 400:
        # PreFormServer never redirects: whatever does is in front of it, or in its place.
        raise ServerInternalError(
            f"server answered {answer.status}, a redirect to "
            f"{redirect_target(answer.header('location'))}, which PreFormServer never sends",
            request=info,
            status_code=answer.status,
            body=body,
            hint=_HINT_NOT_PREFORM,
        )
    if not success:
        raise error_for_status(answer.status, body, info)
    # No success of the contract holds an ``error``: an ErrorModel under a 2xx is a failure
    # said as a success (by a proxy, or a server of another version), and nothing to act on.
    failed = isinstance(body, dict) and isinstance(body.get("error"), Mapping)
    if answer.status not in SUCCESS_STATUSES or failed:
        fields = _answer_fields(answer.status, body, info)
        detail = ": ".join(part for part in (fields["code"], fields["server_message"]) if part)
        said = f" with an error ({detail or 'no code or message'})" if failed else ""
        raise ServerInternalError(
            f"server answered {answer.status}{said}, which is not how PreFormServer answers "
            f"a success (200, or 202 for an operation it runs on)",
            hint=_HINT_NOT_PREFORM, **fields)
    return ApiResponse(answer.status, body, info)
