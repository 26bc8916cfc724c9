"""Health check: ``GET /`` must answer 200 with a Local API version, within a short timeout.

``GET /`` returns the API version and touches no scene, so it is safe to send to an idle
server at any time. A server that accepts the connection but does not answer in time is hung
and counts as unhealthy, like one that refuses the connection.

A server that answers, but is none this client can use, is unhealthy with a ``refusal`` (why,
with what helps): no ``GET /`` at all (404 or 405: another web server at that address, or a
PreFormServer older than the Local API range), a 200 that is not the contract's
``{"version": "..."}`` (a NAS's or router's home page, a wrong port), a version outside the
range this client supports (the client's own rule, api/versions.py), a proxy's page saying
that its port wants https://, or a 401 (a proxy's basic auth refused the url's user and
password, which are sent as the client sends them: urlauth). Asking again gets the same
answer, so the pool retires a server answering so at its first check instead of waiting for
it to come back (a remote's later check may be a proxy's while the server behind it
restarts: pool.py). A version outside the range is the server's own word (no proxy's page
names one): :attr:`HealthResult.from_server`, a refusal at any check.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Final

import httpx

from preform_pipeline.answers import USE_HTTPS, BoundedTransport, https_port_answer
from preform_pipeline.api.versions import (
    no_version_endpoint,
    not_a_version_answer,
    require_supported,
)
from preform_pipeline.errors import UnsupportedApiVersionError
from preform_pipeline.settings.servers import DEFAULT_HEALTH_TIMEOUT_S
from preform_pipeline.urlauth import CREDENTIALS_REFUSED, url_auth

__all__ = ["HealthResult", "check_health"]

#: A page's title, looked for in its first bytes only (it is in the head).
_TITLE: Final = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_TITLE_WITHIN: Final = 64 * 1024
#: A title longer than this is cut: it names the page, it is not the page.
_TITLE_CHARS: Final = 80


@dataclass(frozen=True)
class HealthResult:
    """One check: ``detail`` says why a server is unhealthy, or which version answered;
    ``refusal`` (with what helps) when it answered as no server this client can use."""

    healthy: bool
    detail: str
    version: str | None = None
    elapsed_s: float = 0.0
    refusal: str | None = None

    @property
    def from_server(self) -> bool:
        """A refusal the server said itself: it answered with its Local API version, one
        outside the range (a remote upgraded or replaced mid-run). A proxy's page, or a
        404 while the server behind it restarts, names no version."""
        return self.refusal is not None and self.version is not None


def check_health(
    url: str,
    *,
    timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> HealthResult:
    """Ask the server at ``url`` for ``GET /``; never raises for a server-side problem."""
    started = time.monotonic()
    # Its credentials sent as the Local API client sends them (urlauth: one rule), not by
    # httpx's own reading of the url.
    auth = url_auth(url)
    target = auth.url.rstrip("/") + "/"
    # Bounded: a check is never longer than its timeout, nor its answer larger than any
    # PreFormServer's (one dripping in, or 200 MB from whatever answers, held a pool thread).
    # Given a transport, httpx mounts no proxy from the environment: a proxy must never sit
    # between us and a server.
    bounded = BoundedTransport(transport or httpx.HTTPTransport())
    with httpx.Client(transport=bounded, timeout=timeout_s) as client:
        try:
            response = client.get(target, headers=dict(auth.headers()))
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
    version = _version_in(response.text)
    if version is None:
        return HealthResult(False, "GET / answered HTTP 200 without a Local API version", None,
                            elapsed, str(not_a_version_answer(_what_answered(response))))
    try:
        require_supported(version)
    except UnsupportedApiVersionError as exc:
        return HealthResult(False, f"unsupported Local API version {version!r}", version,
                            elapsed, str(exc))
    return HealthResult(True, f"version {version}", version, elapsed)


def _version_in(text: str) -> str | None:
    """The ``version`` string of a ``{"version": ...}`` answer, else None."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return version if isinstance(version, str) else None


def _what_answered(response: httpx.Response) -> str:
    """What a 200 that is no version was, for a message: ``an HTML page titled "My NAS"``."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    text = response.text
    if "html" in kind or text.lstrip()[:20].lower().startswith(("<!doctype html", "<html")):
        title = _TITLE.search(text[:_TITLE_WITHIN])
        name = " ".join(title.group(1).split())[:_TITLE_CHARS] if title else ""
        return f'an HTML page titled "{name}"' if name else "an HTML page"
    if not text.strip():
        return "an empty answer"
    if "json" in kind:
        return 'JSON without a "version" string'
    return f"{kind} content" if kind else "content that is not JSON"


def _refusal(status: int, text: str) -> str | None:
    """Why an answer other than 200 means a server this client can never use, or None (a
    502 from a proxy whose server is restarting, a 503: it may come back)."""
    if status in (404, 405):
        return str(no_version_endpoint(status))
    if status == 401:
        return f"GET / answered HTTP 401 ({CREDENTIALS_REFUSED})"
    https = https_port_answer(status, text)
    return f"{https} ({USE_HTTPS})" if https is not None else None
