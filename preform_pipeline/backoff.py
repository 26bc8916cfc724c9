"""Capped exponential backoff: the one rule for how long to wait before trying again.

Used by the server pool (restarting a crashed server), the verify poller (after a failed poll),
the notifier (re-sending a webhook or command) and a disk that refused a write for want of room
(``diskspace.room_retry_in``: the hot folder's files waiting for room, the JSON log's file);
each passes its own first and longest delay.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_DOUBLINGS", "backoff"]

#: Doubling stops here: the cap is reached long before, and a float power this size never
#: overflows however many retries a long-running daemon counts.
DEFAULT_MAX_DOUBLINGS = 60


def backoff(
    retry: int,
    first_s: float,
    max_s: float,
    *,
    floor_s: float = 0.0,
    max_doublings: int = DEFAULT_MAX_DOUBLINGS,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    ``first_s`` doubled once per earlier retry (at most ``max_doublings`` times), never less
    than ``floor_s`` and never more than ``max_s``.
    """
    doublings = min(max(retry, 0), max_doublings)
    return min(max_s, max(floor_s, first_s * 2.0**doublings))
