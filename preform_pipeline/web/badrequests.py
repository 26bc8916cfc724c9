"""Requests the dashboard's HTTP parser refuses, said as one structured event and never a flood.

uvicorn answers a request h11 cannot parse with a 400 and logs the bare line "Invalid HTTP
request received." through the stdlib logger ``uvicorn.error``, which no handler of this
package takes: Python's last-resort handler printed it on the console, outside the structured
log, with no peer and no reason (session 45). The dashboard's protocol (``server.py``) says
``web_bad_request`` instead: who sent it, what h11 found wrong, and how the request began; and
:class:`SaidAsEvent` keeps uvicorn's own line off the console.

A client that sends garbage in a loop (a browser speaking TLS to the plain-HTTP port and
retrying, a scanner) would fill the log with an event per connection: :class:`BadRequests`
says a peer at most once per :data:`SAY_EVERY_S`, and its next event says how many went
unsaid in between.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.logging import get_logger
from preform_pipeline.wording import request_start

__all__ = ["MAX_PEERS", "SAY_EVERY_S", "UVICORN_LINE", "BadRequests", "SaidAsEvent",
           "bad_request_reason"]

log = get_logger(__name__)

#: A peer's malformed requests are said at most once in this many seconds.
SAY_EVERY_S: Final = 60.0

#: Peers remembered at once; past this the longest-known is forgotten (and may be said again
#: sooner), so a scan from many addresses cannot grow the table without bound.
MAX_PEERS: Final = 1024

#: uvicorn's line for a request h11 refuses (uvicorn 0.29 to 0.55), which ``web_bad_request``
#: replaces.
UVICORN_LINE: Final = "Invalid HTTP request received."

#: What a TLS connection's first bytes are (a handshake record, TLS 1.0 to 1.3).
_TLS_HANDSHAKE: Final = b"\x16\x03"

# h11 quotes the offending bytes after its reason (``illegal header line: b'...'``, ``Illegal
# header value b'...'``, ``illegal request line: bytearray(b'...')``); a header value may be
# a password or a token.
_QUOTED_BYTES = re.compile(r":?\s*(?:bytearray\()?b['\"].*", re.DOTALL)


def bad_request_reason(error: BaseException | None) -> str:
    """What h11 found wrong, without the bytes it quotes (they may hold a secret)."""
    if error is None:
        return "malformed request"
    return _QUOTED_BYTES.sub("", str(error)).strip() or "malformed request"


@dataclass
class _Peer:
    said_at: float
    unsaid: int = 0


class BadRequests:
    """One server's malformed requests: each peer said at most once per ``every_s``.

    Protocol callbacks run on the server's event loop; the lock keeps the table whole should
    another thread ever call :meth:`say`."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, every_s: float = SAY_EVERY_S) -> None:
        self._clock = clock
        self._every_s = every_s
        self._peers: dict[str, _Peer] = {}
        self._lock = threading.Lock()

    def say(self, client: tuple[str, int] | None, received: bytes,
            error: BaseException | None) -> None:
        """Say ``web_bad_request`` for a request from ``client`` that began with
        ``received``, refused for ``error``, unless this peer was said too recently."""
        host, port = client if client is not None else ("unknown", 0)
        unsaid = self._unsaid_before(host)
        if unsaid is None:
            return
        fields: dict[str, object] = {
            "client": host, "port": port, "reason": bad_request_reason(error),
            "start": request_start(received)}
        if unsaid:
            fields["unsaid"] = unsaid
            fields["unsaid_within_s"] = self._every_s
        if received.startswith(_TLS_HANDSHAKE):
            fields["hint"] = ("the client spoke TLS (https://) to this plain-HTTP dashboard: "
                              "open its http:// address")
        log.warning("web_bad_request", **fields)

    def _unsaid_before(self, host: str) -> int | None:
        """None if ``host`` is not to be said now; else how many of its requests went unsaid
        since it last was (counting this one against it otherwise)."""
        now = self._clock.monotonic()
        with self._lock:
            peer = self._peers.get(host)
            if peer is not None and now - peer.said_at < self._every_s:
                peer.unsaid += 1
                return None
            unsaid = peer.unsaid if peer is not None else 0
            self._peers.pop(host, None)
            if len(self._peers) >= MAX_PEERS:
                self._forget_quiet(now)
            self._peers[host] = _Peer(now)
            return unsaid

    def _forget_quiet(self, now: float) -> None:
        for host in [h for h, p in self._peers.items() if now - p.said_at >= self._every_s]:
            del self._peers[host]
        while len(self._peers) >= MAX_PEERS:
            del self._peers[next(iter(self._peers))]


class SaidAsEvent(logging.Filter):
    """Drops uvicorn's :data:`UVICORN_LINE`, which ``web_bad_request`` says instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != UVICORN_LINE
