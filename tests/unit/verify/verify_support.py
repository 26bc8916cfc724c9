"""Helpers for the verification tests: print records shaped as the feed lists them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from preform_pipeline.simulator.cloud.testing import sample_print_run
from preform_pipeline.store import JobState, JobStore

__all__ = ["minutes", "newest_first", "prepared_build", "run_record"]


def prepared_build(store: JobStore, *then: JobState, recipe: str = "r", priority: int = 0) -> int:
    """A build of one job its run recorded as prepared, then moved through ``then``."""
    job = store.create_job(recipe=recipe, source_path="a.stl", state=JobState.PROCESSING,
                           priority=priority)
    build = store.create_build(recipe=recipe, job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED, *then):
        store.transition_build(build.id, state, "test")
    return build.id


def run_record(
    name: str,
    *,
    status: str,
    created: datetime,
    guid: str | None = None,
    message: str | None = None,
    remaining_s: float | None = None,
    printer: str = "Form4-SweetMatcha",
) -> dict[str, Any]:
    """A print run as the feed lists it, with the fields verification reads."""
    return sample_print_run(
        guid=guid or f"guid-{name}",
        print_job=guid or f"guid-{name}",
        name=name,
        status=status,
        created=created,
        message=message,
        printer=printer,
        estimated_time_remaining_ms=None if remaining_s is None else int(remaining_s * 1000),
    )


def newest_first(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(runs, key=lambda r: r["created_at"], reverse=True)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
