"""When each printed job runs, and what state it is in at a given moment: pure functions of time.

The Dashboard simulator keeps no state of its own. Every answer is computed from the job files
the PreFormServer simulator wrote, the fleet's printers, the outcomes plan and the moment
asked about, so two requests at the same ``now`` see the same fleet and a test moves the fleet
forward by choosing ``now``, never by sleeping.

Scheduling (:func:`schedule`) goes through the jobs oldest first, so a job never changes the
fate of one sent before it:

* a printer prints one job at a time; a job sent to a printer starts when it was sent or when
  the printer's previous job ends, whichever is later (``print_now: false`` jobs, which a
  person would start on the printer, start the same way so automation can run unattended);
* a job sent to a Fleet Control queue waits in the queue until a member printer of its
  machine type is free, then runs there (the earliest free printer, the first listed on a
  tie); a paused queue keeps its jobs;
* a printer that does not accept jobs (``ready_to_print_now: false``) or is offline starts
  nothing; a print running when its printer goes offline freezes as last reported, and the
  printer starts nothing after it.

A run lasts ``estimated_print_time_s x time_scale`` seconds: ``PREPRINT`` for the machine's
preprint time (at most half the print), then ``PRINTING`` layer by layer, then ``FINISHED``,
unless its outcome ends it earlier as ``ERROR`` or ``ABORTED`` at a fraction of its duration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from preform_pipeline.cloud.primitives import parse_datetime

from .outcomes import ABORTED, ERROR, FINISHED, Outcome, OutcomePlan

__all__ = [
    "EVENT_LABELS",
    "PREPRINT",
    "PRINTER_OFFLINE",
    "PRINTING",
    "PRINT_ABORTED",
    "PRINT_ERROR",
    "PRINT_FINISHED",
    "PRINT_STARTED",
    "QUEUED",
    "Job",
    "JobModel",
    "PrinterAvailability",
    "QueuedJob",
    "RunState",
    "Schedule",
    "ScheduledRun",
    "Transition",
    "schedule",
]

QUEUED: Final = "QUEUED"
PREPRINT: Final = "PREPRINT"
PRINTING: Final = "PRINTING"

PRINT_STARTED: Final = "PRINT_STARTED"
PRINT_FINISHED: Final = "PRINT_FINISHED"
PRINT_ERROR: Final = "PRINT_ERROR"
PRINT_ABORTED: Final = "PRINT_ABORTED"
PRINTER_OFFLINE: Final = "PRINTER_OFFLINE"

#: Event type -> the label the events feed shows.
EVENT_LABELS: Final[Mapping[str, str]] = {
    PRINT_STARTED: "Print started",
    PRINT_FINISHED: "Print finished",
    PRINT_ERROR: "Print error",
    PRINT_ABORTED: "Print aborted",
    PRINTER_OFFLINE: "Printer offline",
}
_END_EVENTS: Final = {FINISHED: PRINT_FINISHED, ERROR: PRINT_ERROR, ABORTED: PRINT_ABORTED}

#: Before any job: every printer is free from the beginning of time.
_DAWN: Final = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class JobModel:
    id: str
    name: str
    raw_mesh_hash: str | None


@dataclass(frozen=True)
class Job:
    """A job file of the fleet directory (``jobs/<job_id>.json``), the fields the Dashboard
    needs."""

    job_id: str
    name: str
    target: str
    target_kind: str
    created_at: datetime
    scene_id: str
    machine_type: str
    material_code: str
    #: A number, or ``"ADAPTIVE"``.
    layer_thickness: float | str
    print_setting: str
    layer_count: int
    volume_ml: float
    estimated_print_time_s: float
    models: tuple[JobModel, ...] = ()
    #: How the PreFormServer simulator recorded the print to end (the fleet's outcomes file):
    #: its status and message, and the fraction of the print after which it ends.
    recorded: Outcome | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        """Read a job file's content; ``ValueError`` names the first field that is wrong."""
        settings = data.get("scene_settings")
        if not isinstance(settings, Mapping):
            raise ValueError("scene_settings is missing")
        created = parse_datetime(data.get("created_at"))
        if created is None:
            raise ValueError(f"created_at {data.get('created_at')!r} is not an ISO 8601 time")
        thickness = settings.get("layer_thickness_mm")
        if not isinstance(thickness, (int, float, str)) or isinstance(thickness, bool):
            raise ValueError(f"layer_thickness_mm {thickness!r} is not a number")
        models = data.get("models") or []
        if not isinstance(models, list):
            raise ValueError("models is not a list")
        return cls(
            job_id=_required_text(data, "job_id"),
            name=str(data.get("job_name") or ""),
            target=_required_text(data, "printer"),
            target_kind=str(data.get("target_kind") or "printer"),
            created_at=created,
            scene_id=str(data.get("scene_id") or ""),
            machine_type=_required_text(settings, "machine_type"),
            material_code=_required_text(settings, "material_code"),
            layer_thickness=thickness if isinstance(thickness, str) else float(thickness),
            print_setting=str(settings.get("print_setting") or "DEFAULT"),
            layer_count=int(_number(data, "layer_count")),
            volume_ml=float(_number(data, "volume_ml")),
            estimated_print_time_s=float(_number(data, "estimated_print_time_s")),
            models=tuple(
                JobModel(
                    id=str(m.get("id", "")),
                    name=str(m.get("name", "")),
                    raw_mesh_hash=m.get("raw_mesh_hash")
                    if isinstance(m.get("raw_mesh_hash"), str)
                    else None,
                )
                for m in models
                if isinstance(m, Mapping)
            ),
            recorded=_recorded_outcome(data),
        )


#: Job files give times to the millisecond.
_RECORDED_TO_S: Final = 0.001


def _recorded_outcome(data: Mapping[str, Any]) -> Outcome | None:
    """The end the job file records when it is not a plain finish at the print's full length:
    an error or abort, or a finish recorded before then (a print ended early: by a person
    rehearsing, or a test, rewriting ``ends_at`` as the printer would on finishing), which
    the PreFormServer simulator's fleet folder honours too. None: a finish at full length, or
    a file written before outcomes were recorded."""
    status = data.get("outcome")
    if status == FINISHED:
        ended = _recorded_end(data)
        return None if ended >= 1.0 else Outcome(status=FINISHED, at=ended)
    if status not in (ERROR, ABORTED):
        return None
    message = data.get("outcome_message")
    return Outcome(status=str(status), at=_recorded_end(data),
                   message=str(message) if message else None)


def _recorded_end(data: Mapping[str, Any]) -> float:
    """The fraction of its print after which the job file records it to end (1: its full
    length, or a file that does not say)."""
    started, ends = parse_datetime(data.get("started_at")), parse_datetime(data.get("ends_at"))
    took = float(data.get("estimated_print_time_s") or 0.0)
    at = 1.0
    if started is not None and ends is not None and took > 0:
        # The recorded span is on the simulator's clock; as a fraction it holds on any scale.
        scale = data.get("print_time_scale")
        if isinstance(scale, (int, float)) and scale > 0:
            full, span = took * float(scale), (ends - started).total_seconds()
            # Times are written to the millisecond: a span that short of full is the full one.
            at = 1.0 if full - span <= _RECORDED_TO_S else max(0.0, span / full)
    return at


def _required_text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing or not a string")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if value is None:
        raise ValueError(f"{key} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{key} {value!r} is not a number >= 0")
    return float(value)


@dataclass(frozen=True)
class PrinterAvailability:
    """What scheduling needs to know of a printer."""

    serial: str
    machine_type_id: str
    accepts_jobs: bool = True
    #: From this moment on the printer reports nothing and starts nothing.
    offline_at: datetime | None = None

    def online_at(self, when: datetime) -> bool:
        return self.offline_at is None or when < self.offline_at


@dataclass(frozen=True)
class RunState:
    """A print run as its printer reports it at one moment."""

    status: str
    started_at: datetime | None
    finished_at: datetime | None
    currently_printing_layer: int
    elapsed_s: float
    remaining_s: float
    message: str | None
    #: The printer went offline: what is shown is its last report.
    frozen: bool

    @property
    def active(self) -> bool:
        return self.status in (PREPRINT, PRINTING)

    @property
    def started(self) -> bool:
        return self.started_at is not None


@dataclass(frozen=True)
class Transition:
    """A moment a run's printer reported a change: an event of the events feed."""

    at: datetime
    type: str


@dataclass(frozen=True)
class ScheduledRun:
    """One job on one printer: when it starts (None: never), how long it takes, how it ends."""

    job: Job
    printer: str
    start: datetime | None
    preprint_s: float
    duration_s: float
    outcome: Outcome
    offline_at: datetime | None = None
    #: The Fleet Control group whose queue the job came from, if any.
    queue_group: str | None = None

    @property
    def visible_from(self) -> datetime | None:
        """A queue's job becomes a print run when a printer takes it; a printer's at once."""
        return self.start if self.queue_group is not None else self.job.created_at

    @property
    def natural_end(self) -> datetime | None:
        return None if self.start is None else self.start + timedelta(seconds=self.duration_s)

    @property
    def stop(self) -> datetime | None:
        """When the run ends: at its natural end, or where its outcome cuts it short."""
        if self.start is None:
            return None
        return self.start + timedelta(seconds=self.duration_s * self.outcome.at)

    @property
    def ends_reported(self) -> bool:
        """The printer is still online when the run ends, so the end is reported."""
        stop = self.stop
        return stop is not None and (self.offline_at is None or stop < self.offline_at)

    @property
    def printer_free_at(self) -> datetime | None:
        """When the printer can start its next job (None: never, it went offline)."""
        return self.stop if self.ends_reported else None

    def layer_at(self, when: datetime) -> int:
        if self.start is None:
            return 0
        printing_starts = self.start + timedelta(seconds=self.preprint_s)
        if when < printing_starts:
            return 0
        printing_s = self.duration_s - self.preprint_s
        if printing_s <= 0:
            return self.job.layer_count
        fraction = (when - printing_starts).total_seconds() / printing_s
        return min(self.job.layer_count, math.floor(fraction * self.job.layer_count) + 1)

    def state(self, now: datetime) -> RunState:
        """What the printer reports about this run at ``now``."""
        if self.start is None or now < self.start:
            return RunState(QUEUED, None, None, 0, 0.0, self.duration_s, None, False)
        frozen = self.offline_at is not None and now >= self.offline_at
        seen = min(now, self.offline_at) if self.offline_at is not None else now
        stop = self.stop
        end = self.natural_end
        assert stop is not None and end is not None
        if self.ends_reported and stop <= seen:
            final = self.outcome.status
            layer = self.job.layer_count if final == FINISHED else self.layer_at(stop)
            elapsed = (stop - self.start).total_seconds()
            return RunState(
                final, self.start, stop, layer, elapsed, 0.0, self.outcome.message, frozen
            )
        in_preprint = seen < self.start + timedelta(seconds=self.preprint_s)
        return RunState(
            PREPRINT if in_preprint else PRINTING,
            self.start,
            None,
            self.layer_at(seen),
            (seen - self.start).total_seconds(),
            max(0.0, (end - seen).total_seconds()),
            None,
            frozen,
        )

    def transitions(self) -> list[Transition]:
        """Every change the printer reports about this run, in order (at any time)."""
        if self.start is None:
            return []
        found = [Transition(self.start, PRINT_STARTED)]
        stop = self.stop
        assert stop is not None
        if self.ends_reported:
            found.append(Transition(stop, _END_EVENTS[self.outcome.status]))
        elif self.offline_at is not None:
            found.append(Transition(self.offline_at, PRINTER_OFFLINE))
        return found


@dataclass(frozen=True)
class QueuedJob:
    """A job sent to a Fleet Control queue: in the queue from its creation until ``until``
    (the moment a printer takes it; None: it stays)."""

    job: Job
    group_id: str
    until: datetime | None

    def waiting_at(self, now: datetime) -> bool:
        return self.job.created_at <= now and (self.until is None or now < self.until)


@dataclass(frozen=True)
class Schedule:
    runs: tuple[ScheduledRun, ...]
    queued: tuple[QueuedJob, ...]


@dataclass(frozen=True)
class _Group:
    group_id: str
    queue_id: str
    printers: tuple[str, ...]
    paused: bool


def _outcome(plan: OutcomePlan, job: Job) -> Outcome:
    outcome = plan.outcome_for(job.job_id, job.name)
    if outcome.status == FINISHED and job.recorded is not None:
        return job.recorded
    return outcome


def schedule(
    jobs: Iterable[Job],
    printers: Sequence[PrinterAvailability],
    groups: Iterable[Any],
    plan: OutcomePlan,
    *,
    time_scale: float,
    preprint_s: Callable[[str], float],
) -> Schedule:
    """Place every job on a printer and in time (see the module docstring for the rules).

    ``groups`` are Fleet Control groups with ``group_id``, ``queue_id``, ``printers`` and
    ``queue_paused`` (``SimGroup``); ``preprint_s`` gives a machine type's preprint seconds at
    full scale.
    """
    by_serial = {p.serial: p for p in printers}
    by_group: dict[str, _Group] = {}
    for g in groups:
        entry = _Group(g.group_id, g.queue_id, tuple(g.printers), bool(g.queue_paused))
        by_group[g.group_id] = by_group[g.queue_id] = entry
    free: dict[str, datetime | None] = {p.serial: _DAWN for p in printers}
    runs: list[ScheduledRun] = []
    queued: list[QueuedJob] = []

    def start_on(serial: str, job: Job) -> datetime | None:
        printer = by_serial.get(serial)
        ready_from = free.get(serial)
        if printer is None or not printer.accepts_jobs or ready_from is None:
            return None
        begins = max(job.created_at, ready_from)
        return begins if printer.online_at(begins) else None

    def place(job: Job, serial: str, start: datetime | None, group: str | None) -> None:
        total = job.estimated_print_time_s * time_scale
        printer = by_serial.get(serial)
        run = ScheduledRun(
            job=job,
            printer=serial,
            start=start,
            preprint_s=min(preprint_s(job.machine_type) * time_scale, total / 2),
            duration_s=total,
            # The Dashboard's own outcomes file first; else what the fleet folder recorded.
            outcome=_outcome(plan, job),
            offline_at=None if printer is None else printer.offline_at,
            queue_group=group,
        )
        if start is not None:
            free[serial] = run.printer_free_at
        runs.append(run)

    for job in sorted(jobs, key=lambda j: (j.created_at, j.job_id)):
        if job.target_kind != "group":
            place(job, job.target, start_on(job.target, job), None)
            continue
        group = by_group.get(job.target)
        if group is None:
            queued.append(QueuedJob(job, job.target, None))
            continue
        options = []
        if not group.paused:
            for index, serial in enumerate(group.printers):
                printer = by_serial.get(serial)
                if printer is None or printer.machine_type_id != job.machine_type:
                    continue
                begins = start_on(serial, job)
                if begins is not None:
                    options.append((begins, index, serial))
        if not options:
            queued.append(QueuedJob(job, group.group_id, None))
            continue
        begins, _, serial = min(options)
        queued.append(QueuedJob(job, group.group_id, begins))
        place(job, serial, begins, group.group_id)
    return Schedule(tuple(runs), tuple(queued))
