"""One HTTP exchange with a PreFormServer, and the mapping of its failures onto errors.

The mapping is what lets the executor choose between "retry on another server" and "this input
is wrong":

=====================================  ===========================  ==========
what happened                          error                        kind
=====================================  ===========================  ==========
connect refused, reset, broken reply   ServerUnreachableError       transient
no answer before the timeout           ServerTimeoutError           transient
HTTP 408                               ServerTimeoutError           transient
HTTP 5xx, 1xx/3xx, unreadable 2xx      ServerInternalError          transient
HTTP 4xx (other than 408)              RequestRejectedError         permanent
=====================================  ===========================  ==========

Every error carries the :class:`~preform_pipeline.errors.RequestInfo` (method, URL, contract
operation id), the HTTP status, and the ErrorModel ``code`` and ``message`` when the server
sent one. One ``api_request`` debug event is logged per exchange; request bodies are never
logged, so credentials sent to ``/login/`` cannot reach a log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlencode

# httpx imports httpcore only when its first transport is made; importing it here moves that
# one-off cost (about 80 ms of CPU) to start-up instead of the first build of a run.
import httpcore  # noqa: F401
import httpx

from preform_pipeline import __version__
from preform_pipeline.errors import (
    ApiError,
    RequestInfo,
    RequestRejectedError,
    ServerInternalError,
    ServerTimeoutError,
    ServerUnreachableError,
)
from preform_pipeline.logging import get_logger

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "ApiResponse",
    "HttpSession",
    "error_for_status",
    "error_for_transport",
    "error_fields",
]

#: A local server accepts or refuses a connection at once; waiting long only delays failover.
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0

#: Parsed request URLs kept for reuse (a few per scene: its import, step and scene URLs).
_PARSED_URLS: Final = 256

#: How much of an unreadable error body an error keeps.
_BODY_EXCERPT_CHARS: Final = 500

_HINT_REJECTED = "the server refused this input; change the request, retrying it will not help"
_HINT_INTERNAL = "the server failed; retry on another server or restart this one"
_HINT_UNREACHABLE = "check that PreFormServer is running and listening at this address"
_HINT_TIMEOUT = "the server may be hung or overloaded; retry elsewhere or allow more time"

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


def _describe(status: int, code: str | None, message: str | None) -> str:
    detail = ": ".join(part for part in (code, message) if part)
    return f"server answered {status}" + (f" {detail}" if detail else "")


def error_for_status(status: int, body: Any, request: RequestInfo) -> ApiError:
    """The error for a non-2xx answer (see the table in the module docstring)."""
    code, message = error_fields(body)
    text = _describe(status, code, message)
    fields: dict[str, Any] = {
        "request": request,
        "status_code": status,
        "code": code,
        "server_message": message,
        "body": body,
    }
    if status == httpx.codes.REQUEST_TIMEOUT:
        return ServerTimeoutError(text, hint=_HINT_TIMEOUT, **fields)
    if 400 <= status < 500:
        return RequestRejectedError(text, hint=_HINT_REJECTED, **fields)
    if status >= 500:
        return ServerInternalError(text, hint=_HINT_INTERNAL, **fields)
    return ServerInternalError(f"unexpected answer: {text}", hint=_HINT_INTERNAL, **fields)


def error_for_transport(
    exc: httpx.TransportError, request: RequestInfo, timeout: float
) -> ApiError:
    """The error for a request that got no (complete) answer."""
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeoutError(
            f"no answer within {timeout:.3g} s ({type(exc).__name__})",
            request=request,
            hint=_HINT_TIMEOUT,
        )
    return ServerUnreachableError(
        f"server unreachable: {type(exc).__name__}: {exc}",
        request=request,
        hint=_HINT_UNREACHABLE,
    )


def _decode(response: httpx.Response) -> Any:
    """The JSON body, ``None`` when empty; raises ``ValueError`` when it is not JSON."""
    content = response.content
    if not content.strip():
        return None
    return json.loads(content)


@lru_cache(maxsize=_PARSED_URLS)
def _parsed(url: str) -> httpx.URL:
    """The parsed URL, kept: a build sends one import per model to the same URL, and
    parsing (httpx validates every character) is a good part of a request's CPU."""
    return httpx.URL(url)


class HttpSession:
    """Sends requests to one server through an httpx transport and maps every failure.

    The Local API needs none of what ``httpx.Client.send`` adds around the transport
    (redirects, cookies, auth flows, event hooks, proxies from the environment), and those
    layers (URL merging, cookie extraction) were most of the runner's CPU per request. So
    each request is one ``httpx.Request`` built from the full URL and handed to the
    transport (``transport=`` is still the seam tests use); its body is read at once and
    the connection goes back to the transport's pool.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None,
        clock: Callable[[], float],
    ) -> None:
        self._base = str(httpx.URL(base_url)).rstrip("/")
        if transport is None:
            # PreFormServer speaks plain HTTP: loading the CA bundle for a default transport
            # costs about 20 ms of CPU and is never used there.
            transport = httpx.HTTPTransport(verify=not self._base.startswith("http://"))
        self._transport = transport
        self._headers = httpx.Headers({
            "Accept": "application/json",
            "User-Agent": f"preform-pipeline/{__version__}",
        })
        self._clock = clock

    @property
    def base_url(self) -> str:
        return self._base

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
    ) -> ApiResponse:
        """Send one request; a 2xx answer comes back, anything else raises an ApiError."""
        url = self._base + path
        if params:
            url += "?" + urlencode(params)
        info = RequestInfo(method=method, url=url, operation=operation)
        if timeout <= 0:
            raise ServerTimeoutError(
                "the deadline passed before the request was sent", request=info, hint=_HINT_TIMEOUT
            )
        limits = httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT_S))
        request = httpx.Request(
            method, _parsed(url), headers=self._headers, json=json_body,
            extensions={"timeout": limits.as_dict()},
        )
        started = self._clock()
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            self._log(info, path, None, started, error=type(exc).__name__)
            raise error_for_transport(exc, info, timeout) from exc
        self._log(info, path, response.status_code, started)
        try:
            body = _decode(response)
        except ValueError:
            body = response.text[:_BODY_EXCERPT_CHARS]
            if response.is_success:
                raise ServerInternalError(
                    f"server answered {response.status_code} with a body that is not JSON",
                    request=info,
                    status_code=response.status_code,
                    body=body,
                    hint=_HINT_INTERNAL,
                ) from None
        if not response.is_success:
            raise error_for_status(response.status_code, body, info)
        return ApiResponse(response.status_code, body, info)

    def _log(
        self,
        info: RequestInfo,
        path: str,
        status: int | None,
        started: float,
        *,
        error: str | None = None,
    ) -> None:
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
