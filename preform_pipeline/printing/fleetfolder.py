"""A simulated fleet folder read as the Dashboard would show it: the prints feed without a Web API.

A simulated PreFormServer writes one ``jobs/<job id>.json`` per accepted print, with when the
print starts and ends on the simulator's clock and how it ends (``started_at``, ``ends_at``,
``outcome``, ``outcome_message``; docs/simulator-engine.md). :class:`FleetFolderFeed` answers
the one question the shared verification poller asks of the Web API, a page of the prints feed
(:meth:`list_prints_page`, newest first, ``date__gt`` honoured), from those files, so a
rehearsal without Web API credentials verifies its prints by the very same poller and store
writes as a real fleet. Reading a folder costs no requests: the budget never runs out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud import BudgetSnapshot, PrintFilter, PrintRun
from preform_pipeline.cloud.models import Page
from preform_pipeline.logging import get_logger

__all__ = [
    "FLEET_FEED_BUDGET",
    "FleetFolderFeed",
    "fleet_job_status",
    "read_fleet_jobs",
]

log = get_logger(__name__)

#: Requests "left" in a folder's hour: reading files spends none, but the poller paces by it.
FLEET_FEED_BUDGET: Final = 1_000_000
_PER_PAGE: Final = 100


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def read_fleet_jobs(fleet_dir: Path) -> list[dict[str, Any]]:
    """Every job file of the folder (a file that cannot be read is logged and left out: the
    simulator writes them atomically, so it is one being replaced right now)."""
    folder = fleet_dir / "jobs"
    if not folder.is_dir():
        return []
    jobs = []
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("fleet_job_unreadable", path=str(path), error=str(exc))
            continue
        if isinstance(data, dict):
            jobs.append(data)
    return jobs


def fleet_job_status(job: Mapping[str, Any], now: datetime) -> tuple[str, str | None]:
    """A job's status at ``now`` and its message: ``QUEUED`` before its start, ``PRINTING``
    until its end, then its recorded outcome; a file without an end, as written."""
    ends = _time(job.get("ends_at"))
    if ends is None:
        return str(job.get("status") or "QUEUED"), None
    if now >= ends:
        message = job.get("outcome_message")
        return str(job.get("outcome") or "FINISHED"), (str(message) if message else None)
    started = _time(job.get("started_at")) or ends
    return ("PRINTING" if now >= started else "QUEUED"), None


def _run(job: Mapping[str, Any], now: datetime) -> PrintRun:
    status, message = fleet_job_status(job, now)
    started, ends = _time(job.get("started_at")), _time(job.get("ends_at"))
    body: dict[str, Any] = {
        "guid": job.get("job_id"),
        "print_job": job.get("job_id"),
        "name": job.get("job_name", ""),
        "printer": job.get("printer", ""),
        "status": status,
        "message": message,
        "created_at": job.get("created_at"),
        "layer_count": job.get("layer_count"),
        "volume_ml": job.get("volume_ml"),
    }
    if started is not None and ends is not None:
        body["estimated_duration_ms"] = int((ends - started).total_seconds() * 1000)
        if status == "PRINTING":
            body["print_started_at"] = job.get("started_at")
            body["estimated_time_remaining_ms"] = int((ends - now).total_seconds() * 1000)
        elif status not in ("QUEUED",):
            body["print_started_at"] = job.get("started_at")
            body["print_finished_at"] = job.get("ends_at")
    return PrintRun.from_json(body)


class FleetFolderFeed:
    """The prints feed of a simulated fleet folder (module docstring); the poller's client."""

    def __init__(self, fleet_dir: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.fleet_dir = fleet_dir
        self.clock = clock
        self.description = f"the fleet folder {fleet_dir}"
        self._pages = 0

    def budget(self) -> BudgetSnapshot:
        return BudgetSnapshot(spent=0, remaining=FLEET_FEED_BUDGET, limit=FLEET_FEED_BUDGET,
                              window_s=3600.0, total=self._pages)

    def list_prints_page(
        self, page: int = 1, per_page: int | None = None, *, where: PrintFilter | None = None,
    ) -> Page[PrintRun]:
        """One page of the folder's prints, newest first (``where.date__gt`` and ``name``
        filter them as the Web API does)."""
        self._pages += 1
        now = self.clock.now()
        since = _bound(where.date__gt) if where is not None else None
        jobs = [
            job for job in read_fleet_jobs(self.fleet_dir)
            if (since is None or (_time(job.get("created_at")) or now) > since)
            and (where is None or not where.name or where.name in str(job.get("job_name", "")))
        ]
        jobs.sort(key=lambda j: (str(j.get("created_at", "")), str(j.get("job_id"))),
                  reverse=True)
        size = per_page or _PER_PAGE
        start = (page - 1) * size
        items = tuple(_run(job, now) for job in jobs[start:start + size])
        more = start + size < len(jobs)
        return Page(items, page, size, len(jobs), page + 1 if more else None,
                    page - 1 if page > 1 else None)


def _bound(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if value is None:
        return None
    # A date bounds whole UTC days.
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc) + timedelta(days=1)
