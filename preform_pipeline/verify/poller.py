"""One shared poller that verifies every pending print through the Web API prints feed.

However many prints wait, one poll is a handful of requests::

    GET /prints/?date__gt=<oldest pending send - overlap>&per_page=100            newest first
    GET /prints/?date__gt=...&page=2 ...   only while the page's oldest run is still inside
                                           the window and some pending print is unmatched

Each run is matched to a pending print by the job key in its name (``extract_key(run.name)``;
the executor appends the key with ``embed_key``), or by the print job id the Local API
returned. A run in ``FINISHED``, ``ABORTED`` or ``ERROR`` ends the print's verification with
the run's message; a print without a final status ``deadline_s`` after it was sent becomes
``UNVERIFIED``. Nothing older than the window is read: the history of the account does not
make a poll more expensive, only the prints still waiting do.

The interval between polls adapts (:meth:`VerificationPoller.next_interval`): it follows the
soonest estimated finish the feed reports (``estimated_time_remaining_ms``), within
``min_interval_s`` .. ``max_interval_s``, and never spends more than ``requests_per_hour``
on verification: once its small credit is spent (:mod:`~preform_pipeline.verify.pace`), a
poll that needed five pages waits five times as long as one that needed one. That keeps
verification far under the hourly budget the client's limiter enforces (which still holds
everything else back if it must). Every poll logs one ``verify_poll``
event with the requests it spent and the budget left.

Time comes from ``clock`` and waiting from ``sleep`` (tests pass a
:class:`~preform_pipeline.clock.ManualClock` and its ``sleep``), so a simulated day
runs in seconds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Final, Protocol

from preform_pipeline.backoff import backoff
from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.cloud import BudgetSnapshot, PrintFilter, PrintRun
from preform_pipeline.cloud.client import DEFAULT_PER_PAGE
from preform_pipeline.cloud.models import Page
from preform_pipeline.cloud.skew import behind_s
from preform_pipeline.errors import CloudAuthError, CloudError, CloudRateLimitError
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.verify import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_POLL_REQUESTS_PER_HOUR,
    DEFAULT_VERIFY_DEADLINE_S,
)
from preform_pipeline.store import JobState, extract_key
from preform_pipeline.verify.pace import DEFAULT_CREDIT_REQUESTS, RequestPace

__all__ = [
    "DEFAULT_FEED_OVERLAP_S",
    "DEFAULT_FINISH_MARGIN_S",
    "DEFAULT_MAX_POLL_INTERVAL_S",
    "DEFAULT_MIN_POLL_INTERVAL_S",
    "PendingPrint",
    "PendingSource",
    "PollOutcome",
    "PrintProgress",
    "PrintsFeed",
    "VerificationPoller",
    "VerificationResult",
    "VerifiedStatus",
    "describe_duration",
]

log = get_logger(__name__)

#: Never poll more often than this, however close a print is to finishing: a printer reports
#: its status to the Dashboard every few seconds, but a finish a minute late costs nothing.
DEFAULT_MIN_POLL_INTERVAL_S: Final = 30.0
#: Never wait longer than this between polls, however far the next finish: estimates drift,
#: and prints fail early.
DEFAULT_MAX_POLL_INTERVAL_S: Final = 900.0
#: The feed window starts this long before the oldest pending send (``date__gt``): the
#: Dashboard stamps ``created_at`` with its own clock, which may be behind this machine's.
DEFAULT_FEED_OVERLAP_S: Final = 600.0
#: Poll this long after the soonest estimated finish: the printer needs a moment to report it.
DEFAULT_FINISH_MARGIN_S: Final = 15.0

#: Print statuses after which nothing changes (the Web API's own terminal statuses).
# After ten failed polls in a row the interval stops doubling (it is at its cap long before).
_MAX_FAILURE_DOUBLINGS: Final = 10
_TERMINAL: Final[frozenset[str]] = frozenset({"FINISHED", "ABORTED", "ERROR"})


class PrintsFeed(Protocol):
    """What the poller reads: pages of the prints feed and the request budget. The Web API
    client is one; a simulated fleet folder read directly
    (:class:`~preform_pipeline.printing.FleetFolderFeed`) is another."""

    def budget(self) -> BudgetSnapshot: ...

    @property
    def clock_skew_s(self) -> float | None:
        """The feed's clock minus this machine's (None: unknown)."""
        ...

    def list_prints_page(
        self, page: int = 1, per_page: int | None = None, *, where: PrintFilter | None = None
    ) -> Page[PrintRun]: ...


class VerifiedStatus(str, Enum):
    """How a print's verification ended."""

    FINISHED = "FINISHED"
    ABORTED = "ABORTED"
    ERROR = "ERROR"
    UNVERIFIED = "UNVERIFIED"

    def __str__(self) -> str:
        return self.value

    @property
    def job_state(self) -> JobState:
        """The job store state this outcome moves a build (and its jobs) to."""
        return _STATE_OF[self]

    @property
    def ok(self) -> bool:
        return self is VerifiedStatus.FINISHED


_STATE_OF: Final[dict[VerifiedStatus, JobState]] = {
    VerifiedStatus.FINISHED: JobState.FINISHED,
    VerifiedStatus.ABORTED: JobState.ABORTED,
    VerifiedStatus.ERROR: JobState.PRINT_ERROR,
    VerifiedStatus.UNVERIFIED: JobState.UNVERIFIED,
}


@dataclass(frozen=True)
class PendingPrint:
    """A print that was sent and whose outcome is not known yet.

    ``key`` is the job key embedded in its name; ``sent_at`` (aware) is when the send started,
    from which the deadline counts. ``expires=False`` keeps a print from being marked
    ``unverified`` again (a later ``verify`` of one that already is). The other fields are
    carried through to the result for reports: the build's store id or name, the name it was
    sent with, the Local API's print job id and the target printer.
    """

    key: str
    sent_at: datetime
    name: str | None = None
    build_id: int | None = None
    job_name: str | None = None
    print_job_id: str | None = None
    printer: str | None = None
    expires: bool = True

    def __post_init__(self) -> None:
        if self.sent_at.tzinfo is None:
            raise ValueError(f"sent_at of {self.key} has no time zone")


@dataclass(frozen=True)
class VerificationResult:
    """The end of one print's verification: its final status and the printer's message."""

    pending: PendingPrint
    status: VerifiedStatus
    message: str | None
    at: datetime
    run: PrintRun | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return self.pending.key

    @property
    def printer(self) -> str | None:
        if self.run is not None and self.run.printer:
            return self.run.printer
        return self.pending.printer

    @property
    def print_guid(self) -> str | None:
        return self.run.guid if self.run is not None and self.run.guid else None

    def as_dict(self) -> dict[str, object]:
        return {
            "job_key": self.key,
            "name": self.pending.name,
            "build_id": self.pending.build_id,
            "status": self.status.value,
            "state": self.status.job_state.value,
            "message": self.message,
            "printer": self.printer,
            "print_guid": self.print_guid,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class PrintProgress:
    """A pending print seen in the feed, not finished yet (``QUEUED``, ``PRINTING``...)."""

    pending: PendingPrint
    run: PrintRun

    @property
    def remaining_s(self) -> float | None:
        ms = self.run.estimated_time_remaining_ms
        return None if ms is None else max(0.0, ms / 1000.0)


@dataclass(frozen=True)
class PollOutcome:
    """What one poll found, what it cost, and when the next one should be."""

    results: tuple[VerificationResult, ...]
    in_progress: tuple[PrintProgress, ...]
    unseen: tuple[PendingPrint, ...]
    requests: int
    pages: int
    next_interval_s: float
    budget: BudgetSnapshot
    error: str | None = None
    #: Seconds until a request may leave again, when the failure said (the rate limits' hold,
    #: or a 503 that said when the Web API is back).
    retry_after_s: float | None = None
    #: The failure was the rate limits' hold (the account's budget, a 429), not the Web API
    #: failing: ``verify --quiet`` says only such a wait once.
    held: bool = False


#: The pending prints to verify: a fixed list, or a function asked before every poll (a daemon
#: whose prints come and go reads them from the job store).
PendingSource = Sequence[PendingPrint] | Callable[[], Sequence[PendingPrint]]


def describe_duration(seconds: float) -> str:
    """``12 h``, ``1.5 h``, ``20 min``, ``45 s``: for messages, not for parsing."""
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours == int(hours) else f"{hours:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


class VerificationPoller:
    """Verifies many pending prints with one shared poll per interval (module docstring).

    ``poll(pending)`` does one poll and returns everything it learnt; ``poll_once(pending)``
    only the prints that ended; ``run_until(pending, stop_event)`` polls until every print
    ended (or ``stop_event`` is set). Thread-safe for one caller at a time.
    """

    def __init__(
        self,
        client: PrintsFeed,
        *,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep | None = None,
        interval_s: float = DEFAULT_POLL_INTERVAL_S,
        min_interval_s: float = DEFAULT_MIN_POLL_INTERVAL_S,
        max_interval_s: float = DEFAULT_MAX_POLL_INTERVAL_S,
        deadline_s: float = DEFAULT_VERIFY_DEADLINE_S,
        overlap_s: float = DEFAULT_FEED_OVERLAP_S,
        requests_per_hour: float = DEFAULT_POLL_REQUESTS_PER_HOUR,
        finish_margin_s: float = DEFAULT_FINISH_MARGIN_S,
        per_page: int = DEFAULT_PER_PAGE,
        defers_rate_limits: bool = False,
        reports_failures: bool = False,
        credit_requests: float = DEFAULT_CREDIT_REQUESTS,
    ) -> None:
        for name, value in (
            ("interval_s", interval_s),
            ("deadline_s", deadline_s),
            ("requests_per_hour", requests_per_hour),
            ("max_interval_s", max_interval_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be more than 0, not {value}")
        if overlap_s < 0 or min_interval_s < 0 or finish_margin_s < 0:
            raise ValueError("overlap_s, min_interval_s and finish_margin_s must not be negative")
        self.client = client
        self.clock = clock
        self.interval_s = float(interval_s)
        # A caller asking for a short interval (a test, a small lab) gets it as the floor too;
        # the request budget below still bounds what that costs.
        self.min_interval_s = min(float(min_interval_s), self.interval_s)
        self.max_interval_s = max(float(max_interval_s), self.interval_s)
        self.deadline_s = float(deadline_s)
        self.overlap_s = float(overlap_s)
        self.requests_per_hour = float(requests_per_hour)
        self.pace = RequestPace(self.requests_per_hour, credit=credit_requests, clock=clock)
        self._credit_drawn = False
        # Never later than a base interval after the estimate (a short test interval too).
        self.finish_margin_s = min(float(finish_margin_s), self.interval_s)
        self.per_page = per_page
        # A caller that defers verification for a rate limit (the hot folder) warns once
        # itself, with the wait and when it resumes: the poll's own failure is then only info.
        self.defers_rate_limits = defers_rate_limits
        # A caller that tells every failed poll itself (one ``verify``: its error line) would
        # have it said twice by a warning here: the failure is then only info too.
        self.reports_failures = reports_failures
        self._sleep = sleep
        self._failures = 0
        # The last run seen for each pending key, across polls: a print whose deadline passes
        # while the feed cannot be read is still described by what the feed last said of it.
        self._last_seen: dict[str, PrintRun] = {}
        self._lock = threading.Lock()
        #: Polls made and requests they spent since this poller was made (for reports).
        self.polls = 0
        self.requests = 0

    # -- one poll -----------------------------------------------------------------------------

    def poll_once(self, pending: Sequence[PendingPrint]) -> list[VerificationResult]:
        """One poll; the prints it found ended (or whose deadline passed)."""
        return list(self.poll(pending).results)

    def poll(self, pending: Sequence[PendingPrint]) -> PollOutcome:
        """One shared poll for every print in ``pending`` (see the module docstring).

        A Web API failure other than refused credentials does not raise: the prints whose
        deadline passed are still marked, the failure is in ``error``, and the next interval
        backs off. Refused credentials (:class:`~preform_pipeline.errors.CloudAuthError`)
        raise, because no later poll can succeed.
        """
        with self._lock:
            return self._poll(list(pending))

    def _poll(self, pending: list[PendingPrint]) -> PollOutcome:
        if not pending:
            return PollOutcome((), (), (), 0, 0, self.interval_s, self.client.budget())
        if not self._credit_drawn:
            self._credit_drawn = True
            self._draw_credit()
        before = self.client.budget().total
        matched: dict[str, PrintRun] = {}
        error: str | None = None
        retry_after_s: float | None = None
        held = False
        pages = 0
        try:
            pages = self._read_feed(pending, matched)
            self._failures = 0
        except CloudAuthError:
            raise
        except CloudError as exc:
            self._failures += 1
            # Our own errors say what failed and what helps; their class name is for the log
            # (the error is shown to users: verify's "the prints feed could not be read").
            error = str(exc)
            # A rate limit's hold, or a 503 that said when the Web API is back.
            retry_after_s = exc.retry_after_s
            held = isinstance(exc, CloudRateLimitError)
            told = self.reports_failures or (
                self.defers_rate_limits and retry_after_s is not None)
            (log.info if told else log.warning)(
                "verify_poll_failed", error=error, error_type=type(exc).__name__,
                failures=self._failures)
        now = self.clock.now()
        results: list[VerificationResult] = []
        progress: list[PrintProgress] = []
        unseen: list[PendingPrint] = []
        # Sightings of prints no longer pending are dropped: a daemon's memory stays bounded.
        self._last_seen = {
            item.key: run
            for item in pending
            if (run := matched.get(item.key) or self._last_seen.get(item.key)) is not None
        }
        for item in pending:
            run = matched.get(item.key)
            if run is not None and run.status in _TERMINAL:
                status = VerifiedStatus(run.status)
                results.append(VerificationResult(item, status, _message(run), now, run))
                continue
            if item.expires and now >= item.sent_at + timedelta(seconds=self.deadline_s):
                last = self._last_seen.get(item.key)
                results.append(
                    VerificationResult(
                        item, VerifiedStatus.UNVERIFIED, self._overdue(last, error), now, last
                    )
                )
                continue
            if run is not None:
                progress.append(PrintProgress(item, run))
            else:
                unseen.append(item)
        budget = self.client.budget()
        spent = max(0, budget.total - before)
        self.polls += 1
        self.requests += spent
        interval = self.next_interval(
            progress, unseen, requests=spent, budget=budget, now=now, failed=error is not None,
            retry_after_s=retry_after_s,
        )
        self.pace.spend(spent)
        log.info(
            "verify_poll",
            pending=len(pending),
            finished=len(results),
            in_progress=len(progress),
            unseen=len(unseen),
            requests=spent,
            pages=pages,
            budget_spent=budget.spent,
            budget_left=budget.remaining,
            budget_limit=budget.limit,
            next_interval_s=round(interval, 1),
            error=error,
        )
        return PollOutcome(
            tuple(results), tuple(progress), tuple(unseen), spent, pages, interval, budget, error,
            retry_after_s, held=held,
        )

    def _draw_credit(self) -> None:
        """Keep the pace's credit only when no other process sharing the account's record
        (the job store's) sent a request for as long as the pace takes to earn it; else the
        even pace (verify/pace.py: a cron's runs one after another each took it whole)."""
        if self.pace.credit <= 0:
            return
        # A feed without a limiter (a fleet folder read directly) spends no shared budget.
        limiter = getattr(self.client, "limiter", None)
        others = 0 if limiter is None else limiter.spent_by_others(self.pace.earn_s)
        if others != 0:
            self.pace.forgo_credit()
            log.info("verify_credit_forgone", others_requests=others,
                     within_s=round(self.pace.earn_s, 1))

    def _read_feed(self, pending: list[PendingPrint], matched: dict[str, PrintRun]) -> int:
        """Read newest-first pages of the window; fill ``matched`` (key -> newest run).

        The window reaches back to the oldest pending send. Prints that are no longer waited
        for against a deadline (``expires=False``: ``verify`` looking again at the week's
        unverified ones) can lie days back, behind thousands of other prints: once the
        recent prints are settled, each of those is looked up by its key instead
        (``name=<key>``) whenever that costs fewer requests than the pages still to read
        (the page's ``count`` tells). A poll never costs more than reading the window did.
        """
        by_key = {p.key: p for p in pending}
        by_job_id = {p.print_job_id: p for p in pending if p.print_job_id}
        # The feed's created_at is the Dashboard's clock: a window from our send times
        # starts earlier by as much as that clock is behind ours.
        overlap = timedelta(seconds=self.overlap_s + behind_s(self.client.clock_skew_s))
        window_start = min(p.sent_at for p in pending) - overlap
        waited = [p for p in pending if p.expires]
        recent_start = min(p.sent_at for p in waited) - overlap if waited else None
        page_number: int | None = 1
        pages = 0
        while page_number is not None:
            page = self.client.list_prints_page(
                page_number, self.per_page, where=PrintFilter(date__gt=window_start)
            )
            pages += 1
            oldest = self._take_page(page.items, by_key, by_job_id, matched)
            if len(matched) == len(by_key):
                break  # everything waiting is accounted for
            if oldest is not None and oldest <= window_start:
                break  # the server ignored date__gt: stop at the window's edge anyway
            stale = self._stale_to_look_up(page, oldest, recent_start, waited, by_key, matched,
                                           overlap)
            if stale is not None:
                for item in stale:
                    found = self.client.list_prints_page(
                        1, self.per_page,
                        where=PrintFilter(name=item.key, date__gt=item.sent_at - overlap),
                    )
                    pages += 1
                    self._take_page(found.items, {item.key: item}, {}, matched)
                break
            page_number = page.next_page
        return pages

    def _stale_to_look_up(
        self,
        page: Page[PrintRun],
        oldest: datetime | None,
        recent_start: datetime | None,
        waited: list[PendingPrint],
        by_key: dict[str, PendingPrint],
        matched: dict[str, PrintRun],
        overlap: timedelta,
    ) -> list[PendingPrint] | None:
        """The unmatched stale prints to look up one by one instead of reading on, or None to
        read on: the recent prints are all matched, or their part of the window is read, and
        the pages left outnumber the stale prints still to look up (those whose own part of
        the window is not read yet)."""
        recent_read = all(p.key in matched for p in waited) or (
            recent_start is not None and oldest is not None and oldest <= recent_start)
        if not recent_read or page.count is None or page.next_page is None:
            return None
        # A page with a next one is full: its length is the server's page size (which may
        # be smaller than the one asked for).
        size = max(1, len(page.items))
        pages_left = math.ceil(page.count / size) - page.page
        # A print not matched by now whose own part of the window is read is not in the
        # feed: a waited-for one is unseen, a stale one needs no lookup to tell it again.
        left = [p for p in by_key.values() if not p.expires and p.key not in matched
                and (oldest is None or p.sent_at - overlap < oldest)]
        return left if pages_left > len(left) else None

    @staticmethod
    def _take_page(
        runs: Iterable[PrintRun],
        by_key: dict[str, PendingPrint],
        by_job_id: dict[str, PendingPrint],
        matched: dict[str, PrintRun],
    ) -> datetime | None:
        """Match a page's runs into ``matched`` (key -> its newest run); the page's oldest
        ``created_at``."""
        oldest: datetime | None = None
        for run in runs:
            if run.created_at is not None and (oldest is None or run.created_at < oldest):
                oldest = run.created_at
            item = _match(run, by_key, by_job_id)
            if item is None:
                continue
            known = matched.get(item.key)
            if known is None:
                matched[item.key] = run
                continue
            if known.guid == run.guid:
                continue  # the same run again (the feed grew between two pages)
            # Two prints carry one key: the print was sent twice. The newest decides; by
            # created_at, as the contract promises no order (the first seen on a tie).
            newest, other = (run, known) if _newer(run, known) else (known, run)
            matched[item.key] = newest
            log.warning("verify_duplicate_print", job_key=item.key, newest=newest.guid,
                        other=other.guid)
        return oldest

    def _overdue(self, run: PrintRun | None, error: str | None) -> str:
        """Why a print is unverified at its deadline, in what is known: what the feed last
        said of it (by an earlier poll, when this one failed), or that it never listed it.
        A feed that could not be read is never reported as one that did not list the print."""
        waited = describe_duration(self.deadline_s)
        if run is not None:
            where = f" on {run.printer}" if run.printer else ""
            seen = f"last seen {run.status}{where}"
        elif error is None:
            seen = "the print never showed in the prints feed"
        else:
            seen = "the print was not seen in the prints feed yet"
        # The error itself is in the log (verify_poll_failed) and in verify's own output.
        unread = "" if error is None else " (the prints feed could not be read at the deadline)"
        return f"no final status within {waited}: {seen}{unread}"

    # -- pacing -------------------------------------------------------------------------------

    def next_interval(
        self,
        progress: Sequence[PrintProgress],
        unseen: Sequence[PendingPrint],
        *,
        requests: int,
        budget: BudgetSnapshot,
        now: datetime,
        failed: bool = False,
        retry_after_s: float | None = None,
    ) -> float:
        """Seconds until the next poll.

        The soonest estimated finish (plus a margin), within the min/max interval; sooner if a
        deadline falls earlier; never sooner than ``requests_per_hour`` allows for a poll of
        ``requests`` requests; the longest interval while the hourly budget is nearly spent;
        doubling after failures; a rate limit's wait (``retry_after_s``, the failure's) is
        waited out in one: no poll before it ends could send a request (the ledger refuses
        it here), so the next comes when it ends, or at a deadline that falls earlier, and
        never sooner than the requests the failed poll spent allow.
        """
        deadlines = [
            (item.sent_at + timedelta(seconds=self.deadline_s) - now).total_seconds()
            for item in [*(p.pending for p in progress), *unseen]
            if item.expires
        ]
        if failed and retry_after_s is not None:
            # Not the doubling backoff: its polls at 10, 20, 40 s ... of an hour's hold sent
            # nothing, and each said the same refusal again on a run's console. Within the
            # budget still: a 503 that says "back in 5 s" was sent, and waited and sent again
            # three times, by a poll that spent 4 requests; polled again at the 30 s floor
            # it spent 320 an hour of a share of 60.
            return max(self.min_interval_s, min([retry_after_s, *deadlines]),
                       self.pace.wait_after(requests))
        if failed:
            interval = backoff(self._failures, self.interval_s, self.max_interval_s,
                               floor_s=self.min_interval_s, max_doublings=_MAX_FAILURE_DOUBLINGS)
        else:
            estimates = [p.remaining_s for p in progress if p.remaining_s is not None]
            unknown = len(estimates) < len(progress) or bool(unseen)
            wanted = min(estimates) + self.finish_margin_s if estimates else self.max_interval_s
            if unknown:
                wanted = min(wanted, self.interval_s)
            interval = min(self.max_interval_s, max(self.min_interval_s, wanted))
        # A deadline is kept whatever the Web API does (a failing one's doubling wait past it
        # reported "no final status within 5 s" a minute on), but within the budget below:
        # a failed poll spent its requests too, and staggered deadlines polled an outage
        # every 30 s, past the share of the account's hour verification may spend.
        if deadlines:
            interval = min(interval, max(self.min_interval_s, min(deadlines)))
        # Budget: a poll of N requests waits what the hour's share takes to earn them, less
        # the credit a poller that spent little lately holds (verify/pace.py).
        interval = max(interval, self.pace.wait_after(requests))
        if budget.remaining < max(1, requests) * 2:
            interval = max(interval, self.max_interval_s)
        return interval

    # -- until done ---------------------------------------------------------------------------

    def run_until(
        self,
        pending: PendingSource,
        stop_event: threading.Event | None = None,
        *,
        on_result: Callable[[VerificationResult], None] | None = None,
        on_progress: Callable[[PrintProgress], None] | None = None,
        keep_running: bool = False,
        on_poll: Callable[[PollOutcome, int], None] | None = None,
    ) -> list[VerificationResult]:
        """Poll until every pending print ended, or ``stop_event`` is set.

        ``pending`` is a list, or a function returning the prints pending now (read before
        every poll). ``on_result`` and ``on_progress`` are called from this thread as results
        and sightings come in. With ``keep_running`` (a daemon) an empty list does not end
        the loop; only ``stop_event`` does. ``on_poll`` gets each poll's outcome and the
        number of prints still pending after it, before the wait for the next poll (a live
        status line). Returns every result, in the order found.
        """
        stop = stop_event if stop_event is not None else threading.Event()
        fixed: list[PendingPrint] | None = None if callable(pending) else list(pending)

        def current_source() -> Iterable[PendingPrint]:
            if fixed is not None:
                return fixed
            assert callable(pending)
            return pending()

        settled: set[str] = set()
        found: list[VerificationResult] = []
        while not stop.is_set():
            current = [p for p in current_source() if p.key not in settled]
            if not current and not keep_running:
                break
            outcome = self.poll(current)
            for result in outcome.results:
                settled.add(result.key)
                found.append(result)
                if on_result is not None:
                    on_result(result)
            if on_progress is not None:
                for sighting in outcome.in_progress:
                    on_progress(sighting)
            if fixed is not None and len(settled) >= len({p.key for p in fixed}):
                break
            if on_poll is not None:
                on_poll(outcome, len([p for p in current if p.key not in settled]))
            self._wait(outcome.next_interval_s, stop)
        return found

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        if not math.isfinite(seconds) or seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            stop.wait(seconds)


def _match(
    run: PrintRun,
    by_key: dict[str, PendingPrint],
    by_job_id: dict[str, PendingPrint],
) -> PendingPrint | None:
    key = extract_key(run.name) if run.name else None
    if key is not None:
        # A run whose name carries a job key is that key's print, pending or not: the print
        # job id (whose uniqueness the Local API does not promise) never reassigns it.
        return by_key.get(key)
    for job_id in (run.print_job, run.guid):
        if job_id and job_id in by_job_id:
            return by_job_id[job_id]
    return None


def _newer(run: PrintRun, than: PrintRun) -> bool:
    """True when ``run`` was created after ``than`` (False when either time is unknown)."""
    return (run.created_at is not None and than.created_at is not None
            and run.created_at > than.created_at)


def _message(run: PrintRun) -> str | None:
    text = (run.message or "").strip()
    return text or None
