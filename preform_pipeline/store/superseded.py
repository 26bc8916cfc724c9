"""Failed jobs that a later job put right: the same recipe, the same file content, printed.

A ``run`` killed mid-way leaves its jobs ``failed`` ("its run died before printing it"), and
the next run makes new jobs for the same models; ``jobs retry`` is not how they come back.
Those failures are true history, but not something a person has to act on: a later job of the
same recipe and content (the file's digest, ``content_hash``) printed it (``print_sent``,
``verifying``, ``finished``) or, for a recipe without a print step, prepared it (``done``).
Such a failed job is *superseded* by the first of those later jobs. Nothing is written: the
rule is read from the store each time, so a job that is superseded says so from the moment
the later one succeeds, in any store and after any upgrade.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from preform_pipeline.store.model import FINAL_STATES, PRINT_PENDING_STATES, Job, JobState
from preform_pipeline.store.protocol import JobStore

__all__ = ["SUPERSEDING_STATES", "WHY_SUPERSEDED", "superseded", "superseded_note"]

#: A later job in one of these printed the content (or prepared it, without a print step).
SUPERSEDING_STATES: Final = PRINT_PENDING_STATES | FINAL_STATES
#: Why a superseded job needs nothing done, as ``jobs`` and the dashboard say it.
WHY_SUPERSEDED: Final = "a later job printed the same file with the same recipe"


def superseded_note(later: Job) -> str:
    """A superseded job's note naming the job that put it right (``jobs``, the dashboard)."""
    return f"superseded by job {later.id} ({later.job_key}, {later.state.value})"


def superseded(store: JobStore, jobs: Iterable[Job]) -> dict[int, Job]:
    """For each failed job among ``jobs`` that a later job of its recipe and content printed
    (:data:`SUPERSEDING_STATES`), the first such later job, by the failed job's id. Jobs are
    numbered in the order the store made them, so "later" is a larger id. The store is asked
    once for every digest (``find_by_hashes``): once per digest, a page of 300 failed jobs
    was 300 round trips to a shared database on every refresh (bench/bench_superseded.py)."""
    failed: dict[str, list[Job]] = {}
    for job in jobs:
        if job.state is JobState.FAILED and job.content_hash:
            failed.setdefault(job.content_hash, []).append(job)
    if not failed:
        return {}
    printed: dict[tuple[str | None, str], list[Job]] = {}
    for other in store.find_by_hashes(failed, state=SUPERSEDING_STATES):  # creation order
        printed.setdefault((other.content_hash, other.recipe), []).append(other)
    found: dict[int, Job] = {}
    for digest, same in failed.items():
        for job in same:
            later = next((o for o in printed.get((digest, job.recipe), ()) if o.id > job.id),
                         None)
            if later is not None:
                found[job.id] = later
    return found
