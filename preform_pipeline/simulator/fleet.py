"""The simulated printer fleet: a state directory shared with the Dashboard simulator.

Layout of the fleet directory (all JSON, UTF-8, written atomically: temp file + ``os.replace``)::

    <fleet_dir>/
      printers.json        {"format": FLEET_FORMAT, "version": 1, "declared": bool,
                            "printers": [printer, ...], "groups": [group, ...]}
      jobs/<job_id>.json   one file per print job (see :func:`FleetState.record_job`)
      outcomes.yaml        optional: prints forced to end in ERROR or ABORTED, in the Dashboard
                           simulator's outcomes format (docs/dashboard-simulator.md)

Every job file records how its print goes on the simulator's clock (each print takes its
estimated time times ``print_time_scale``, one after another per printer): ``started_at``,
``ends_at``, and ``outcome`` (``FINISHED``, ``ERROR``, ``ABORTED``) with ``outcome_message``.
Its status at any moment follows from them (queued before ``started_at``, printing until
``ends_at``, then its outcome), so a reader of the folder alone (no Dashboard, no credentials)
sees each print queued, printing, then ended.

A printer: ``serial``, ``machine_type_id``, ``product_name``, ``ip_address``,
``connection_type``, ``status``, ``firmware_version``, ``ready_to_print_now``,
``is_remote_print_enabled``, ``material_code``, ``tank_id``,
``estimated_print_time_remaining_ms``. A Fleet Control group: ``group_id``, ``queue_id``,
``printers`` (serials), ``queue_paused``. Missing optional fields take the defaults below, so
another tool may write a smaller file. When the directory holds no ``printers.json`` the
default fleet (:data:`DEFAULT_PRINTERS`, :data:`DEFAULT_GROUPS`) is written on first use.

``declared`` is true while the printers are a declared fleet (``--fleet-printers``, the
settings' ``simulator.fleet``): a simulator started without one puts the default printers back
(:meth:`FleetState.use_default`), so a rehearsal never changes what the next default run can
print to. A file without the key (written by hand or by another tool) is the user's own fleet
and is kept as it is.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from preform_pipeline.cloud.primitives import parse_datetime
from preform_pipeline.errors import ConfigError
from preform_pipeline.logging import get_logger
from preform_pipeline.userpath import own_home

from .atomic import atomic_write_bytes
from .cloud.outcomes import Outcome, load_outcomes
from .protocol import Json, SimError

__all__ = [
    "DEFAULT_GROUPS",
    "DEFAULT_PRINTERS",
    "FLEET_FORMAT",
    "JOB_FORMAT",
    "FleetState",
    "SimGroup",
    "SimPrinter",
    "default_fleet_dir",
    "utc_now_iso",
]

log = get_logger(__name__)

FLEET_FORMAT: Final = "preform-pipeline-simulated-fleet"
JOB_FORMAT: Final = "preform-pipeline-simulated-job"
_VERSION: Final = 1


def default_fleet_dir() -> Path:
    """Per-user data directory for fleet state shared by every simulator of this user."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else own_home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = own_home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else own_home() / ".local" / "share"
    return base / "preform-pipeline" / "simulator" / "fleet"


def utc_now_iso() -> str:
    return _iso(datetime.now(timezone.utc))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SimPrinter:
    """One simulated printer as printers.json stores it."""

    serial: str
    machine_type_id: str
    product_name: str
    ip_address: str
    material_code: str
    connection_type: str = "WIFI"
    status: str = "IDLE"
    firmware_version: str = "1.9.0-sim"
    ready_to_print_now: bool = True
    is_remote_print_enabled: bool = True
    tank_id: str = ""
    estimated_print_time_remaining_ms: int = 0

    @classmethod
    def from_json(cls, data: Json) -> SimPrinter:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class SimGroup:
    """A Fleet Control printer group with its print queue."""

    group_id: str
    queue_id: str
    printers: tuple[str, ...] = field(default_factory=tuple)
    queue_paused: bool = False

    @classmethod
    def from_json(cls, data: Json) -> SimGroup:
        return cls(
            group_id=str(data["group_id"]),
            queue_id=str(data["queue_id"]),
            printers=tuple(str(s) for s in data.get("printers", ())),
            queue_paused=bool(data.get("queue_paused", False)),
        )

    def to_json(self) -> Json:
        return {**asdict(self), "printers": list(self.printers)}


# Addresses from TEST-NET-1 (RFC 5737): documentation-only, never a real device.
DEFAULT_PRINTERS: Final = (
    SimPrinter("SimulatedForm4-1", "FORM-4-0", "Form 4", "192.0.2.11", "FLGPGR05"),
    SimPrinter("SimulatedForm4-2", "FORM-4-0", "Form 4", "192.0.2.12", "FLGPBK05"),
    SimPrinter("SimulatedForm4B-1", "FORM-4B-0", "Form 4B", "192.0.2.13", "FLDMGR01"),
    SimPrinter("SimulatedForm4L-1", "FORM-4L-0", "Form 4L", "192.0.2.14", "FLGPGR05"),
    SimPrinter("SimulatedForm3-1", "FORM-3-1", "Form 3+", "192.0.2.15", "FLGPGR04"),
    SimPrinter("SimulatedFuse1-1", "FS30-1-0", "Fuse 1+ 30W", "192.0.2.16", "FLP12G01"),
    # The printers and queues the shipped recipes name, so they rehearse end to end.
    SimPrinter("Form4-CapableClam", "FORM-4-0", "Form 4", "192.0.2.21", "FLGPGR05"),
    SimPrinter("Form4-DentalLab01", "FORM-4-0", "Form 4", "192.0.2.22", "FLDMGR01"),
    SimPrinter("Form4L-LargeParts", "FORM-4L-0", "Form 4L", "192.168.10.41", "FLTO2K02"),
    SimPrinter("Fuse1-Nylon12", "FS30-1-0", "Fuse 1+ 30W", "192.0.2.24", "FLP12G01"),
)


DEFAULT_GROUPS: Final = (
    SimGroup(
        "SimulatedGroup-Form4", "SimulatedQueue-Form4", ("SimulatedForm4-1", "SimulatedForm4-2")
    ),
    SimGroup(
        "6f1c2d3e-0000-4000-8000-00000000d3a1", "6f1c2d3e-0000-4000-8000-00000000d3a2",
        ("Form4-DentalLab01", "Form4-CapableClam"),
    ),
    SimGroup(
        "6f1c2d3e-0000-4000-8000-0000000f05e1", "6f1c2d3e-0000-4000-8000-0000000f05e2",
        ("Fuse1-Nylon12",),
    ),
)


@dataclass(frozen=True)
class _FleetFile:
    """printers.json as read: its printers, groups, and whether they are a declared fleet."""

    printers: tuple[SimPrinter, ...]
    groups: tuple[SimGroup, ...]
    declared: bool


class FleetState:
    """Reads and writes the fleet directory. Every read goes to disk, so changes another
    process (the Dashboard simulator) makes are seen at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    @property
    def printers_path(self) -> Path:
        return self.root / "printers.json"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def outcomes_path(self) -> Path:
        return self.root / "outcomes.yaml"

    def _write_json(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(path, text.encode("utf-8"))

    def _write_fleet(
        self, printers: Sequence[SimPrinter], groups: Sequence[SimGroup], *, declared: bool
    ) -> None:
        """Write printers.json; the caller holds the lock."""
        self._write_json(
            self.printers_path,
            {
                "format": FLEET_FORMAT,
                "version": _VERSION,
                "declared": declared,
                "printers": [asdict(p) for p in printers],
                "groups": [g.to_json() for g in groups],
            },
        )

    def _read(self) -> _FleetFile:
        with self._lock:
            if not self.printers_path.is_file():
                self._write_fleet(DEFAULT_PRINTERS, DEFAULT_GROUPS, declared=False)
                log.info("fleet_created", fleet_dir=str(self.root), printers=len(DEFAULT_PRINTERS))
            try:
                data = json.loads(self.printers_path.read_text(encoding="utf-8"))
                return _FleetFile(
                    tuple(SimPrinter.from_json(p) for p in data.get("printers", [])),
                    tuple(SimGroup.from_json(g) for g in data.get("groups", [])),
                    data.get("declared") is True,
                )
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                raise SimError(
                    500, "FLEET_STATE_UNREADABLE", f"{self.printers_path} is unreadable: {exc}"
                ) from exc

    def is_declared(self) -> bool:
        """Whether the printers are a declared fleet (not the default, nor the user's own)."""
        return self._read().declared

    def printers(self) -> list[SimPrinter]:
        return list(self._read().printers)

    def groups(self) -> list[SimGroup]:
        return list(self._read().groups)

    def find(self, name: str) -> SimPrinter | SimGroup | None:
        """A printer by serial or IP address, or a group by group id or queue id."""
        fleet = self._read()
        for printer in fleet.printers:
            if name in (printer.serial, printer.ip_address):
                return printer
        for group in fleet.groups:
            if name in (group.group_id, group.queue_id):
                return group
        return None

    def update_printer(self, serial: str, **changes: Any) -> SimPrinter:
        fleet = self._read()
        printers = list(fleet.printers)
        with self._lock:
            updated = None
            for i, printer in enumerate(printers):
                if printer.serial == serial:
                    updated = printers[i] = replace(printer, **changes)
            if updated is None:
                raise SimError(400, "PRINTER_NOT_FOUND", f"no simulated printer {serial!r}")
            self._write_fleet(printers, fleet.groups, declared=fleet.declared)
        return updated

    def declare(
        self, printers: tuple[SimPrinter, ...], groups: tuple[SimGroup, ...] | None = None
    ) -> None:
        """Replace the printers (and, when given, the groups) with the declared fleet
        (``simulator.fleet`` in the settings).

        Groups not given are kept; recorded jobs too (they are the fleet's history). A printer
        that is not declared is gone: a print to it answers PRINTER_NOT_FOUND, as on a real
        network.
        """
        kept = self._read().groups
        with self._lock:
            self._write_fleet(printers, kept if groups is None else groups, declared=True)
        log.info("fleet_declared", fleet_dir=str(self.root), printers=len(printers))

    def use_default(self) -> None:
        """Put the default printers back when a declared fleet left its own (a simulator
        started without one): a rehearsal's printers must not stay what the next default run
        prints to. Groups and recorded jobs (the print history the Dashboard simulator shows)
        are kept, as :meth:`declare` keeps them; a fleet of the user's own is left alone."""
        fleet = self._read()
        if not fleet.declared:
            return
        with self._lock:
            self._write_fleet(DEFAULT_PRINTERS, fleet.groups, declared=False)
        log.info(
            "fleet_default_restored", fleet_dir=str(self.root),
            replaced=[p.serial for p in fleet.printers], printers=len(DEFAULT_PRINTERS),
        )

    def busy_until(self, scale: float) -> dict[str, datetime]:
        """When each printer finishes the prints sent to it: each job takes its estimated print
        time times ``scale``, one after another per printer (0: printers are free at once); a
        job that recorded its end (``ends_at``: an error or abort ends it early) ends then."""
        ends: dict[str, datetime] = {}
        if scale <= 0:
            return ends
        for job in self.jobs():
            printer = str(job.get("printer", ""))
            if job.get("target_kind", "printer") != "printer" or not printer:
                continue
            # Read as the Dashboard simulator and the fleet folder feed read it
            # (parse_datetime): a time without a zone is UTC, anything else not a time.
            recorded = parse_datetime(job.get("ends_at"))
            if recorded is not None:
                ends[printer] = max(recorded, ends.get(printer, recorded))
                continue
            created = parse_datetime(job.get("created_at"))
            if created is None:
                continue
            try:
                took = float(job.get("estimated_print_time_s") or 0.0) * scale
            except (ValueError, TypeError):
                continue
            start = max(created, ends.get(printer, created))
            ends[printer] = start + timedelta(seconds=took)
        return ends

    def schedule(self, job: Json, scale: float) -> Json:
        """``job`` with when its print starts and ends on the simulator's clock and how it
        ends (the fleet's ``outcomes.yaml``, else FINISHED): after the prints already sent to
        its printer, taking its estimated time times ``scale`` (0: it ends as it starts)."""
        created = parse_datetime(job.get("created_at")) or datetime.now(timezone.utc)
        start = created
        if job.get("target_kind", "printer") == "printer":
            start = max(created, self.busy_until(scale).get(str(job.get("printer")), created))
        outcome = Outcome()
        if self.outcomes_path.is_file():  # the Dashboard simulator's format: one for both
            try:
                plan = load_outcomes(self.outcomes_path)
            except ConfigError as exc:
                raise SimError(500, "FLEET_OUTCOMES_UNREADABLE", str(exc)) from exc
            outcome = plan.outcome_for(str(job["job_id"]), str(job.get("job_name", "")))
        took = max(0.0, float(job.get("estimated_print_time_s") or 0.0) * max(scale, 0.0))
        ends = start + timedelta(seconds=took * outcome.at)
        return {**job, "started_at": _iso(start), "ends_at": _iso(ends),
                "outcome": outcome.status, "outcome_message": outcome.message,
                "print_time_scale": max(scale, 0.0)}

    def record_job(self, job: Json) -> Path:
        """Write ``jobs/<job_id>.json``; ``job`` must carry ``job_id``."""
        path = self.jobs_dir / f"{job['job_id']}.json"
        self._write_json(path, {"format": JOB_FORMAT, "version": _VERSION, **job})
        log.info("job_recorded", job_id=job["job_id"], printer=job.get("printer"))
        return path

    def jobs(self) -> list[Json]:
        """Every recorded job, oldest first."""
        if not self.jobs_dir.is_dir():
            return []
        found = []
        for path in self.jobs_dir.glob("*.json"):
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # a job file another tool is replacing right now
        return sorted(found, key=lambda j: (str(j.get("created_at", "")), str(j.get("job_id"))))
