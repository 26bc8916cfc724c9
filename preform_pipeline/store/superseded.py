"""Failed jobs that a later job put right: the same recipe, the same file content, printed.

A ``run`` killed mid-way leaves its jobs ``failed`` ("its run died before printing it"), and
the next run makes new jobs for the same models; ``jobs retry`` is not how they come back.
Those failures are true history, but not something a person has to act on: a later job of the
same recipe and content (the file's digest, ``content_hash``) printed it (``finished``) or is
printing it (``verifying``) or, for a recipe without a print step, prepared it (``done``).
A later print only sent (``print_sent``) puts nothing right yet: it may never start, or fail.
A case is put right the same way when it is exported again with new content (a lab's usual
answer to a rejected build): a later job of the same recipe, the same case id and the same
member (its path in the case, :func:`case_member`) that printed. Such a failed job is
*superseded* by the first of those later jobs. Nothing is written: the
rule is read from the store each time, so a job that is superseded says so from the moment
the later one succeeds, in any store and after any upgrade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Final

from preform_pipeline.store.fields import HOTFOLDER_FIELD
from preform_pipeline.store.model import FINAL_STATES, Job, JobState
from preform_pipeline.store.protocol import JobStore

__all__ = ["PUT_RIGHT_STATES", "SUPERSEDING_STATES", "WHY_SUPERSEDED", "case_member",
           "superseded", "superseded_note"]

#: A later job in one of these printed the content (``finished``; ``done``: prepared it, without
#: a print step) or is printing it (``verifying``: the print is in the prints feed). Not one
#: only sent (``print_sent``): until session 49 it counted, and a failed print left Failed
#: cases as its reprint was sent, though that print may never start (session 48's trial: a
#: printer taken offline held one ``print_sent`` for as long as the trial ran) or fail in turn;
#: until it prints, the failure still needs a person.
SUPERSEDING_STATES: Final = frozenset({JobState.VERIFYING}) | FINAL_STATES
#: The failures a later print puts right: a job that failed before it printed, and a print the
#: printer reported failed or aborted, which the next ``run`` prints again unasked
#: (docs/printing.md). Session 48's trial: a cron farm's Failed cases kept every print that
#: failed and was printed again a minute later, each with a Retry that queued a job no run
#: would take. A cancelled job was stopped by a person, and stays theirs to judge. In the
#: order ``jobs`` names them.
PUT_RIGHT_STATES: Final = (JobState.FAILED, JobState.PRINT_ERROR, JobState.ABORTED)
#: Why a superseded job needs nothing done, as ``jobs`` and the dashboard say it.
WHY_SUPERSEDED: Final = ("a later job is printing or printed the same file (or a new export "
                         "of it in its case) with the same recipe")


def superseded_note(later: Job) -> str:
    """A superseded job's note naming the job that put it right (``jobs``, the dashboard)."""
    return f"superseded by job {later.id} ({later.job_key}, {later.state.value})"


def case_member(job: Job) -> str:
    """The job's file as its case knows it: its path in the case folder it was dropped in
    (``upper.stl`` of ``C-2001/upper.stl``, as the hot folder recorded it), its path in the
    inbox when no case folder was recorded, else (a ``run``'s) the file's path. Not its name
    alone: ``C-2001/scan/arch.stl`` and ``C-2001/model/arch.stl`` are two members, and a
    case split over two builds must not have one's print hide the other's failure."""
    place = job.fields.get(HOTFOLDER_FIELD)
    if isinstance(place, Mapping):
        rel, case = place.get("rel"), place.get("case")
        folder = case.get("rel") if isinstance(case, Mapping) else None
        if isinstance(rel, str) and isinstance(folder, str):
            path, root = PurePosixPath(rel), PurePosixPath(folder)
            if path != root and path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        if isinstance(rel, str):
            return rel
    return str(job.source_path)


def _inbox(job: Job) -> str | None:
    """The hot folder's inbox the job was dropped in (None for a ``run``'s): one recipe may
    serve several inboxes (clinics) that number their cases alike, so a case is its inbox's."""
    place = job.fields.get(HOTFOLDER_FIELD)
    inbox = place.get("inbox") if isinstance(place, Mapping) else None
    return inbox if isinstance(inbox, str) else None


def _keys(job: Job) -> tuple[tuple[str | None, ...], ...]:
    """What a later job must share with a failed one to put it right: its recipe and content,
    or its recipe, case (in its inbox) and member (new content: a re-export)."""
    keys: list[tuple[str | None, ...]] = []
    if job.content_hash:
        keys.append(("content", job.recipe, job.content_hash))
    if job.case_id:
        keys.append(("case", job.recipe, _inbox(job), job.case_id, case_member(job)))
    return tuple(keys)


def superseded(store: JobStore, jobs: Iterable[Job]) -> dict[int, Job]:
    """For each failed job among ``jobs`` (:data:`PUT_RIGHT_STATES`) that a later job of its recipe
    and content, or of its recipe, case and member, printed (:data:`SUPERSEDING_STATES`), the
    first such later job, by the failed job's id. Jobs are numbered in the order the store made
    them, so "later" is a larger id. The store is asked once for every digest
    (``find_by_hashes``) and once for every case (``find_by_cases``): once per digest, a page of
    300 failed jobs was 300 round trips to a shared database on every refresh
    (bench/bench_superseded.py)."""
    failed = [job for job in jobs if job.state in PUT_RIGHT_STATES and _keys(job)]
    if not failed:
        return {}
    digests = {job.content_hash for job in failed if job.content_hash}
    cases = {job.case_id for job in failed if job.case_id}
    later = {o.id: o for o in store.find_by_hashes(digests, state=SUPERSEDING_STATES)}
    if cases:
        later.update((o.id, o) for o in store.find_by_cases(cases, state=SUPERSEDING_STATES))
    printed: dict[tuple[str | None, ...], list[Job]] = {}
    for other in sorted(later.values(), key=lambda o: o.id):
        for key in _keys(other):
            printed.setdefault(key, []).append(other)
    found: dict[int, Job] = {}
    for job in failed:
        first = [next((o for o in printed.get(key, ()) if o.id > job.id), None)
                 for key in _keys(job)]
        named = [o for o in first if o is not None]
        if named:
            found[job.id] = min(named, key=lambda o: o.id)
    return found
