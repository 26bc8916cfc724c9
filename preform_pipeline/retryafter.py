"""A server's ``Retry-After``: which answers carry one, how it is read, and how long it is waited.

Both HTTP clients (the Web API's and the Local API's) honour it by these rules:

- a 429 (too many requests) or a 503 (unavailable: RFC 9110 lets it say for how long, as a
  proxy in front of the Dashboard or a PreFormServer says during maintenance) asks to be sent
  again after its ``Retry-After``, in seconds or as an HTTP date (:func:`parse_retry_after`);
- a request waits for it at most :data:`MAX_RETRY_AFTER_S` (less when its caller cannot
  wait so long) and is sent again at most :data:`MAX_RETRY_AFTER_TRIES` times; a longer wait is
  not waited: the request fails at once, and its error says the server's time and why it was
  not waited (:func:`asked_to_wait`), so "retry after a day" never hangs a run;
- its waits together come to at most :data:`MAX_RETRY_AFTER_TOTAL_S`: a server asking an hour
  three times held one call of the Web API client three hours (session 44), and one status
  read of a long Local API operation given more than an hour as long (session 45); a long
  operation's requests (the one that starts it, every status read) count together, in one
  :class:`WaitTally`, or an operation polled many times waited an hour at each read
  (session 46).

:func:`longest_wait` says how long the next wait may be, and which bound that is in words: the
longest wait, what is left of the total, or what is left of the caller's time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Final

from preform_pipeline.wording import utc_moment

__all__ = [
    "MAX_RETRY_AFTER_S",
    "MAX_RETRY_AFTER_TOTAL_S",
    "MAX_RETRY_AFTER_TRIES",
    "RETRY_AFTER_STATUSES",
    "WAITED_EXTENSION",
    "AnswersWait",
    "WaitTally",
    "asked_to_wait",
    "longest_wait",
    "parse_retry_after",
    "resume_time",
]

#: The answers whose ``Retry-After`` asks for the same request later: 429 and 503.
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
#: The longest ``Retry-After`` a request waits before it is sent again: the Web API's rate
#: window, the longest a 429 of its can rightly ask for. A longer one (a proxy's "down for
#: the day") fails the request at once, saying until when, for its caller to plan around.
MAX_RETRY_AFTER_S: Final = 3600.0
#: How many times one request is sent again for a ``Retry-After`` before its caller gets the
#: answer as an error (a server that keeps saying "in 0 s" must not hold a request forever).
MAX_RETRY_AFTER_TRIES: Final = 3
#: The longest one request waits for ``Retry-After`` answers in all, its waits added up: the
#: rate window again, which a call waiting longer outlasts. Each wait within the hour, three
#: of them held one Web API call (a group sync, a verification's look-up) three hours.
MAX_RETRY_AFTER_TOTAL_S: Final = MAX_RETRY_AFTER_S
#: Where an HTTP client's transport records (an httpx response's ``extensions``) how long the
#: request waited for earlier ``Retry-After`` answers, for the error of the one it returns.
WAITED_EXTENSION: Final = "preform_pipeline.retry_after_waited_s"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date.

    ``now`` is the current wall-clock time (aware). Dates in the past give 0; a missing or
    unreadable value gives ``None`` so the caller can choose its own default.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; a naive result means the zone was "-0000".
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def resume_time(now: datetime, wait_s: float) -> str:
    """When a wait of ``wait_s`` seconds from ``now`` ends, as a person reads it (UTC)."""
    return utc_moment(now + timedelta(seconds=math.ceil(wait_s)))


def asked_to_wait(wait_s: float, now: datetime, *, limit_s: float = MAX_RETRY_AFTER_S,
                  limit: str = "") -> str:
    """``asked to wait 120 s (until 2026-12-07 10:02:00 UTC)`` for an error's message; when
    the wait is longer than ``limit_s`` (what the request could wait: :data:`MAX_RETRY_AFTER_S`
    unless ``limit`` names a shorter bound, such as the request's time left), also that it
    was not waited and why."""
    text = f"asked to wait {math.ceil(wait_s)} s (until {resume_time(now, wait_s)})"
    if wait_s > limit_s:
        bound = limit or f"the {MAX_RETRY_AFTER_S:.0f} s a request waits for a Retry-After at most"
        text += f", longer than {bound}: not waited, the request was not sent again"
    return text


class WaitTally:
    """The ``Retry-After`` waits of one operation so far, its requests together, and what
    the total's words call it (``importModel``; "a request" for one request alone)."""

    __slots__ = ("of", "seconds")

    def __init__(self, of: str = "a request") -> None:
        self.of = of
        self.seconds = 0.0


def longest_wait(waited_s: float, limit_s: float = MAX_RETRY_AFTER_S, *,
                 time_left: tuple[float, str] | None = None,
                 of: str = "a request") -> tuple[float, str]:
    """The longest ``Retry-After`` a request that has waited ``waited_s`` for earlier ones
    (``of`` them: its own, or its operation's) may wait now, and that bound's words for
    :func:`asked_to_wait` ("": ``limit_s`` itself).
    The shortest of three bounds: ``limit_s`` (one wait's), what is left of
    :data:`MAX_RETRY_AFTER_TOTAL_S`, and ``time_left``: the seconds its caller has left and
    whose they are ("the request's"), when the caller's time bounds it too. A wait of all
    that time is not waited: the request sent again after it would have none, and fail as
    silence from a server never asked again (review, rv44-loose)."""
    bound, words = limit_s, ""
    total_left = max(0.0, MAX_RETRY_AFTER_TOTAL_S - waited_s)
    if total_left < bound:
        bound, words = total_left, (
            f"the {total_left:.0f} s left of the {MAX_RETRY_AFTER_TOTAL_S:.0f} s {of} "
            f"waits for Retry-After answers in all (it had waited {waited_s:.0f} s)")
    if time_left is not None:
        seconds, whose = time_left
        below = math.nextafter(seconds, -math.inf)  # "at most" all of it is less than all
        if below < bound:
            bound, words = below, f"the {max(0.0, seconds):.0f} s left of {whose} time"
    return bound, words


@dataclass(frozen=True)
class AnswersWait:
    """What an answer that failed says of when to come back, for its error: ``seconds`` is
    its ``Retry-After`` (None: a status that carries none, or none given); ``waited_s``: how
    long the request had waited for earlier ones (:func:`longest_wait`)."""

    seconds: float | None
    now: datetime
    waited_s: float = 0.0

    @classmethod
    def of(cls, status: int, retry_after: str | None, now: datetime, *,
           waited_s: float = 0.0) -> AnswersWait:
        honoured = status in RETRY_AFTER_STATUSES
        return cls(parse_retry_after(retry_after, now) if honoured else None, now, waited_s)

    @property
    def asked(self) -> str | None:
        """``asked to wait ...`` (:func:`asked_to_wait`), or None without a time."""
        if self.seconds is None:
            return None
        limit_s, limit = longest_wait(self.waited_s)
        return asked_to_wait(self.seconds, self.now, limit_s=limit_s, limit=limit)

    def after(self, failed: str) -> str:
        """``{failed}``, followed by `` and asked to wait ...`` when the answer gave a time."""
        return failed if self.asked is None else f"{failed} and {self.asked}"

    @property
    def when(self) -> str:
        """``after 2026-12-07 10:02:00 UTC`` to follow "try again", or ``later``."""
        return "later" if self.seconds is None else f"after {resume_time(self.now, self.seconds)}"
