"""What the hot folder's console says of a build an operator decided on (approval by
screenshot, ``print: {approval: required}``), once the decision took effect.

The console says a build is held for approval when its batch ends (executor/progress.py); the
decision is made elsewhere (the dashboard, ``jobs approve`` / ``jobs reject``) and takes
effect in the daemon later: an approved build is sent (or refused by its printer) by the
dispatch loop, a rejected one's files go to failed/ with the sweep of processing/. Each says
one line then, and logs its event, so the console does not stop at "held".
"""

from __future__ import annotations

from preform_pipeline.logging import get_logger
from preform_pipeline.printing.approval import APPROVED, REJECTED
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.model import PRINT_SENT_STATES

__all__ = ["approval_line"]

log = get_logger(__name__)


def approval_line(build: Build) -> str | None:
    """The console's line for a build an operator decided on, once that decision took effect
    (sent, refused by its printer, or rejected), logged as its event; None for a build held
    by nobody (most builds) or not decided yet."""
    approval = build.approval or {}
    decision, by = approval.get("decision"), approval.get("by")
    printer = build.printer or "its printer"
    if decision == APPROVED and build.state in PRINT_SENT_STATES:
        log.info("approved_build_sent", build_id=build.id, job_key=build.job_key, by=by,
                 printer=printer)
        return f"[{build.job_key}] approved by {by}, sent to {printer}"
    if decision == APPROVED and build.state is JobState.FAILED:
        log.warning("approved_build_refused", build_id=build.id, job_key=build.job_key,
                    by=by, printer=printer, reason=build.reason)
        return f"[{build.job_key}] approved by {by}, not sent: {build.reason}"
    if decision == REJECTED and build.state is JobState.FAILED:
        log.info("rejected_build_settled", build_id=build.id, job_key=build.job_key, by=by,
                 reason=approval.get("reason"))
        return (f"[{build.job_key}] rejected by {by}: {approval.get('reason')}; its files "
                "go to failed/")
    return None
