"""Verifying the job store's pending prints: the glue between the poller and the store.

:func:`verify_pending` is what ``preform-pipeline verify`` (and a daemon) runs:

1. settle builds left in ``print_sending`` by a crash (:func:`~.lookup.settle_interrupted_sends`:
   found → ``print_sent``; not found after the grace period → ``prepared``, safe to resend);
2. read the pending prints (``print_sent``, ``verifying``; and ``unverified`` ones sent within
   ``unverified_lookback_s``, which a late final status may still settle);
3. poll once, or until every one ended (``wait=True``), writing each result to the store as it
   comes: ``verifying`` when first seen in the feed, then ``finished``, ``aborted``,
   ``print_error`` or ``unverified`` with the printer's message, on the build and its jobs;
4. notify (webhook / command) of each print that ended, without waiting for delivery.

Every store write is a compare-and-set: if someone else moved the build meanwhile (a user
retried it), the result is logged and skipped, never forced.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.cloud import BudgetSnapshot
from preform_pipeline.errors import StoreConflictError, StoreError
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintLocator, PrintOwner
from preform_pipeline.settings.verify import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_POLL_REQUESTS_PER_HOUR,
    DEFAULT_VERIFY_DEADLINE_S,
)
from preform_pipeline.store import Build, JobState, JobStore
from preform_pipeline.verify.lookup import SettledSend, settle_interrupted_sends
from preform_pipeline.verify.notify import Notifier, notification_for_status
from preform_pipeline.verify.poller import (
    PendingPrint,
    PollOutcome,
    PrintProgress,
    PrintsFeed,
    VerificationPoller,
    VerificationResult,
    VerifiedStatus,
)

__all__ = [
    "DEFAULT_UNVERIFIED_LOOKBACK_S",
    "NOT_CHECKED",
    "NOT_IN_FEED_YET",
    "BuildVerification",
    "ENDED_BADLY_NOTICE",
    "HELD_NOTICE",
    "VerifyReport",
    "PRINT_END_NOTICE",
    "apply_result",
    "first_to_announce",
    "first_to_say_ended",
    "first_to_say_held",
    "mark_in_progress",
    "pending_prints",
    "verify_pending",
]

log = get_logger(__name__)

#: ``unverified`` builds sent within this long are looked at again by ``verify``: a print that
#: outlived its deadline (a long queue) still gets its final status recorded.
DEFAULT_UNVERIFIED_LOOKBACK_S: Final = 7 * 24 * 3600.0

_ACTIVE: Final = (JobState.PRINT_SENT, JobState.VERIFYING, JobState.UNVERIFIED)
#: A pending print's status in the summary when the feed was read and did not list it...
NOT_IN_FEED_YET: Final = "not in the prints feed yet"
#: ... and when the feed could not be read (nothing is known of the print this time).
NOT_CHECKED: Final = "not checked: the prints feed could not be read"
#: The store's notice of how a print ended (``"print end PP-..."``, about its status): said
#: once between every process that follows the print (a run waiting on it, cron's
#: ``verify``, the hot folder, the nodes of a farm).
PRINT_END_NOTICE: Final = "print end"
#: The notice of a print ``verify --quiet`` said ended badly (``"verify ended badly PP-..."``,
#: about its state): said once between every verify that saw it end.
ENDED_BADLY_NOTICE: Final = "verify ended badly"
#: The notice of a wait for the Web API's rate limits ``verify --quiet`` said (``"verify held
#: web-api:..."``, the account's budget: :func:`~preform_pipeline.cloud.budget_account`), about
#: when that wait ends (ISO 8601, UTC): said once between every verify of the store.
HELD_NOTICE: Final = "verify held"
# Kept past the last time any process can still follow the print: verify looks again at the
# week's unverified prints.
_PRINT_END_NOTICE_KEEP_S: Final = DEFAULT_UNVERIFIED_LOOKBACK_S + 24 * 3600.0


@dataclass(frozen=True)
class BuildVerification:
    """One build's line in the ``verify`` summary."""

    build_id: int
    job_key: str
    job_name: str | None
    state: JobState
    status: str
    message: str | None
    printer: str | None
    print_job_id: str | None
    changed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "job_key": self.job_key,
            "job_name": self.job_name,
            "state": self.state.value,
            "status": self.status,
            "message": self.message,
            "printer": self.printer,
            "print_job_id": self.print_job_id,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class VerifyReport:
    """What a :func:`verify_pending` call did."""

    builds: tuple[BuildVerification, ...]
    settled: tuple[SettledSend, ...]
    polls: int
    requests: int
    budget: BudgetSnapshot
    interrupted: bool = False
    errors: tuple[str, ...] = field(default=())
    #: The single poll's failure said when a request may leave again (the rate limits' hold,
    #: or a 503 that said when the Web API is back): in how many seconds.
    retry_after_s: float | None = None
    #: That failure was the rate limits' hold, not the Web API failing (:attr:`PollOutcome.held`).
    held: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "builds": [b.as_dict() for b in self.builds],
            "interrupted_sends": [
                {"build_id": s.build.id, "job_key": s.build.job_key, "decision": s.decision,
                 "reason": s.reason, "state": s.build.state.value}
                for s in self.settled
            ],
            "polls": self.polls,
            "requests": self.requests,
            "budget": self.budget.as_dict(),
            "interrupted": self.interrupted,
            "errors": list(self.errors),
        }


def pending_prints(
    store: JobStore,
    *,
    now: datetime,
    unverified_lookback_s: float = DEFAULT_UNVERIFIED_LOOKBACK_S,
) -> list[PendingPrint]:
    """The store's builds whose print is watched, as the poller's pending prints."""
    found: list[PendingPrint] = []
    for build in store.pending_prints():
        found.append(_pending(build, expires=True))
    if unverified_lookback_s > 0:
        horizon = now - timedelta(seconds=unverified_lookback_s)
        for build in store.list_builds(state=JobState.UNVERIFIED):
            sent = build.print_sent_at or build.updated_at
            if sent >= horizon:
                found.append(_pending(build, expires=False))
    return found


def _pending(build: Build, *, expires: bool) -> PendingPrint:
    return PendingPrint(
        key=build.job_key,
        sent_at=build.print_sent_at or build.updated_at,
        name=build.job_name or build.job_key,
        build_id=build.id,
        job_name=build.job_name,
        print_job_id=build.print_job_id,
        printer=build.printer,
        expires=expires,
    )


def apply_result(store: JobStore, result: VerificationResult) -> Build | None:
    """Write one print's final status onto its build (and jobs); None if it moved meanwhile.

    ``unverified`` over ``unverified`` is no change (the build is returned as it is).
    """
    build_id = result.pending.build_id
    if build_id is None:
        return None
    target = result.status.job_state
    reason = f"print {result.status.value}"
    if result.message:
        reason += f": {result.message}"
    if result.printer:
        reason += f" (on {result.printer})"
    try:
        current = store.get_build(build_id)
        if current.state is target:
            return current
        return store.transition_build(
            build_id,
            target,
            reason,
            expect=_ACTIVE,
            verified_status=result.status.value,
            verified_message=result.message,
            printer=result.printer or current.printer,
        )
    except StoreConflictError as exc:
        log.info("verify_result_skipped", build=build_id, job_key=result.key, error=str(exc))
        return None


def first_to_announce(store: JobStore | None, result: VerificationResult) -> bool:
    """True when no process announced this end of ``result``'s print yet: this one does.

    A run waiting on its prints and cron's ``verify`` (or the hot folder, or another node)
    follow the same prints in one store; whichever sees an end first records it, and each
    would notify it. The store's notices (one write transaction) let exactly one of them
    say it. Only a process that has a notifier asks, so one without (a ``verify`` whose
    settings name no webhook) never takes the notice from one that has. A store that cannot
    record it is answered True: a second notice is better than none.
    """
    return _first_notice(store, PRINT_END_NOTICE, result.key, result.status.value)


def first_to_say_ended(store: JobStore | None, build: BuildVerification) -> bool:
    """True when no ``verify --quiet`` said yet that ``build``'s print ended so (its state):
    this one does. Two verifies that poll at once (cron on two nodes of one store, the same
    minute) both see the print change from the state each read before; only one says it.
    Its own notices: a verify without a webhook never takes the notifier's
    (:func:`first_to_announce`)."""
    return _first_notice(store, ENDED_BADLY_NOTICE, build.job_key, build.state.value)


def first_to_say_held(store: JobStore | None, account: str, wait_s: float, *,
                      now: datetime) -> bool:
    """True when this verify says its wait for the Web API (``account``'s hourly budget spent,
    or a 429's Retry-After: ``wait_s`` from ``now``): no verify of ``store`` said a wait that
    has not ended yet. Such a wait clears itself at a known time, so cron's verify every
    minute said it about 48 times an hour (session 48's trial); said when it starts, with its
    end, it is said again only when a wait outlasts the end said (a spent account spent
    again), where a person may want to look."""
    key = f"{HELD_NOTICE} {account}"
    # The end to the whole second, rounded up from the moment itself: two verifies held by
    # one stored hold read it a fraction of a second apart, and must name the same end for
    # the notice's one write to let only one of them say it.
    end = now + timedelta(seconds=wait_s)
    ends = end.replace(microsecond=0) + timedelta(seconds=1 if end.microsecond else 0)
    if store is not None:
        try:
            said = store.notice_about(key)
        except StoreError as exc:
            log.warning("verify_notice_unrecorded", notice=HELD_NOTICE, error=str(exc))
            return True
        if said is not None and _ends_after(said, now):
            log.info("verify_wait_said_before", until=said, wait_s=math.ceil(wait_s))
            return False
    first = _first_notice(store, HELD_NOTICE, account, ends.isoformat())
    if first:
        log.info("verify_wait_said", until=ends.isoformat(), wait_s=math.ceil(wait_s))
    return first


def _ends_after(said: str, now: datetime) -> bool:
    """Whether the wait's end a notice holds is after ``now`` (a notice not read as a time,
    from some other version, is past: the wait is said again)."""
    try:
        ends = datetime.fromisoformat(said)
    except ValueError:
        return False
    return ends.tzinfo is not None and ends > now


def _first_notice(store: JobStore | None, prefix: str, key: str, about: str) -> bool:
    """The store's notice ``prefix key`` taken for ``about``: True by the one process that
    takes it first (one write transaction), and by any process whose store cannot record it
    (a second notice is better than none)."""
    if store is None:
        return True
    try:
        first = store.note_notice(f"{prefix} {key}", about)
        store.forget_old_notices(f"{prefix} ", older_than_s=_PRINT_END_NOTICE_KEEP_S)
    except StoreError as exc:
        log.warning("verify_notice_unrecorded", job_key=key, notice=prefix, error=str(exc))
        return True
    if not first:
        log.info("verify_notice_said_elsewhere", job_key=key, notice=prefix, status=about)
    return first


def mark_in_progress(store: JobStore, progress: PrintProgress) -> Build | None:
    """A print first seen in the feed: ``print_sent`` (or ``unverified``) → ``verifying``."""
    build_id = progress.pending.build_id
    if build_id is None:
        return None
    try:
        current = store.get_build(build_id)
        if current.state not in (JobState.PRINT_SENT, JobState.UNVERIFIED):
            return current
        where = f" on {progress.run.printer}" if progress.run.printer else ""
        return store.transition_build(
            build_id,
            JobState.VERIFYING,
            f"in the prints feed: {progress.run.status}{where}",
            expect=current.state,
            printer=progress.run.printer or current.printer,
        )
    except StoreConflictError as exc:
        log.info("verify_progress_skipped", build=build_id, error=str(exc))
        return None


def verify_pending(
    store: JobStore,
    client: PrintsFeed,
    *,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Sleep | None = None,
    wait: bool = False,
    interval_s: float = DEFAULT_POLL_INTERVAL_S,
    deadline_s: float = DEFAULT_VERIFY_DEADLINE_S,
    requests_per_hour: float = DEFAULT_POLL_REQUESTS_PER_HOUR,
    locators: Sequence[PrintLocator] | None = None,
    notifier: Notifier | None = None,
    stop: threading.Event | None = None,
    unverified_lookback_s: float = DEFAULT_UNVERIFIED_LOOKBACK_S,
    poller: VerificationPoller | None = None,
) -> VerifyReport:
    """Settle interrupted sends, then verify the store's pending prints (module docstring).

    One poll, or with ``wait`` polls until every print ended (or ``stop`` is set).
    Refused credentials raise :class:`~preform_pipeline.errors.CloudAuthError`.
    """
    stop = stop if stop is not None else threading.Event()
    poller = poller or VerificationPoller(
        client,
        clock=clock,
        sleep=sleep,
        interval_s=interval_s,
        deadline_s=deadline_s,
        requests_per_hour=requests_per_hour,
        # One poll's failure is in the report, which its caller says (verify's error line).
        reports_failures=not wait,
    )
    settled = (
        tuple(settle_interrupted_sends(store, PrintOwner(store, locators, clock=clock)))
        if locators is not None
        else ()
    )
    pending = pending_prints(store, now=clock.now(), unverified_lookback_s=unverified_lookback_s)
    before = {p.build_id: store.get_build(p.build_id).state for p in pending if p.build_id}
    polls_before, requests_before = poller.polls, poller.requests
    errors: list[str] = []
    seen: dict[int, VerificationResult | PrintProgress] = {}

    def on_result(result: VerificationResult) -> None:
        apply_result(store, result)
        if result.pending.build_id is not None:
            seen[result.pending.build_id] = result
        if notifier is not None and not (
            result.status is VerifiedStatus.UNVERIFIED and not result.pending.expires
        ) and first_to_announce(store, result):
            notifier.notify(
                notification_for_status(
                    result.status.value,
                    job_key=result.key,
                    name=result.pending.job_name,
                    message=result.message,
                    printer=result.printer,
                    print_job_id=result.pending.print_job_id or result.print_guid,
                )
            )

    def on_progress(progress: PrintProgress) -> None:
        mark_in_progress(store, progress)
        if progress.pending.build_id is not None:
            seen[progress.pending.build_id] = progress

    def on_poll(outcome: PollOutcome, _left: int) -> None:
        feed_read[0] = outcome.error is None

    interrupted = False
    retry_after_s: float | None = None
    held = False
    # Whether the latest poll read the feed: a print it did not see is then "not in the
    # prints feed yet"; after a failed read nothing is known of it, and the row says so.
    feed_read = [True]
    if pending:
        if wait:
            try:
                poller.run_until(pending, stop, on_result=on_result, on_progress=on_progress,
                                 on_poll=on_poll)
            except KeyboardInterrupt:
                interrupted = True
        else:
            outcome = poller.poll(pending)
            on_poll(outcome, 0)
            for result in outcome.results:
                on_result(result)
            for progress in outcome.in_progress:
                on_progress(progress)
            if outcome.error:
                errors.append(outcome.error)
            retry_after_s, held = outcome.retry_after_s, outcome.held
    interrupted = interrupted or stop.is_set()
    rows = tuple(_row(store, p, before.get(p.build_id), seen.get(p.build_id or -1),
                      feed_read=feed_read[0])
                 for p in pending if p.build_id is not None)
    return VerifyReport(
        builds=rows,
        settled=settled,
        polls=poller.polls - polls_before,
        requests=poller.requests - requests_before,
        budget=client.budget(),
        interrupted=interrupted,
        errors=tuple(errors),
        retry_after_s=retry_after_s,
        held=held,
    )


def _row(
    store: JobStore,
    pending: PendingPrint,
    before: JobState | None,
    seen: VerificationResult | PrintProgress | None,
    *,
    feed_read: bool,
) -> BuildVerification:
    assert pending.build_id is not None
    build = store.get_build(pending.build_id)
    if isinstance(seen, VerificationResult):
        status, message = seen.status.value, seen.message
    elif isinstance(seen, PrintProgress):
        status, message = seen.run.status, None
    else:
        status = build.verified_status or (
            NOT_IN_FEED_YET if feed_read else NOT_CHECKED)
        message = build.verified_message
    return BuildVerification(
        build_id=build.id,
        job_key=build.job_key,
        job_name=build.job_name,
        state=build.state,
        status=status,
        message=message,
        printer=build.printer,
        print_job_id=build.print_job_id,
        changed=before is not None and before is not build.state,
    )
