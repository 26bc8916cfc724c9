"""Requests the dashboard's HTTP parser refuses, said as one structured event and never a flood.

uvicorn answers a request h11 cannot parse with a 400 and logs the bare line "Invalid HTTP
request received." through the stdlib logger ``uvicorn.error``, which no handler of this
package takes: Python's last-resort handler printed it on the console, outside the structured
log, with no peer and no reason (session 45). The dashboard's protocol (``server.py``) says
``web_bad_request`` instead: who sent it, what h11 found wrong, and how the request began; and
:class:`SaidAsEvent` keeps uvicorn's own line off the console, and says its other warnings
as ``web_server_warning`` events.

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

__all__ = ["MAX_PEERS", "SAY_EVERY_S", "UVICORN_LINE", "BadRequests", "Pacer", "SaidAsEvent",
           "bad_request_reason"]

log = get_logger(__name__)

#: A peer's malformed requests are said at most once in this many seconds.
SAY_EVERY_S: Final = 60.0

#: Peers (or lines) remembered at once; past this the longest-known is forgotten (and may be
#: said again sooner), so a scan from many addresses cannot grow the table without bound.
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
class _Said:
    said_at: float
    unsaid: int = 0


class Pacer:
    """Which of many like happenings to say: each key (a peer, a line) at most once per
    ``every_s``; the one said counts those left unsaid since the key's last.

    Protocol callbacks run on the server's event loop and log records come from any thread;
    the lock keeps the table whole."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, every_s: float = SAY_EVERY_S) -> None:
        self._clock = clock
        self.every_s = every_s
        self._keys: dict[str, _Said] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> int | None:
        """None if ``key`` is not to be said now (counted against it); else how many of its
        happenings went unsaid since it last was."""
        now = self._clock.monotonic()
        with self._lock:
            said = self._keys.get(key)
            if said is not None and now - said.said_at < self.every_s:
                said.unsaid += 1
                return None
            unsaid = said.unsaid if said is not None else 0
            self._keys.pop(key, None)
            if len(self._keys) >= MAX_PEERS:
                self._forget_quiet(now)
            self._keys[key] = _Said(now)
            return unsaid

    def __len__(self) -> int:
        """How many keys it remembers: at most :data:`MAX_PEERS`."""
        with self._lock:
            return len(self._keys)

    def fields(self, unsaid: int) -> dict[str, object]:
        """What an event says of the ones left unsaid before it (nothing when none were)."""
        return {"unsaid": unsaid, "unsaid_within_s": self.every_s} if unsaid else {}

    def _forget_quiet(self, now: float) -> None:
        for key in [k for k, s in self._keys.items() if now - s.said_at >= self.every_s]:
            del self._keys[key]
        while len(self._keys) >= MAX_PEERS:
            del self._keys[next(iter(self._keys))]


class BadRequests:
    """One server's malformed requests: each peer said at most once per ``every_s``."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, every_s: float = SAY_EVERY_S) -> None:
        self._pacer = Pacer(clock, every_s)

    def say(self, client: tuple[str, int] | None, received: bytes | None,
            error: BaseException | None) -> None:
        """Say ``web_bad_request`` for a request from ``client`` that began with
        ``received`` (None: not known), refused for ``error``, unless this peer was said too
        recently."""
        host, port = client if client is not None else ("unknown", 0)
        unsaid = self._pacer.admit(host)
        if unsaid is None:
            return
        fields: dict[str, object] = {
            "client": host, "port": port, "reason": bad_request_reason(error),
            **self._pacer.fields(unsaid)}
        if received is not None:
            fields["start"] = request_start(received)
            if received.startswith(_TLS_HANDSHAKE):
                fields["hint"] = ("the client spoke TLS (https://) to this plain-HTTP "
                                  "dashboard: open its http:// address")
        log.warning("web_bad_request", **fields)


class SaidAsEvent(logging.Filter):
    """uvicorn's warnings and errors as structured events, never its bare lines.

    :data:`UVICORN_LINE` is dropped (``web_bad_request`` says it); any other warning (an
    ``Upgrade: websocket`` request printed two, the second advising a pip install the
    dashboard does not need) is said as ``web_server_warning`` (its ``message``, each line at
    most once per :data:`SAY_EVERY_S`) and its stdlib record dropped. Other levels pass as
    they are: below WARNING the stdlib drops them unless asked otherwise, and an error (an
    exception in the app) is a fault whose traceback the tests look for among the records."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self._pacer = Pacer(clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.WARNING <= record.levelno < logging.ERROR:
            return True
        if record.msg == UVICORN_LINE:
            return False
        message = record.getMessage()
        unsaid = self._pacer.admit(message)
        if unsaid is not None:
            log.warning("web_server_warning", message=message, **self._pacer.fields(unsaid))
        return False
