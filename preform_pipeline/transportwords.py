"""What went wrong with an HTTP exchange that got no (whole) answer, in words: the one way
both clients (the Local API's and the Web API's) say it. httpx tells by the exception's
class (``ConnectError``, ``ReadTimeout``), a name a person should not have to decode
(session 48: a build's reason read ``server unreachable: ConnectError: ...``).
"""

from __future__ import annotations

from typing import Final

import httpx

__all__ = ["transport_failure"]

#: The most specific first: httpx's timeouts are transport errors too, and a proxy's error a
#: network error.
_WORDS: Final[tuple[tuple[type[httpx.TransportError], str], ...]] = (
    (httpx.ConnectTimeout, "no connection"),
    (httpx.ReadTimeout, "no answer"),
    (httpx.WriteTimeout, "the request could not be sent"),
    (httpx.PoolTimeout, "no free connection"),
    (httpx.TimeoutException, "no answer"),
    (httpx.ProxyError, "the proxy failed"),
    (httpx.ConnectError, "could not connect"),
    (httpx.ReadError, "the connection broke while the answer was read"),
    (httpx.WriteError, "the connection broke while the request was sent"),
    (httpx.RemoteProtocolError, "the other side closed the connection or broke HTTP"),
)
#: httpx (httpcore's connection pool) refuses an address without a scheme and one whose scheme
#: is not http, https, ws or wss; the words for each (and for one raised outside a request).
_NO_SCHEME: Final = "the address has no scheme: it must begin with http:// or https://"
_SCHEME: Final = "the address's scheme {scheme}:// is not http:// or https://"
_SOME_SCHEME: Final = "the address's scheme is not http:// or https://"


def transport_failure(exc: httpx.TransportError) -> str:
    """``exc`` in words: for a timeout, what did not come in time ("no answer", to be
    followed by "within ..."); for another failure, what failed, then the system's own words
    (``[Errno 111] Connection refused``) when it gave any."""
    if isinstance(exc, httpx.UnsupportedProtocol):
        # Said whole here: httpx's own words would only say it again.
        return _scheme_refused(exc)
    words = next((said for kind, said in _WORDS if isinstance(exc, kind)),
                 "the connection failed")
    if isinstance(exc, httpx.TimeoutException):
        return words
    detail = str(exc).strip()
    return f"{words}: {detail}" if detail else words


def _scheme_refused(exc: httpx.UnsupportedProtocol) -> str:
    """Which of httpx's two refusals of a scheme ``exc`` is: "not http:// or https://" was
    said of an address with no scheme at all (``example.com/x``), where it named none."""
    try:
        scheme = exc.request.url.scheme
    except RuntimeError:  # raised outside a request: which address is not known
        return _SOME_SCHEME
    return _SCHEME.format(scheme=scheme) if scheme else _NO_SCHEME
