"""How far the Web API's clock is from this machine's, read from the ``Date`` of its answers.

The prints feed is filtered by ``created_at``, which the Dashboard stamps with its own clock,
while the pipeline asks for ``date__gt=<its own send time - overlap>``. When this machine's
clock runs ahead of the Dashboard's by more than the overlap (no NTP, a VM resumed from
suspend), every print it sent falls before the window: verification never sees it and an
interrupted send looks absent. :class:`ClockSkew` measures the difference from each answer's
``Date`` header, and :func:`behind_s` is the widening a window needs for it.

``Date`` has whole seconds and the answer spends time on the way, so the estimate reads the
server as up to a few seconds further behind than it is: the safe side, a window a little
wider. Small differences change nothing (the overlap covers them); from
``DEFAULT_SKEW_WARN_S`` on, one ``web_api_clock_skew`` warning says which clock is ahead.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

from preform_pipeline.logging import get_logger

__all__ = ["DEFAULT_SKEW_WARN_S", "ClockSkew", "behind_s"]

log = get_logger(__name__)

#: A difference this large is worth a warning: it is past any network delay, and the
#: shared request budget's hour is kept on the wall clock too.
DEFAULT_SKEW_WARN_S: Final = 60.0
# The middle of the second a ``Date`` header names (it drops the fraction).
_HALF_SECOND: Final = 0.5


def behind_s(skew_s: float | None) -> float:
    """Seconds the Web API's clock is behind this machine's (0 when it is not, or unknown):
    how much earlier a ``date__gt`` window based on this machine's times must start."""
    return max(0.0, -skew_s) if skew_s is not None else 0.0


class ClockSkew:
    """The latest estimate of the Web API's clock minus this machine's, in seconds."""

    def __init__(self, *, warn_s: float = DEFAULT_SKEW_WARN_S) -> None:
        self.warn_s = warn_s
        self._lock = threading.Lock()
        self._skew_s: float | None = None
        self._warned = False

    @property
    def seconds(self) -> float | None:
        """Server minus local (negative: this machine is ahead); None before any answer
        carried a readable ``Date``."""
        with self._lock:
            return self._skew_s

    def observe(self, date_header: str | None, received_at: datetime) -> None:
        """Take one answer's ``Date`` header, received at ``received_at`` (aware, this
        machine's clock). An absent or unreadable header changes nothing."""
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=timezone.utc)  # RFC 9110 dates are GMT
        skew = (server - received_at).total_seconds() + _HALF_SECOND
        with self._lock:
            self._skew_s = skew
            warn = abs(skew) >= self.warn_s and not self._warned
            self._warned = abs(skew) >= self.warn_s
        if warn:
            log.warning(
                "web_api_clock_skew",
                skew_s=round(skew, 1),
                ahead="this machine" if skew < 0 else "the Web API",
                hint="keep this machine's clock in sync (NTP); verification widens its "
                "window of the prints feed by the difference meanwhile",
            )
