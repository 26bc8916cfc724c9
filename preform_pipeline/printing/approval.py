"""Builds held for a person's approval before they print (``print: {approval: required}``).

::

    PREPARED ─hold─► AWAITING_APPROVAL ─approve─► WAITING_FOR_PRINTER ─dispatch─► PRINT_SENDING
     (.form saved,      (its screenshot      └─reject──► FAILED (the cases go to failed/ with
      screenshot)        is what is judged)               the operator's reason)

Approving does not print: the build joins the printers' waiting line with the target it was
held with, and the daemon's dispatch loop sends it through the print owner like any other, so
"at most one print per build" holds unchanged. Every decision is one compare-and-set in the
store with an audit row naming the user, and ``Build.approval`` records who, when and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import (
    DecidedAlreadyError,
    Decision,
    PipelineError,
    StoreConflictError,
    StoreError,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.store import STATE_DESCRIPTIONS, Build, JobState, JobStore

__all__ = ["APPROVED", "REJECTED", "approve", "hold_for_approval", "reject"]

log = get_logger(__name__)

APPROVED: Final = "approved"
REJECTED: Final = "rejected"
#: A rejection's reason is shown on the dashboard and written into each case's error note.
MAX_REASON_CHARS: Final = 500


def hold_for_approval(
    store: JobStore,
    build_id: int,
    target: Mapping[str, Any],
    *,
    job_name: str,
    priority: int,
    describe: str,
) -> Build:
    """PREPARED → AWAITING_APPROVAL, with where it will print once approved."""
    build = store.transition_build(
        build_id,
        JobState.AWAITING_APPROVAL,
        f"prepared; waits for an operator's approval, then for {describe}",
        expect=JobState.PREPARED,
        print_target=target,
        job_name=job_name,
        priority=priority,
    )
    log.info("build_held_for_approval", build_id=build_id, job_key=build.job_key)
    return build


def _held(store: JobStore, build_id: int, jobs: str) -> Build:
    build = store.get_build(build_id)
    if build.state is not JobState.AWAITING_APPROVAL:
        raise _late(build.job_key, build.state, _decided(build.approval), jobs)
    return build


def _late(job_key: str, state: JobState, decided: Decision | None, jobs: str
          ) -> DecidedAlreadyError:
    return DecidedAlreadyError(
        # What the state means, as `jobs` and the dashboard say it: "print_sent" is
        # the store's word, not the person's.
        f"build {job_key} is not awaiting approval: {STATE_DESCRIPTIONS[state]}",
        decided=decided,
        hint="someone decided already, or it was cancelled; reload the page or see "
        f"`{jobs} show {job_key}`",
    )


def _decided(record: Mapping[str, Any] | None) -> Decision | None:
    """The decision a build's ``approval`` record (:func:`_record`) holds; None: none taken."""
    if not record or not record.get("decision"):
        return None
    try:
        at: datetime | None = datetime.fromisoformat(str(record.get("at")))
    except ValueError:
        at = None
    return Decision(str(record["decision"]), str(record.get("by") or "someone"), at)


def _decide(store: JobStore, build_id: int, jobs: str, to: JobState, reason: str,
            record: dict[str, Any]) -> Build:
    """The one compare-and-set of a decision. Another person's decision between the check
    and the write loses this one the compare-and-set: it is refused as a late decision (who
    was first, and when), not as the store's "is waiting_for_printer, expected ..."."""
    held = _held(store, build_id, jobs)
    try:
        return store.transition_build(build_id, to, reason, expect=JobState.AWAITING_APPROVAL,
                                      approval=record)
    except StoreConflictError as conflict:
        try:
            _held(store, build_id, jobs)
        except StoreError as unread:
            # The re-read only adds who was first: a store that fails it (a lock held, the
            # database restarting) must not turn the refusal into an outage page, which
            # says nothing of the decision that stood.
            log.warning("approval_decider_unread", build_id=build_id, job_key=held.job_key,
                        error=str(unread))
            try:
                state = JobState(conflict.actual)
            except ValueError:
                raise conflict from None
            raise _late(held.job_key, state, None, jobs) from conflict
        raise


def _record(clock: Clock, decision: str, user: str, reason: str) -> dict[str, Any]:
    return {"decision": decision, "by": user, "at": clock.now().isoformat(),
            "reason": reason}


def approve(
    store: JobStore, build_id: int, user: str, *, clock: Clock = SYSTEM_CLOCK,
    jobs: str = JOBS_COMMAND,
) -> Build:
    """AWAITING_APPROVAL → WAITING_FOR_PRINTER: dispatch sends it when its printer is free.

    ``jobs``: the ``jobs`` command reaching ``store``, for the hint of a refusal."""
    build = _decide(store, build_id, jobs, JobState.WAITING_FOR_PRINTER, f"approved by {user}",
                    _record(clock, APPROVED, user, ""))
    log.info("build_approved", build_id=build_id, job_key=build.job_key, user=user)
    return build


def reject(
    store: JobStore, build_id: int, user: str, reason: str, *, clock: Clock = SYSTEM_CLOCK,
    jobs: str = JOBS_COMMAND,
) -> Build:
    """AWAITING_APPROVAL → FAILED with the operator's reason (its cases go to failed/)."""
    text = " ".join(reason.split())[:MAX_REASON_CHARS]
    if not text:
        raise PipelineError("a rejection needs a reason",
                            hint="say what is wrong, e.g. 'crown 3 overlaps the raft'")
    build = _decide(store, build_id, jobs, JobState.FAILED, f"rejected by {user}: {text}",
                    _record(clock, REJECTED, user, text))
    log.info("build_rejected", build_id=build_id, job_key=build.job_key, user=user)
    return build
