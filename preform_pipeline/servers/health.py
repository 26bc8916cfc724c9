"""Health check: ``GET /`` must answer 200 within a short timeout.

``GET /`` returns the API version and touches no scene, so it is safe to send to an idle
server at any time. A server that accepts the connection but does not answer in time is hung
and counts as unhealthy, like one that refuses the connection.

A server that answers, but is none this client can use, is unhealthy with a ``refusal``: no
``GET /`` at all (404 or 405: another web server at that address, or a PreFormServer older
than the Local API range), or a proxy's page saying that its port wants https://. Asking
again gets the same answer, so the pool retires a remote answering so at its first check
instead of waiting for it to come back (a later check's may be a proxy's while the server
behind it restarts: pool.py). (A version outside the range is not judged here: the client
refuses it on first use, and the pool's test servers answer any version.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from preform_pipeline.answers import USE_HTTPS, BoundedTransport, https_port_answer
from preform_pipeline.api.versions import no_version_endpoint
from preform_pipeline.settings.servers import DEFAULT_HEALTH_TIMEOUT_S

__all__ = ["HealthResult", "check_health"]


@dataclass(frozen=True)
class HealthResult:
    """One check: ``detail`` says why a server is unhealthy, or which version answered;
    ``refusal`` (with what helps) when it answered as no server this client can use."""

    healthy: bool
    detail: str
    version: str | None = None
    elapsed_s: float = 0.0
    refusal: str | None = None


def check_health(
    url: str,
    *,
    timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> HealthResult:
    """Ask the server at ``url`` for ``GET /``; never raises for a server-side problem."""
    started = time.monotonic()
    target = url.rstrip("/") + "/"
    # Bounded: a check is never longer than its timeout, nor its answer larger than any
    # PreFormServer's (one dripping in, or 200 MB from whatever answers, held a pool thread).
    # Given a transport, httpx mounts no proxy from the environment: a proxy must never sit
    # between us and a server.
    bounded = BoundedTransport(transport or httpx.HTTPTransport())
    with httpx.Client(transport=bounded, timeout=timeout_s) as client:
        try:
            response = client.get(target)
        except httpx.TimeoutException:
            return HealthResult(False, f"no answer within {timeout_s:g} s (hung)", None,
                                time.monotonic() - started)
        except httpx.HTTPError as exc:
            return HealthResult(False, f"unreachable: {exc}", None, time.monotonic() - started)
    elapsed = time.monotonic() - started
    status = response.status_code
    if status != 200:
        return HealthResult(False, f"GET / answered HTTP {status}", None, elapsed,
                            _refusal(status, response.text))
    version: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("version"), str):
        version = body["version"]
    detail = f"version {version}" if version else "answered HTTP 200"
    return HealthResult(True, detail, version, elapsed)


def _refusal(status: int, text: str) -> str | None:
    """Why an answer other than 200 means a server this client can never use, or None (a
    502 from a proxy whose server is restarting, a 503: it may come back)."""
    if status in (404, 405):
        return str(no_version_endpoint(status))
    https = https_port_answer(status, text)
    return f"{https} ({USE_HTTPS})" if https is not None else None
