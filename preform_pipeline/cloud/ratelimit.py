"""Keeping the Web API client inside Formlabs' rate limits, on the client side.

The Web API allows 100 requests a second from one IP address and 1,500 requests an hour for
one user, and answers 429 with ``Retry-After`` past either. The pipeline shares that hourly
allowance with whatever else the user runs against their account (a Dashboard integration, a
second pipeline), so :class:`RateLimiter` only spends a configurable share of it.

Two limits apply to every request, the token request included:

- a token bucket refilled at ``max_per_second`` holding at most ``burst`` tokens: in any
  one-second window at most ``max_per_second + burst`` requests leave, which the constructor
  keeps under the per-IP limit;
- a sliding one-hour window holding the send time of every request: while it holds the hourly
  budget (``share x 1,500``), the next request waits until the oldest one is an hour old.

A 429 from the server (the limit was shared with someone else, or the server counts
differently) calls :meth:`RateLimiter.defer`, which holds every caller of this limiter back
until the ``Retry-After`` time has passed.

Each process starts with an empty window, so a ``verify`` run from cron every few minutes, or
the nodes of a farm, would each spend the share afresh. Given a :class:`RequestLedger` (the job
store), the limiter also counts every request, and every Retry-After, in the ledger's record
for the account (:func:`account_key`): every process on this machine, and every node of a
PostgreSQL store, then keeps one hourly budget between them. The ledger's window is measured
on the wall clock (``clock.now()``, the one clock's), the only time two processes share; a
ledger that fails leaves this process's own limits in force for ``LEDGER_RETRY_S``, with a
``web_api_budget_unshared`` warning, rather than stopping the work.

A wait for the hourly budget or for ``Retry-After`` is never silent: waits of
``DEFAULT_LOUD_WAIT_S`` or more are logged as warnings with the reason and the time they end.
A caller that cannot afford a long wait (a ``verify`` run from cron) passes ``max_wait_s``: a
longer wait raises :class:`CloudRateLimitError` saying when the next request may leave.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.errors import CloudRateLimitError, ConfigError, StoreError
from preform_pipeline.logging import get_logger
from preform_pipeline.retryafter import MAX_RETRY_AFTER_TRIES, parse_retry_after, resume_time
from preform_pipeline.settings.cloud import DEFAULT_HOURLY_BUDGET_SHARE, DEFAULT_MAX_PER_SECOND

__all__ = [
    "DEFAULT_BUDGET_WARN_FRACTION",
    "DEFAULT_BURST",
    "DEFAULT_LOUD_WAIT_S",
    "DEFAULT_MAX_429_RETRIES",
    "DEFAULT_RETRY_AFTER_S",
    "HOURLY_WINDOW_S",
    "LEDGER_RETRY_S",
    "WEB_API_MAX_PER_HOUR",
    "WEB_API_MAX_PER_SECOND",
    "BudgetSnapshot",
    "RateLimiter",
    "RequestLedger",
    "account_key",
    "asked_to_wait_hint",
    "asked_to_wait_message",
    "parse_retry_after",
    "resume_time",
]

log = get_logger(__name__)


def asked_to_wait_message(delay_s: float) -> str:
    """A hold the Web API asked for (a 429's ``Retry-After``), as the error says it."""
    return f"asked to wait {math.ceil(delay_s)} s before the next request"


def asked_to_wait_hint(until: str) -> str:
    """What helps while such a hold lasts, ``until`` (:func:`resume_time`) named."""
    return (f"try again after {until}; another program may be spending the same account's "
            f"{WEB_API_MAX_PER_HOUR:,} requests/hour")


#: Documented server limits: requests a second per IP address, requests an hour per user.
WEB_API_MAX_PER_SECOND = 100
WEB_API_MAX_PER_HOUR = 1500
HOURLY_WINDOW_S = 3600.0

#: Requests that may leave back to back after a quiet spell, on top of the steady rate.
DEFAULT_BURST = 5
#: Times one request is repeated after a 429 (or a 503 with a Retry-After) before the caller
#: gets the answer as an error: the rule of both HTTP clients (retryafter.py).
DEFAULT_MAX_429_RETRIES = MAX_RETRY_AFTER_TRIES
#: Wait after a 429 whose Retry-After is missing or unreadable.
DEFAULT_RETRY_AFTER_S = 60.0
#: Waits for the budget or a Retry-After this long or longer are logged as warnings: a user
#: watching the log sees why nothing happens, and until when.
DEFAULT_LOUD_WAIT_S: Final = 10.0
#: Below this fraction of the hourly budget left, one warning is logged.
DEFAULT_BUDGET_WARN_FRACTION = 0.1

#: After the ledger failed (a store that cannot be reached), how long this process keeps to
#: its own limits before it asks the ledger again.
LEDGER_RETRY_S: Final = 60.0

# Float slack for "has this instant passed": a sleep of exactly the computed delay must count
# as enough, or a manual clock would be asked to sleep ever smaller amounts forever.
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class BudgetSnapshot:
    """The hourly request budget at one instant, for logs and the run report.

    ``spent`` and ``remaining`` count the sliding window of ``window_s`` seconds ending now;
    ``total`` counts every request since the limiter was made and ``waited_s`` the time callers
    spent waiting for the limiter.
    """

    spent: int
    remaining: int
    limit: int
    window_s: float
    total: int = 0
    waited_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "spent": self.spent,
            "remaining": self.remaining,
            "limit": self.limit,
            "window_s": self.window_s,
            "total": self.total,
            "waited_s": round(self.waited_s, 3),
        }


class RequestLedger(Protocol):
    """Where the processes sharing one Web API account count its requests: the job store
    (:meth:`~preform_pipeline.store.protocol.JobStore.spend_web_request` and its companions).
    Errors are :class:`~preform_pipeline.errors.StoreError`."""

    def spend_web_request(
        self, account: str, *, limit: int, now: datetime, window_s: float
    ) -> tuple[float, str, int]: ...

    def hold_web_requests(self, account: str, until: datetime) -> None: ...

    def web_requests_spent(self, account: str, *, now: datetime, window_s: float) -> int: ...


def account_key(base_url: str, account: str) -> str:
    """The name a ledger counts one Web API account's requests under (``account``: the
    settings' ``cloud.account``, else the client id): a digest, so the store holds no
    credential or address, and per base URL, so a simulator's requests are not the Web API's."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{account}".encode()).hexdigest()
    return f"web-api:{digest[:24]}"


class RateLimiter:
    """Per-second token bucket plus hourly sliding-window budget; thread-safe.

    ``clock`` and ``sleep`` are the seams tests replace: :meth:`acquire` reads the clock, and
    when it has to wait calls ``sleep`` and reads the clock again. With ``ledger`` (and the
    ``account`` it counts under, :func:`account_key`) the hourly budget and Retry-After are
    also kept with every other process that uses the same ledger.
    """

    def __init__(
        self,
        *,
        max_per_second: float = DEFAULT_MAX_PER_SECOND,
        burst: int = DEFAULT_BURST,
        hourly_share: float = DEFAULT_HOURLY_BUDGET_SHARE,
        hourly_allowance: int = WEB_API_MAX_PER_HOUR,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = time.sleep,
        warn_fraction: float = DEFAULT_BUDGET_WARN_FRACTION,
        ledger: RequestLedger | None = None,
        account: str = "",
    ) -> None:
        if not max_per_second > 0 or burst < 1:
            raise ConfigError(
                f"max_per_second={max_per_second} and burst={burst} must be positive",
                source="cloud rate limit",
            )
        if max_per_second + burst >= WEB_API_MAX_PER_SECOND:
            raise ConfigError(
                f"max_per_second + burst = {max_per_second + burst} would reach the Web API's "
                f"{WEB_API_MAX_PER_SECOND} requests/s limit",
                source="cloud rate limit",
                hint=f"keep max_per_second + burst below {WEB_API_MAX_PER_SECOND}",
            )
        if not 0 < hourly_share <= 1:
            raise ConfigError(
                f"hourly_share={hourly_share} must be more than 0 and at most 1",
                source="cloud rate limit",
                hint="give the share of the 1,500 requests/hour this pipeline may use, e.g. 0.8",
            )
        self.max_per_second = float(max_per_second)
        self.burst = int(burst)
        self.hourly_share = float(hourly_share)
        self.hourly_limit = max(1, int(hourly_allowance * hourly_share))
        self._clock = clock
        self._sleep = sleep
        self._warn_below = int(self.hourly_limit * warn_fraction)
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._refilled_at = clock.monotonic()
        self._sent: deque[float] = deque()
        self._blocked_until = -math.inf
        self._total = 0
        self._waited_s = 0.0
        self._warned = False
        self._ledger = ledger
        self._account = account
        self._ledger_failed_at = -math.inf

    # -- reading the budget -------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        """True when a ledger keeps the budget with other processes."""
        return self._ledger is not None

    @property
    def spent_this_hour(self) -> int:
        """Requests sent in the last hour (sliding window), by every process sharing the
        ledger when there is one."""
        with self._lock:
            return self._spent(self._clock.monotonic())

    @property
    def remaining_this_hour(self) -> int:
        """Requests that may still be sent before the hourly budget makes callers wait."""
        return max(0, self.hourly_limit - self.spent_this_hour)

    def spent_by_others(self, within_s: float) -> int | None:
        """Requests the other processes sharing the ledger sent in the last ``within_s``
        seconds (the ledger's count less this process's own): 0 without a ledger, where no
        other is known; None when the ledger cannot tell now (it failed)."""
        with self._lock:
            now = self._clock.monotonic()
            ledger = self._usable_ledger(now)
            if ledger is None:
                return None if self._ledger is not None else 0
            own = sum(1 for sent in self._sent if sent > now - within_s)
            try:
                shared = ledger.web_requests_spent(self._account, now=self._clock.now(),
                                                   window_s=within_s)
            except StoreError as exc:
                self._ledger_failed(now, exc)
                return None
        return max(0, shared - own)

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            spent = self._spent(self._clock.monotonic())
            return BudgetSnapshot(
                spent=spent,
                remaining=max(0, self.hourly_limit - spent),
                limit=self.hourly_limit,
                window_s=HOURLY_WINDOW_S,
                total=self._total,
                waited_s=self._waited_s,
            )

    # -- spending it --------------------------------------------------------------------------

    def acquire(self, *, wait: bool = True, max_wait_s: float | None = None) -> float:
        """Take one request from the budget, waiting until allowed; returns the seconds waited.

        With ``wait=False``, or when the wait would be longer than ``max_wait_s``, a wait for
        the hourly budget or for a server's ``Retry-After`` raises :class:`CloudRateLimitError`
        (saying when to try again) instead (the sub-second waits of the per-second bucket are
        always taken: they are what keeps the client polite).
        """
        waited = 0.0
        warn = False
        remaining = self.hourly_limit
        while True:
            with self._lock:
                now = self._clock.monotonic()
                delay, reason = self._delay(now)
                counted: int | None = None
                if delay <= 0:
                    delay, reason, counted = self._shared_delay(now)
                if delay <= 0:
                    self._take(now)
                    self._waited_s += waited
                    # The ledger counted the hour as it recorded this request: no second trip.
                    spent = self._spent(now) if counted is None else max(len(self._sent),
                                                                         counted)
                    remaining = self.hourly_limit - spent
                    warn = not self._warned and remaining <= self._warn_below
                    if warn:
                        self._warned = True
                    elif remaining > self._warn_below:
                        self._warned = False
                    break
            if reason != "per_second":
                until = resume_time(self._clock.now(), delay)
                if not wait or (max_wait_s is not None and delay > max_wait_s):
                    self._waited_s += waited
                    raise CloudRateLimitError(
                        f"the Web API request budget is spent for the next {math.ceil(delay)} s"
                        if reason == "hourly_budget"
                        else f"the Web API {asked_to_wait_message(delay)}",
                        retry_after_s=delay,
                        hint=(
                            f"try again after {until}, or raise the hourly budget share (now "
                            f"{self.hourly_share:g} of {WEB_API_MAX_PER_HOUR}/hour"
                            + ("; every program using this job store spends it" if self.shared
                               else "") + ")"
                            if reason == "hourly_budget"
                            else asked_to_wait_hint(until)
                        ),
                    )
                loud = log.warning if delay >= DEFAULT_LOUD_WAIT_S else log.info
                loud("web_api_budget_wait", reason=reason, wait_s=round(delay, 3), until=until)
            self._sleep(delay)
            waited += delay
        if warn:
            log.warning(
                "web_api_budget_low",
                remaining=remaining,
                limit=self.hourly_limit,
                window_s=HOURLY_WINDOW_S,
            )
        return waited

    def defer(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (the server answered 429 with Retry-After):
        this process's callers, and with a ledger every process sharing it."""
        wait_s = max(0.0, seconds)
        with self._lock:
            now = self._clock.monotonic()
            self._blocked_until = max(self._blocked_until, now + wait_s)
            ledger = self._usable_ledger(now)
            if ledger is not None:
                try:
                    ledger.hold_web_requests(
                        self._account, self._clock.now() + timedelta(seconds=wait_s)
                    )
                except StoreError as exc:
                    self._ledger_failed(now, exc)

    # -- internals (called with the lock held) ------------------------------------------------

    def _forget_old(self, now: float) -> None:
        horizon = now - HOURLY_WINDOW_S + _EPSILON_S
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.max_per_second)
        self._refilled_at = now

    def _delay(self, now: float) -> tuple[float, str]:
        """Seconds until a request may leave (<= 0: now), and which limit imposes the wait."""
        if self._blocked_until > now + _EPSILON_S:
            return self._blocked_until - now, "retry_after"
        self._forget_old(now)
        if len(self._sent) >= self.hourly_limit:
            return self._sent[0] + HOURLY_WINDOW_S - now, "hourly_budget"
        self._refill(now)
        if self._tokens >= 1 - _EPSILON_S * self.max_per_second:
            return 0.0, ""
        return (1 - self._tokens) / self.max_per_second, "per_second"

    def _usable_ledger(self, now: float) -> RequestLedger | None:
        """The ledger, unless there is none or it failed less than LEDGER_RETRY_S ago."""
        if now < self._ledger_failed_at + LEDGER_RETRY_S:
            return None
        return self._ledger

    def _ledger_failed(self, now: float, exc: StoreError) -> None:
        self._ledger_failed_at = now
        log.warning("web_api_budget_unshared", error=str(exc), retry_s=LEDGER_RETRY_S)

    def _shared_delay(self, now: float) -> tuple[float, str, int | None]:
        """Spend one request from the ledger's budget: (0, "", spent) when it was recorded,
        else the wait the ledger gives, why, and its count. Without a usable ledger, or when
        it fails, nothing waits and nothing was counted (``None``)."""
        ledger = self._usable_ledger(now)
        if ledger is None:
            return 0.0, "", None
        try:
            return ledger.spend_web_request(
                self._account, limit=self.hourly_limit, now=self._clock.now(),
                window_s=HOURLY_WINDOW_S,
            )
        except StoreError as exc:
            self._ledger_failed(now, exc)
            return 0.0, "", None

    def _spent(self, now: float) -> int:
        """Requests in the window: this process's, or the ledger's count when it answers."""
        self._forget_old(now)
        own = len(self._sent)
        ledger = self._usable_ledger(now)
        if ledger is None:
            return own
        try:
            shared = ledger.web_requests_spent(
                self._account, now=self._clock.now(), window_s=HOURLY_WINDOW_S
            )
        except StoreError as exc:
            self._ledger_failed(now, exc)
            return own
        return max(own, shared)

    def _take(self, now: float) -> None:
        self._tokens = max(0.0, self._tokens - 1)
        self._sent.append(now)
        self._total += 1
