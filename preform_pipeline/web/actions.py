"""What an operator can do from the dashboard; each is a store transition naming the user.

Approve and reject go through :mod:`preform_pipeline.printing.approval`, settling an
UNVERIFIED print through the print owner (:meth:`PrintOwner.settle_by_person`), and retry and
cancel through the store's state machine with the same rules as ``jobs retry`` / ``jobs
cancel`` (:data:`RETRYABLE_STATES`, :data:`CANCELLABLE_STATES`; a retry asks
:func:`~preform_pipeline.hotfolder.whereabouts.retry_check` where each file is, as ``jobs
retry`` does). The audit row of every change says who did it ("… by alice (web)").
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from preform_pipeline.errors import PipelineError
from preform_pipeline.hotfolder.whereabouts import retry_check, superseded_hint
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.approval import approve, reject
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.store import Build, Job, JobState, JobStore
from preform_pipeline.store.model import CANCELLABLE_STATES, RETRYABLE_STATES
from preform_pipeline.store.superseded import WHY_SUPERSEDED, superseded_note
from preform_pipeline.wording import counted, quoted

__all__ = ["Moved", "approve_build", "cancel_case", "case_jobs", "named", "reject_build",
           "retry_case", "retry_command", "settle_print"]

log = get_logger(__name__)

_CASE_PREFIX = "case:"


def _by(user: str) -> str:
    return f"by {user} (web)"


def case_jobs(store: JobStore, target: str) -> list[Job]:
    """The jobs of ``case:ID``, or the one job with key ``PP-…``."""
    if target.startswith(_CASE_PREFIX):
        case_id = target[len(_CASE_PREFIX):]
        jobs = [j for j in store.list_jobs() if j.case_id == case_id]
    else:
        job = store.find_by_key(target)
        jobs = [job] if job is not None else []
    if not jobs:
        raise PipelineError(f"no case or job {quoted(target)} in the job store",
                            hint="reload the page: it may have been removed")
    return jobs


def retry_command(jobs: str, target: str) -> str:
    """The ``jobs retry`` command line of a case action's target (``case:ID`` or a key): it
    queues the jobs whose files are there and says each one it left."""
    return f"{jobs} retry {shlex.quote(target)}"


def named(target: str) -> str:
    """How a sentence about a case action's target starts: "Case C-7", or "Job PP-…"."""
    if target.startswith(_CASE_PREFIX):
        return f"Case {target[len(_CASE_PREFIX):]}"
    return f"Job {target}"


@dataclass(frozen=True)
class Moved:
    """What a case action did: how many jobs moved, and what the person should know."""

    count: int
    notes: tuple[str, ...] = ()


#: Of a case's movable jobs, those to move and the notes to say; raises PipelineError to
#: refuse the whole case, before anything moved.
_Check = Callable[[JobStore, str, Sequence[Job]], tuple[Sequence[Job], tuple[str, ...]]]


def _move_case(
    store: JobStore, target: str, user: str, *, movable: frozenset[JobState], to: JobState,
    done: str, verb: str, hint: str, check: _Check | None = None,
) -> Moved:
    """Move every job of the case that is in ``movable`` (and that ``check`` keeps) to
    ``to``. Nothing movable is refused with the states the case's jobs are in: "nothing to
    cancel" left the person to guess whether it had printed or someone had cancelled it
    already."""
    jobs = case_jobs(store, target)
    moving: Sequence[Job] = [j for j in jobs if j.state in movable]
    notes: tuple[str, ...] = ()
    if moving and check is not None:
        moving, notes = check(store, target, moving)
    for job in moving:
        store.transition(job.id, to, f"{verb} {_by(user)}", expect=job.state)
    count = len(moving)
    if not count:
        states = sorted({j.state.value.replace("_", " ") for j in jobs})
        if all(j.state is to for j in jobs):
            why = f"it is {to.value} already"
        else:
            why = f"{'its job is' if len(jobs) == 1 else 'its jobs are'} {', '.join(states)}"
        raise PipelineError(f"{named(target)} was not {done}: {why}", hint=hint)
    log.info("web_case_moved", target=target, user=user, jobs=count, to_state=to.value)
    return Moved(count, notes)


def _retryable(store: JobStore, target: str, jobs: Sequence[Job], *, commands: str,
               others: bool = False) -> tuple[Sequence[Job], tuple[str, ...]]:
    """Of a case's retryable jobs, those a retry should queue, by the rule ``jobs retry``
    follows (``retry_check``; ``commands``: the ``jobs`` command its hint names). A failed
    job a later job printed is left as it is: retrying it printed the file a second time
    (``jobs retry --force`` is the explicit way). A job whose file is gone refuses the whole
    case, each file said (queued, the daemon failed it again "its file is gone" after the
    page had said it was queued), unless ``others``: the person asked for the case's other
    files (Failed cases showed the file missing and offered "Retry the others"), which are
    queued, each one left said. Nothing moves when anything is refused."""
    checks = [(job, retry_check(store, job)) for job in jobs]
    later = [(job, c.superseded_by) for job, c in checks if c.superseded_by is not None]
    checks = [(job, c) for job, c in checks if c.superseded_by is None]
    if not checks:
        printed = "; ".join(f"{j.original_name}: {superseded_note(by)}" for j, by in later)
        raise PipelineError(
            f"{named(target)} was not queued again: {WHY_SUPERSEDED} ({printed})",
            hint=superseded_hint(commands, [j.job_key for j, _ in later]))
    refused = [f"{job.original_name} ({job.job_key}): {c.refusal}" for job, c in checks
               if c.refusal is not None]
    queued = [job for job, c in checks if c.refusal is None]
    if refused and not (others and queued):
        hint = "nothing was queued again"
        if queued:
            hint += (f"; to queue its other {counted(len(queued), 'file')} again without it: "
                     f"Retry the others on Failed cases, or {retry_command(commands, target)}")
        raise PipelineError(f"{named(target)} was not queued again: {'; '.join(refused)}",
                            hint=hint)
    notes = tuple(f"left as it is: {text}" for text in refused)
    notes += tuple(f"{job.original_name}: {c.note}" for job, c in checks if c.note is not None)
    if later:
        notes += (f"{len(later)} of its failed jobs left as they are: {WHY_SUPERSEDED}",)
    return queued, notes


def retry_case(store: JobStore, target: str, user: str, *, jobs: str = JOBS_COMMAND,
               others: bool = False) -> Moved:
    """Queue every retryable job of the case again (:func:`_retryable`; ``jobs``: the ``jobs``
    command reaching ``store``, for a refusal's hint; ``others``: those whose files are
    there, leaving the ones whose files are gone)."""
    return _move_case(store, target, user, movable=RETRYABLE_STATES, to=JobState.QUEUED,
                      done="queued again", verb="retried",
                      check=partial(_retryable, commands=jobs, others=others),
                      hint="only failed, aborted, errored, unverified, cancelled or skipped "
                      "jobs can be retried")


def cancel_case(store: JobStore, target: str, user: str) -> Moved:
    """Cancel every job of the case whose print was not sent; how many were."""
    return _move_case(store, target, user, movable=CANCELLABLE_STATES, to=JobState.CANCELLED,
                      done="cancelled", verb="cancelled",
                      hint="a print that was sent is cancelled on the printer or in Formlabs "
                      "Dashboard")


def settle_print(store: JobStore, build_id: int, user: str, *, printed: bool,
                 jobs: str = JOBS_COMMAND) -> Build:
    """An UNVERIFIED print settled by a person: printed, or not printed (``jobs``: the
    ``jobs`` command reaching ``store``, for a refusal's hint)."""
    build = PrintOwner(store, jobs=jobs).settle_by_person(
        store.get_build(build_id), printed=printed, note=_by(user))
    log.info("web_print_settled", build_id=build_id, user=user, printed=printed)
    return build


def approve_build(store: JobStore, build_id: int, user: str, *, jobs: str = JOBS_COMMAND
                  ) -> Build:
    return approve(store, build_id, f"{user} (web)", jobs=jobs)


def reject_build(store: JobStore, build_id: int, user: str, reason: str, *,
                 jobs: str = JOBS_COMMAND) -> Build:
    return reject(store, build_id, f"{user} (web)", reason, jobs=jobs)
