"""Where a job's file (and each sidecar) is now, as this machine sees it: one reading for
``jobs show`` in words and in JSON, and for ``jobs retry`` and the dashboard's Retry (here,
below both: the dashboard and the commands are one layer and may not import each other).

The store names the place the hot folder last put a file, which a person may have emptied
since (the documented way to retry a failed case is to put it back into the inbox). What
is found is one of :data:`STATUSES`:

- ``there``: at the place the store names;
- ``dropped_again``: gone from there, and a later job was taken from the place the file
  was dropped at (the latest such job is named);
- ``being_moved``: not there yet, still at its previous place: a move cut short between
  the store's write and the move, which the daemon finishes;
- ``put_back``: gone from there, and back in the inbox where it was dropped, not taken yet;
- ``unseen``: not there, and its hot folder's inbox is not a folder this machine sees (a
  node of a shared store that does not mount the hot folder): where the file is cannot be
  judged from here, so nothing is said to be gone;
- ``gone``: moved or removed since.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from preform_pipeline.hotfolder.intake import JobPlace, place_of, watcher_takes
from preform_pipeline.store import (
    DUPLICATE_STATES,
    STATE_DESCRIPTIONS,
    TERMINAL_STATES,
    Job,
    JobState,
    JobStore,
)
from preform_pipeline.store.fields import RUN_FIELD
from preform_pipeline.store.leases import LeasingStore
from preform_pipeline.store.superseded import WHY_SUPERSEDED, superseded, superseded_note

__all__ = ["STATUSES", "RetryCheck", "Whereabouts", "dropped_after", "file_now", "retry_check",
           "sidecar_now", "state_meaning", "superseded_hint", "taken_again", "unwatched",
           "who_takes"]

Status = Literal["there", "dropped_again", "being_moved", "put_back", "unseen", "gone"]
STATUSES: Final[tuple[Status, ...]] = (
    "there", "dropped_again", "being_moved", "put_back", "unseen", "gone")


@dataclass(frozen=True)
class Whereabouts:
    """Where one file is now: ``path`` (the store's place), its ``status``, ``now_at`` (the
    place it is at instead: ``being_moved``, ``put_back``), ``again`` (``dropped_again``:
    the later job) and ``sidecar`` (a sidecar, which goes with its file)."""

    path: str
    status: Status
    now_at: str | None = None
    again: Job | None = None
    sidecar: bool = False

    def text(self) -> str:
        """The words ``jobs show`` prints."""
        if self.status == "there":
            return self.path
        if self.again is not None:
            if self.sidecar:
                return f"{self.path}: not there now; dropped again with its file"
            return (f"{self.path}: not there now; dropped again as job {self.again.id} "
                    f"{self.again.job_key} ({self.again.state.value})")
        if self.status == "being_moved":
            return f"{self.path}: not there yet; still at {self.now_at}, being moved"
        if self.status == "put_back":
            return (f"{self.path}: not there now; put back into the inbox as {self.now_at}, "
                    "not taken yet")
        if self.status == "unseen":
            return (f"{self.path}: not seen from this machine (its hot folder's inbox "
                    f"{self.now_at} is not here)")
        return f"{self.path}: not there now (moved or removed since)"

    def to_dict(self) -> dict[str, Any]:
        """What ``jobs show --format json`` prints: the same finding as data."""
        again = self.again
        return {
            "path": self.path,
            "status": self.status,
            "now_at": self.now_at,
            "dropped_again_as": None if again is None else {
                "id": again.id, "job_key": again.job_key, "state": again.state.value},
        }


#: Who prepares a queued job of ``run``: it has no hot folder place, so only a run that meets
#: its file takes it, as itself (executor/ledger.py).
_RUN_TAKES: Final = "the next `run` over its file prepares it"


def who_takes(job: Job) -> str:
    """Who prepares ``job`` once it is queued (``jobs retry``'s words)."""
    return _RUN_TAKES if RUN_FIELD in job.fields else "the hot folder picks it up"


def state_meaning(job: Job) -> str:
    """What ``job``'s state means, in its own terms (the queue page, ``jobs show``): a queued
    job's description is the hot folder's ("to be taken into processing/"), which a run's job
    never enters; session 48's trial read it beside a run's retried job no hot folder would
    ever take."""
    if job.state is not JobState.QUEUED or RUN_FIELD not in job.fields:
        return STATE_DESCRIPTIONS[job.state]
    return f"queued again; {_RUN_TAKES} (a run's job: no hot folder takes it)"


def taken_again(job: Job, others: Sequence[Job]) -> Job | None:
    """The latest job taken later from the place ``job``'s file was dropped at (the file put
    back into the inbox and dropped again), if any."""
    place = place_of(job)
    if place is None:
        return None
    again = [
        other for other in others
        if other.id > job.id and other.original_name == job.original_name
        and (mark := place_of(other)) is not None
        and (mark.inbox, mark.rel) == (place.inbox, place.rel)
    ]
    return max(again, key=lambda other: other.id, default=None)


def file_now(job: Job, place: JobPlace | None, again: Job | None) -> Whereabouts:
    """Where ``job``'s file is now; ``again``: :func:`taken_again`'s answer."""
    path = str(job.source_path)
    if os.path.lexists(path):
        return Whereabouts(path, "there")
    if again is not None:
        return Whereabouts(path, "dropped_again", again=again)
    if place is not None:
        unsettled = place.moved is False or (
            place.moved is None and job.state not in TERMINAL_STATES)
        if unsettled and place.previous is not None and os.path.lexists(place.previous):
            # Cut short between the store's write and the move: the daemon finishes it.
            return Whereabouts(path, "being_moved", now_at=str(place.previous))
        dropped = place.dropped_at
        if os.path.lexists(dropped):
            return Whereabouts(path, "put_back", now_at=str(dropped))
        if not os.path.isdir(place.inbox):
            # Not mounted here: "gone" would be a guess, and a retry refused by it wrongly.
            return Whereabouts(path, "unseen", now_at=str(place.inbox))
    return Whereabouts(path, "gone")


def sidecar_now(at: str, again: Job | None) -> Whereabouts:
    """Where a sidecar the store names at ``at`` is now (it went wherever its file went)."""
    if os.path.lexists(at):
        return Whereabouts(at, "there", sidecar=True)
    if again is not None:
        return Whereabouts(at, "dropped_again", again=again, sidecar=True)
    return Whereabouts(at, "gone", sidecar=True)


def dropped_after(store: JobStore, job: Job) -> Sequence[Job]:
    """The jobs :func:`taken_again` looks through for ``job``: none when its file is where
    the store says; otherwise only those under its name (the store's search;
    :func:`taken_again` compares exactly), not every job of a store that may hold years of
    them. What ``jobs show``, ``jobs retry`` and the dashboard's Retry all judge by."""
    if os.path.lexists(job.source_path):
        return ()
    return store.list_jobs(text=job.original_name)


@dataclass(frozen=True)
class RetryCheck:
    """What a retry of one job meets: ``refusal``, why it cannot run, with what helps (None:
    it can); ``note``, what the person should know when it runs without its file having been
    judged here; ``superseded_by``, the later job that printed a failed job's file (then the
    refusal says so, and :func:`superseded_hint` what helps)."""

    refusal: str | None = None
    note: str | None = None
    superseded_by: Job | None = None


def superseded_hint(jobs: str, keys: Sequence[str]) -> str:
    """What helps when a retry is refused because its jobs are superseded (``jobs``: the
    ``jobs`` command reaching the store; ``keys``: the jobs' keys)."""
    again = "; ".join(f"{jobs} retry --force {key}" for key in keys)
    return f"there is nothing to retry; to print it once more anyway: {again}"


def retry_check(store: JobStore, job: Job, *, force: bool = False) -> RetryCheck:
    """Whether a retry of ``job`` can run. A failed job a later job of its recipe and file
    printed (store/superseded.py) is refused: its retry printed the file a second time
    (``force``: a person asked for that print, ``jobs retry --force``). Then from where its
    file is now (the reading of ``jobs show``): it can run when the file is where the store
    names it, or in a move cut short, which the daemon finishes. The file is judged only for
    a job the hot folder took (it recorded a place). ``jobs retry`` and the dashboard's Retry
    both ask this: one rule, said the same way in both.

    Queued without its file, the job was failed by the daemon "its file is gone" after the
    command had said it was queued again. From a machine that does not see the hot folder's
    inbox (a node of a shared store) the file cannot be judged: the retry runs, said so, and
    the daemon watching that inbox takes the job, or fails it saying its file is gone."""
    later = None if force else superseded(store, [job]).get(job.id)
    if later is not None:
        return RetryCheck(f"{WHY_SUPERSEDED} ({superseded_note(later)})", superseded_by=later)
    place = place_of(job)
    if place is None:
        # Not skipped by `force`: forced, the retry would wait behind that job all the same.
        holder = _run_holder(store, job)
        if holder is not None:
            then = ("if that print fails, the next run prints the file again"
                    if holder.state not in TERMINAL_STATES else
                    "to print it once more anyway, run its recipe over the file with --reprint")
            return RetryCheck(
                f"a later run took the same file again as job {holder.id} ({holder.job_key}, "
                f"{holder.state.value}), and a run takes the file as that job while it "
                f"stands, so this retry would never run; {then}")
        return RetryCheck()
    where = file_now(job, place, taken_again(job, dropped_after(store, job)))
    if where.status in ("there", "being_moved"):
        return RetryCheck()
    if where.status == "unseen":
        return RetryCheck(note=(
            f"its hot folder's inbox {place.inbox} is not seen from this machine, so its "
            f"file was not looked for here; the hot folder watching that inbox takes it "
            f"again, or fails it \"its file is gone\" if it is not at {where.path}"))
    said = f"its file {where.text()}"
    if where.status == "gone":
        return RetryCheck(f"{said}; put it back at {where.path} and retry, or drop it into "
                          f"the hot folder again ({place.inbox}) as a new job")
    if where.status == "put_back":
        return RetryCheck(f"{said}; the hot folder takes it as a new job")
    return RetryCheck(f"{said}; retry that job instead if it needs it")


def _run_holder(store: JobStore, job: Job) -> Job | None:
    """For a ``run``'s job, the later job of its recipe and content that a run's claim finds
    first (the newest in ``DUPLICATE_STATES``, ledger.py's rule), if not ``job`` itself: a
    retry queued behind it waited for good (session 48's trial: the reprint of a failed
    print waited for its printer, and the retry of that failure stayed queued)."""
    if RUN_FIELD not in job.fields or not job.content_hash:
        return None
    held = [other for other in store.find_by_hashes({job.content_hash}, state=DUPLICATE_STATES)
            if other.recipe == job.recipe and other.id > job.id]
    return held[-1] if held else None


def unwatched(store: JobStore, jobs: Sequence[Job]) -> dict[int, str]:
    """For each job among ``jobs`` that waits for a node watching its inbox while no running
    node of a shared store takes it (``intake.watcher_takes``, the rule the nodes follow),
    what it waits for, by job id. On a farm only a node watching the job's inbox takes it:
    with none running it would wait and nobody would be told. A daemon alone on its store
    (SQLite) takes every such job, so nothing is said there. Such a job is one nobody works
    on: retried (queued, with its file not at the place in the inbox it was dropped at: the
    hot folder is not taking it now), or taken into processing/ and not batched (its node
    is gone: a node watching its inbox adopts it)."""
    waiting = [
        (job, place) for job in jobs
        if job.build_id is None and (place := place_of(job)) is not None
        and (job.state is JobState.PROCESSING or (
            job.state is JobState.QUEUED and job.source_path != place.dropped_at))
    ]
    if not waiting or not isinstance(store, LeasingStore):
        return {}
    running = [node.info.inboxes for node in store.list_nodes() if node.health() == "alive"]
    return {
        job.id: (f"waits for a hot folder watching {place.inbox}: no running node watches "
                 "it (`nodes` lists them)")
        for job, place in waiting
        if not any(watcher_takes(inboxes, job) for inboxes in running)
    }
