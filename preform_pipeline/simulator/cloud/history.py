"""Each simulated printer's past: one finished print from before the Dashboard simulator started.

A production printer has almost always printed before, and the Web API contract makes a
printer's ``printer_status.current_print_run`` required and not nullable (``allOf
MyPrintRunReadOnly``); Formlabs' generated Web API client refuses a ``null`` there, so a fleet
of never-printed printers breaks ``printers_list`` and ``printers_retrieve`` until each has
printed. So every printer starts with a history: one past print run, ``FINISHED`` some hours to
days before the simulator (or the fleet's oldest job) started, which is its current print run
until it prints again.

The past run is an ordinary :class:`~.timeline.ScheduledRun`: the fleet view lists it in the
prints feed, reports its start and finish in the events feed and counts it in the tank and
cartridge like any other print, so every view of the fleet agrees. Everything about it (name,
guid, times, size) is derived from the printer's serial and the anchor time, so two
snapshots, and two runs of the simulator started at the same moment, show the same past.

``--no-print-history`` (``print_history=False``) leaves the printers never-printed: their
``current_print_run`` is then ``null``, as the seed document allows for a brand-new printer.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from .outcomes import Outcome
from .timeline import Job, JobModel, ScheduledRun

__all__ = ["PastPrinter", "past_runs"]

#: Names a print shop gives its .form files; one is chosen per printer from its serial.
_PART_NAMES: Final = (
    "Bracket_v3",
    "Gear_Housing",
    "Dental_Model_Upper",
    "Enclosure_Lid",
    "Calibration_Matrix",
    "Snap_Fit_Clip",
    "Hinge_Assembly",
    "Drone_Arm_Mount",
)
#: How long before the anchor the past print finished: 2 hours to 3 days.
_FINISHED_BEFORE_H: Final = (2, 72)
_LAYERS: Final = (300, 1500)
_VOLUME_ML: Final = (8, 150)
#: Seconds per layer of the past print (its duration follows from its layers).
_LAYER_S: Final = 9.0
#: The job was sent this long before it started printing.
_SENT_BEFORE: Final = timedelta(minutes=3)
_SLA_LAYER_MM: Final = 0.1
_SLS_LAYER_MM: Final = 0.11
_FINISHED: Final = Outcome()


@dataclass(frozen=True)
class PastPrinter:
    """What the past print of a printer needs to know of it."""

    serial: str
    machine_type_id: str
    material_code: str
    technology: str


def past_runs(
    printers: Iterable[PastPrinter],
    *,
    before: datetime,
    namespace: uuid.UUID,
    preprint_s: Callable[[str], float],
) -> tuple[ScheduledRun, ...]:
    """One finished past run per printer, each ending hours to days before ``before``.

    ``before`` is the earliest moment the fleet knows of (the simulator's start, or its oldest
    job if that is older), so a past run never overlaps a print the fleet directory records.
    Durations are real ones, not scaled by ``time_scale``: the past happened at full speed.
    """
    return tuple(_past_run(p, before, namespace, preprint_s) for p in printers)


def _past_run(
    printer: PastPrinter,
    before: datetime,
    namespace: uuid.UUID,
    preprint_s: Callable[[str], float],
) -> ScheduledRun:
    pick = _Picker(printer.serial)
    guid = str(uuid.uuid5(namespace, f"history:{printer.serial}"))
    name = _PART_NAMES[pick.within(0, len(_PART_NAMES) - 1)]
    layers = pick.within(*_LAYERS)
    preprint = preprint_s(printer.machine_type_id)
    duration = preprint + layers * _LAYER_S
    hours, minutes = pick.within(*_FINISHED_BEFORE_H), pick.within(0, 59)
    finished = before - timedelta(hours=hours, minutes=minutes)
    start = finished - timedelta(seconds=duration)
    job = Job(
        job_id=guid,
        name=name,
        target=printer.serial,
        target_kind="printer",
        created_at=start - _SENT_BEFORE,
        scene_id=str(uuid.uuid5(namespace, f"history-scene:{printer.serial}")),
        machine_type=printer.machine_type_id,
        material_code=printer.material_code,
        layer_thickness=_SLS_LAYER_MM if printer.technology == "SLS" else _SLA_LAYER_MM,
        print_setting="DEFAULT",
        layer_count=layers,
        volume_ml=float(pick.within(*_VOLUME_ML)),
        estimated_print_time_s=duration,
        models=(JobModel(id="1", name=name, raw_mesh_hash=None),),
    )
    return ScheduledRun(
        job=job,
        printer=printer.serial,
        start=start,
        preprint_s=preprint,
        duration_s=duration,
        outcome=_FINISHED,
    )


class _Picker:
    """Whole numbers drawn from a serial's hash, one after another: stable across runs."""

    def __init__(self, serial: str) -> None:
        self._digest = hashlib.sha256(f"history:{serial}".encode()).digest()
        self._at = 0

    def within(self, low: int, high: int) -> int:
        chunk = self._digest[self._at : self._at + 4]
        self._at += 4
        return low + int.from_bytes(chunk, "big") % (high - low + 1)
