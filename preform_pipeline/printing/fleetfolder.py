"""A simulated fleet folder read as the Dashboard would show it: the prints feed without a Web API.

A simulated PreFormServer writes one ``jobs/<job id>.json`` per accepted print, with when the
print starts and ends on the simulator's clock and how it ends (``started_at``, ``ends_at``,
``outcome``, ``outcome_message``; docs/simulator-engine.md). :class:`FleetFolderFeed` answers
the one question the shared verification poller asks of the Web API, a page of the prints feed
(:meth:`list_prints_page`, newest first, every field of a
:class:`~preform_pipeline.cloud.PrintFilter` honoured as the Web API honours it), from those
files, so a rehearsal without Web API credentials verifies its prints by the very same poller
and store writes as a real fleet. Reading a folder costs no requests: the budget never runs out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timezone
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


def _record(job: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A job as the prints feed lists it at ``now`` (the body :class:`PrintRun` reads)."""
    status, message = fleet_job_status(job, now)
    started, ends = _time(job.get("started_at")), _time(job.get("ends_at"))
    settings = job.get("scene_settings")
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
        # The feed names a run's material code, as the scene was set up to print it.
        "material": settings.get("material_code") if isinstance(settings, Mapping) else None,
    }
    if started is not None and ends is not None:
        body["estimated_duration_ms"] = int((ends - started).total_seconds() * 1000)
        if status == "PRINTING":
            body["print_started_at"] = job.get("started_at")
            body["estimated_time_remaining_ms"] = int((ends - now).total_seconds() * 1000)
        elif status not in ("QUEUED",):
            body["print_started_at"] = job.get("started_at")
            body["print_finished_at"] = job.get("ends_at")
    return body


def _machine_type(job: Mapping[str, Any]) -> str | None:
    """The machine type a job was printed on (feed records do not carry it; the job does)."""
    settings = job.get("scene_settings")
    value = settings.get("machine_type") if isinstance(settings, Mapping) else None
    return str(value) if value else None


def _keeps(where: PrintFilter, job: Mapping[str, Any], record: Mapping[str, Any],
           now: datetime) -> bool:
    """Whether ``where`` keeps a job, by the one rule the Web API's fakes apply
    (:meth:`PrintFilter.matches`), on the record as listed."""
    # A file without a creation time counts as created now; a time without a zone is UTC.
    created = _time(job.get("created_at")) or now
    return where.matches({**record, "created_at": created.isoformat()}, _machine_type(job))


def _utc_bounds(where: PrintFilter) -> PrintFilter:
    """``where`` with naive datetime bounds read as UTC, as the folder's own times are (an
    empty printer or material filters nothing: :meth:`PrintFilter.exact`)."""
    return replace(where, date=_utc(where.date), date__gt=_utc(where.date__gt),
                   date__lt=_utc(where.date__lt))


def _utc(bound: datetime | date | None) -> datetime | date | None:
    if isinstance(bound, datetime) and bound.tzinfo is None:
        return bound.replace(tzinfo=timezone.utc)
    return bound


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

    @property
    def clock_skew_s(self) -> float | None:
        """None: the folder's times are this machine's own, nothing to measure."""
        return None

    def list_prints_page(
        self, page: int = 1, per_page: int | None = None, *, where: PrintFilter | None = None,
    ) -> Page[PrintRun]:
        """One page of the folder's prints, newest first, kept by every field of ``where``
        as the Web API keeps them (the status as it is at this moment)."""
        self._pages += 1
        now = self.clock.now()
        wanted = _utc_bounds(where) if where is not None else None
        listed = [(job, _record(job, now)) for job in read_fleet_jobs(self.fleet_dir)]
        kept = [(job, record) for job, record in listed
                if wanted is None or _keeps(wanted, job, record, now)]
        kept.sort(key=lambda pair: (str(pair[0].get("created_at", "")),
                                    str(pair[0].get("job_id"))), reverse=True)
        size = per_page or _PER_PAGE
        start = (page - 1) * size
        items = tuple(PrintRun.from_json(record) for _, record in kept[start:start + size])
        more = start + size < len(kept)
        return Page(items, page, size, len(kept), page + 1 if more else None,
                    page - 1 if page > 1 else None)
