"""How fast the verification poller may spend its share of the hour (``verify.requests_per_hour``).

Spent at an even pace, a poll of N requests waits N times the hour's share of one request
before the next (60 s a request at 60 an hour). That pace held even when the poller had spent
nothing for an hour: the poll a run makes as soon as its print is sent (the print has only
started) forced the next one a minute later, whatever the feed's estimate said, so a
rehearsal's print of 10 s on the simulated Dashboard was known only after that minute.

:class:`RequestPace` is a token bucket. It holds a credit of ``credit`` requests (2 by
default: the poll at the send, and one at the print's estimated end) and refills at
``per_hour - credit`` an hour. In any hour the poller still spends at most ``per_hour`` (plus
what one poll of more pages than the last one overran, as before): one that has spent little
lately polls when a print is due, never sooner than the poller's shortest interval, and a busy
one (a farm's hundreds of pending prints) keeps an even pace, a little slower than before.

A new process cannot know what pollers before it spent: a ``verify --wait`` from cron every
5 minutes polling for 5, each starting with the whole credit, spent 85 requests an hour of a
share of 60 (one after another at the even pace, 60). So the poller takes the credit only
when the job store's record of the account holds no other process's request for as long as
the pace takes to earn it (:attr:`RequestPace.earn_s`, 124 s), and otherwise starts at the
even pace (:meth:`RequestPace.forgo_credit`; the poller's ``_draw_credit``): a credit then
stands for requests nobody spent, and one poller after another stays within the share.
"""

from __future__ import annotations

from typing import Final

from preform_pipeline.clock import Clock

__all__ = ["DEFAULT_CREDIT_REQUESTS", "RequestPace"]

#: Requests a poller that has spent nothing lately may spend at once: a poll when a print is
#: sent and one at its estimated end.
DEFAULT_CREDIT_REQUESTS: Final = 2.0

_HOUR_S: Final = 3600.0


class RequestPace:
    """Requests spent at ``per_hour`` an hour, ``credit`` of them at once (module docstring).

    :meth:`wait_after` says how long a poll that spent ``requests`` now must wait before the
    next; :meth:`spend` records what it spent. Time is the clock's ``monotonic``.
    """

    def __init__(self, per_hour: float, *, credit: float = DEFAULT_CREDIT_REQUESTS,
                 clock: Clock) -> None:
        if not per_hour > 0 or credit < 0:
            raise ValueError(f"per_hour ({per_hour}) must be more than 0, credit ({credit}) "
                             "not negative")
        # Never more than half the hour's share in credit: the even pace keeps the rest.
        self.credit = min(float(credit), per_hour / 2)
        self._per_s = (per_hour - self.credit) / _HOUR_S
        self._clock = clock
        self._level = self.credit
        self._at = clock.monotonic()

    @property
    def earn_s(self) -> float:
        """Seconds the pace takes to earn its whole credit (124 s: 2 requests at 58 an hour)."""
        return self.credit / self._per_s

    def forgo_credit(self) -> None:
        """Start without the credit (what is left of it): the even pace from now on, until
        time earns it back."""
        self._level = min(self._level_now(self._clock.monotonic()), 0.0)
        self._at = self._clock.monotonic()

    def _level_now(self, now: float) -> float:
        return min(self.credit, self._level + max(0.0, now - self._at) * self._per_s)

    def wait_after(self, requests: float) -> float:
        """Seconds from now before the next poll, once a poll spent ``requests`` now: none
        while the credit covers them, else the time the pace takes to earn the rest."""
        short = requests - self._level_now(self._clock.monotonic())
        return max(0.0, short) / self._per_s

    def spend(self, requests: float) -> None:
        """Record ``requests`` spent now (the credit may go below nothing: a debt to earn)."""
        now = self._clock.monotonic()
        self._level = self._level_now(now) - requests
        self._at = now
