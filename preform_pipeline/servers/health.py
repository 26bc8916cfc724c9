"""Health check: ``GET /`` must answer 200 within a short timeout.

``GET /`` returns the API version and touches no scene, so it is safe to send to an idle
server at any time. A server that accepts the connection but does not answer in time is hung
and counts as unhealthy, like one that refuses the connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from preform_pipeline.answers import BoundedTransport
from preform_pipeline.settings.servers import DEFAULT_HEALTH_TIMEOUT_S

__all__ = ["HealthResult", "check_health"]


@dataclass(frozen=True)
class HealthResult:
    """One check: ``detail`` says why a server is unhealthy, or which version answered."""

    healthy: bool
    detail: str
    version: str | None = None
    elapsed_s: float = 0.0


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
    if response.status_code != 200:
        return HealthResult(False, f"GET / answered HTTP {response.status_code}", None, elapsed)
    version: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("version"), str):
        version = body["version"]
    detail = f"version {version}" if version else "answered HTTP 200"
    return HealthResult(True, detail, version, elapsed)
