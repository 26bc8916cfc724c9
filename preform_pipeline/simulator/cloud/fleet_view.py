"""The Dashboard's view of the fleet directory: printers, print runs, consumables, events, queues.

The PreFormServer simulator writes the fleet directory (``printers.json`` and one
``jobs/<job_id>.json`` per print; see ``docs/simulator-engine.md``). :class:`FleetView` reads
it and answers "what does the Dashboard show at ``now``?" as Web API records
(:mod:`.records`), with every time-dependent part computed by :mod:`.timeline`:

* each job is a print run named as the job was printed (``name``), whose ``guid`` and
  ``print_job`` are the job id the print answer returned;
* runs move ``QUEUED`` → ``PREPRINT`` → ``PRINTING`` → ``FINISHED`` (or ``ERROR`` /
  ``ABORTED`` as the outcomes plan says) on the clock scaled by ``time_scale``;
* every transition is an event (``PRINT_STARTED``, ``PRINT_FINISHED``, ``PRINT_ERROR``,
  ``PRINT_ABORTED``, ``PRINTER_OFFLINE``) carrying the run as it was at that moment;
* printers report their status (``IDLE``, ``PRINTING``, ``OFFLINE``), loaded material,
  readiness, current and previous print; tanks and cartridges count what was printed;
* every printer has printed once before the simulator started (:mod:`.history`), so its
  ``current_print_run`` is never null, as the contract requires, unless ``print_history``
  is off.

Nothing is written back: the fleet directory stays the PreFormServer simulator's. Groups a
client changed through the Web API are the one exception: they live in the Dashboard's own
``dashboard-groups.json`` beside it (:mod:`.groups`), which then decides every printer's group.
Times in records are wall-clock times; durations (``*_duration_ms``,
``estimated_time_remaining_ms``) are on the same scaled clock, so ``print_started_at +
estimated_duration_ms`` is when the run ends.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Protocol

from preform_pipeline.catalogue import ADAPTIVE, DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.logging import get_logger
from preform_pipeline.simulator.estimate_rules import (
    ADAPTIVE_AVERAGE_LAYER_MM,
    SLA_PREPRINT_S,
    SLS_PREPRINT_S,
)
from preform_pipeline.simulator.fleet import FleetState, SimGroup, SimPrinter

from . import records
from .groups import GROUP_NAME_MAX, GroupTable
from .history import PastPrinter, past_runs
from .outcomes import OutcomePlan
from .records import Record
from .timeline import (
    EVENT_LABELS,
    Job,
    PrinterAvailability,
    QueuedJob,
    RunState,
    Schedule,
    ScheduledRun,
    schedule,
)

__all__ = [
    "DEFAULT_GROUP_NAME",
    "DEFAULT_TIME_SCALE",
    "SIM_EPOCH",
    "SIM_USER",
    "SIM_USER_EMAIL",
    "SIM_USERNAME",
    "FleetSnapshot",
    "FleetView",
    "JobReader",
    "OutcomeSource",
    "group_uuid",
]

log = get_logger(__name__)

#: Real seconds per simulated second of printing (1.0: prints take as long as estimated).
DEFAULT_TIME_SCALE: Final = 1.0
#: Manufacture and first-use date of simulated consumables and groups: plainly simulated.
SIM_EPOCH: Final = datetime(2025, 1, 1, tzinfo=timezone.utc)
SIM_USERNAME: Final = "simulated-user"
SIM_USER_EMAIL: Final = "simulated-user@example.com"
SIM_USER: Final = records.basic_user(1, SIM_USERNAME, "Simulated", "User", SIM_USER_EMAIL)
#: Printers outside every Fleet Control group belong to the account's own group.
DEFAULT_GROUP_NAME: Final = "Simulated printers"
_DEFAULT_GROUP_KEY: Final = "__account__"
_OFFLINE: Final = "OFFLINE"
_CARTRIDGE_ML: Final = 1000.0
# Thumbnails are not served; the reserved .invalid domain says so to anyone who follows one.
_THUMBNAILS: Final = "https://thumbnails.preform-pipeline.invalid"
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://preform-pipeline.invalid/simulator")


def group_uuid(group_id: str) -> str:
    """The Dashboard id (a UUID, as the contract has it) of a fleet group, stable across runs."""
    return str(uuid.uuid5(_NAMESPACE, f"group:{group_id}"))


def _event_id(guid: str, kind: str) -> int:
    # Stable whatever else happens in the fleet; 31 bits fit the contract's integer.
    digest = hashlib.sha256(f"{guid}:{kind}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF or 1


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class OutcomeSource(Protocol):
    """Where the outcomes plan comes from (an :class:`~.outcomes.OutcomesFile`, a test)."""

    def current(self) -> OutcomePlan: ...


@dataclass(frozen=True)
class _FixedOutcomes:
    plan: OutcomePlan

    def current(self) -> OutcomePlan:
        return self.plan


class JobReader:
    """The job files of a fleet directory, each parsed once (they are written once, atomically).

    A file that is not a valid job is skipped with one ``job_file_unreadable`` warning per
    version of it.
    """

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], Job | None]] = {}

    def read(self) -> list[Job]:
        try:
            entries = [p for p in self.jobs_dir.iterdir() if p.suffix == ".json"]
        except OSError:
            return []
        found: list[Job] = []
        with self._lock:
            seen = set()
            for path in entries:
                seen.add(path.name)
                try:
                    info = path.stat()
                except OSError:
                    continue  # replaced or removed while listing
                stamp = (info.st_mtime_ns, info.st_size)
                cached = self._cache.get(path.name)
                if cached is None or cached[0] != stamp:
                    cached = (stamp, self._parse(path))
                    self._cache[path.name] = cached
                if cached[1] is not None:
                    found.append(cached[1])
            for gone in set(self._cache) - seen:
                del self._cache[gone]
        return found

    def _parse(self, path: Path) -> Job | None:
        try:
            return Job.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("job_file_unreadable", path=str(path), error=str(exc))
            return None


@dataclass(frozen=True)
class _Printer:
    """A printer as the snapshot describes it: its fleet entry and derived names."""

    entry: SimPrinter
    technology: str
    group: Record
    availability: PrinterAvailability
    offline_since: datetime | None

    @property
    def serial(self) -> str:
        return self.entry.serial

    @property
    def tank(self) -> str | None:
        if self.technology != "SLA":
            return None
        return self.entry.tank_id or f"{self.serial}-TANK"

    @property
    def cartridge(self) -> str | None:
        return f"{self.serial}-CARTRIDGE" if self.technology == "SLA" else None

    @property
    def cylinder(self) -> str | None:
        return f"{self.serial}-CYLINDER" if self.technology == "SLS" else None

    @property
    def powder(self) -> str:
        return f"{self.serial}-POWDER"


class FleetView:
    """Reads a fleet directory and builds :class:`FleetSnapshot` s of it at chosen moments.

    ``outcomes`` is a plan or a source of plans (re-read for every snapshot); ``started_at``
    anchors ``offline_after_s`` outages; ``time_scale`` multiplies every print's duration;
    ``print_history`` gives every printer one finished print from before ``started_at``
    (:mod:`.history`; False: printers that never printed, ``current_print_run`` null).
    """

    def __init__(
        self,
        fleet_dir: Path,
        *,
        started_at: datetime,
        time_scale: float = DEFAULT_TIME_SCALE,
        outcomes: OutcomePlan | OutcomeSource | None = None,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
        print_history: bool = True,
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, not {time_scale}")
        self.fleet = FleetState(fleet_dir)
        self.jobs = JobReader(fleet_dir / "jobs")
        self.started_at = started_at
        self.time_scale = time_scale
        if outcomes is None:
            outcomes = OutcomePlan()
        self.outcomes: OutcomeSource = (
            _FixedOutcomes(outcomes) if isinstance(outcomes, OutcomePlan) else outcomes
        )
        self.catalogue = catalogue
        self.print_history = print_history
        self.group_table = GroupTable(fleet_dir)

    def snapshot(self, now: datetime) -> FleetSnapshot:
        """The whole fleet as the Dashboard shows it at ``now`` (an aware datetime)."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        entries = self.fleet.printers()
        groups = self.fleet.groups()
        table = self.group_table.read()
        plan = self.outcomes.current()
        marked_offline = self._marked_offline_at()
        printers = {}
        for entry in entries:
            offline = plan.offline_from(entry.serial, self.started_at)
            if entry.status == _OFFLINE:
                offline = marked_offline if offline is None else min(offline, marked_offline)
            machine = self.catalogue.machine(entry.machine_type_id)
            printers[entry.serial] = _Printer(
                entry=entry,
                technology=machine.technology if machine is not None else "SLA",
                group=_group_ref_of(entry.serial, groups, table),
                availability=PrinterAvailability(
                    entry.serial,
                    entry.machine_type_id,
                    accepts_jobs=entry.ready_to_print_now,
                    offline_at=offline,
                ),
                offline_since=offline,
            )
        jobs = self.jobs.read()
        plan_of_runs = schedule(
            jobs,
            [p.availability for p in printers.values()],
            groups,
            plan,
            time_scale=self.time_scale,
            preprint_s=self._preprint_s,
        )
        if self.print_history:
            plan_of_runs = Schedule(
                self._past(printers.values(), jobs) + plan_of_runs.runs, plan_of_runs.queued
            )
        return FleetSnapshot(self, now, printers, groups, plan_of_runs, table)

    def _past(self, printers: Iterable[_Printer], jobs: Iterable[Job]) -> tuple[ScheduledRun, ...]:
        # Before the oldest job too, so a fleet directory's earlier prints follow the past one.
        before = min([self.started_at, *(job.created_at for job in jobs)])
        return past_runs(
            (
                PastPrinter(p.serial, p.entry.machine_type_id, p.entry.material_code, p.technology)
                for p in printers
            ),
            before=before,
            namespace=_NAMESPACE,
            # The past ran at full speed: its preprint is not scaled either.
            preprint_s=self._preprint_s,
        )

    def _marked_offline_at(self) -> datetime:
        # printers.json says OFFLINE without saying since when: since it was last written.
        try:
            mtime = self.fleet.printers_path.stat().st_mtime
        except OSError:
            return self.started_at
        return datetime.fromtimestamp(mtime, timezone.utc)

    def _preprint_s(self, machine_type: str) -> float:
        machine = self.catalogue.machine(machine_type)
        return SLS_PREPRINT_S if machine is not None and machine.technology == "SLS" else (
            SLA_PREPRINT_S
        )

    def material_name(self, machine_type: str, code: str) -> str:
        machine = self.catalogue.machine(machine_type)
        material = machine.material(code) if machine is not None else None
        if material is None:
            for other in self.catalogue.machines:
                material = other.material(code)
                if material is not None:
                    break
        return material.label if material is not None else code


def _group_ref_of(serial: str, groups: list[SimGroup], table: list[Record] | None) -> Record:
    if table is not None:
        for record in table:
            if serial in record["printers"]:
                return records.group_ref(record["id"], record["name"])
        return records.group_ref(group_uuid(_DEFAULT_GROUP_KEY), DEFAULT_GROUP_NAME)
    for group in groups:
        if serial in group.printers:
            return records.group_ref(group_uuid(group.group_id), group.group_id[:GROUP_NAME_MAX])
    return records.group_ref(group_uuid(_DEFAULT_GROUP_KEY), DEFAULT_GROUP_NAME)


class FleetSnapshot:
    """The fleet at one moment, as Web API records; each list is built on first use.

    ``runs`` and ``events`` are newest first, like the Dashboard's feeds; ``queues`` maps a
    group's Dashboard id to its waiting jobs, oldest (next to print) first.
    """

    def __init__(
        self,
        view: FleetView,
        now: datetime,
        printers: Mapping[str, _Printer],
        groups: list[SimGroup],
        plan: Schedule,
        table: list[Record] | None = None,
    ) -> None:
        self.view = view
        self.now = now
        self._printers = printers
        self._groups = groups
        self._schedule = plan
        self._table = table

    # -- print runs ---------------------------------------------------------------------------

    @cached_property
    def _visible(self) -> list[tuple[ScheduledRun, RunState]]:
        shown = []
        for run in self._schedule.runs:
            since = run.visible_from
            if since is not None and since <= self.now:
                shown.append((run, run.state(self.now)))
        shown.sort(key=lambda item: (item[0].job.created_at, item[0].job.job_id), reverse=True)
        return shown

    @cached_property
    def runs(self) -> list[Record]:
        """Every print run the Dashboard lists, newest first."""
        return [self._run_record(run, state) for run, state in self._visible]

    def runs_of(self, serial: str) -> list[Record]:
        return [r for r in self.runs if r["printer"] == serial]

    @cached_property
    def _machine_types(self) -> dict[str, str]:
        return {run.job.job_id: run.job.machine_type for run, _ in self._visible}

    def machine_type_of(self, run: Mapping[str, Any]) -> str | None:
        """The machine type a run was printed on (print records do not carry it)."""
        return self._machine_types.get(str(run.get("guid")))

    def _run_record(self, run: ScheduledRun, state: RunState) -> Record:
        job = run.job
        printer = self._printers.get(run.printer)
        adaptive = job.layer_thickness == ADAPTIVE
        thickness = (
            ADAPTIVE_AVERAGE_LAYER_MM
            if isinstance(job.layer_thickness, str)
            else float(job.layer_thickness)
        )
        created = records.iso(job.created_at)
        queue_item = None
        if run.queue_group is not None:
            queue_item = {
                "id": job.job_id,
                "name": job.name,
                "group": group_uuid(run.queue_group),
            }
        share = job.volume_ml / len(job.models) if job.models else 0.0
        return records.print_run_record(
            guid=job.job_id,
            name=job.name,
            printer=run.printer,
            status=state.status,
            created_at=created,
            print_started_at=_iso_or_none(state.started_at),
            print_finished_at=_iso_or_none(state.finished_at),
            layer_count=job.layer_count,
            volume_ml=job.volume_ml,
            material=job.material_code,
            material_name=self.view.material_name(job.machine_type, job.material_code),
            layer_thickness_mm=thickness,
            currently_printing_layer=state.currently_printing_layer,
            estimated_duration_ms=_ms(run.duration_s),
            elapsed_duration_ms=_ms(state.elapsed_s),
            estimated_time_remaining_ms=_ms(state.remaining_s),
            success=records.print_run_success(job.job_id, "UNKNOWN", None),
            firmware_version=None if printer is None else printer.entry.firmware_version,
            cartridge=None,
            front_cartridge=None if printer is None else printer.cartridge,
            back_cartridge=None,
            tank=None if printer is None else printer.tank,
            cylinder=None if printer is None else printer.cylinder,
            note=records.print_note(job.job_id, "", SIM_USER, created),
            thumbnail_url=f"{_THUMBNAILS}/{job.job_id}.png",
            user=SIM_USER,
            group=(
                dict(printer.group)
                if printer is not None
                else records.group_ref(group_uuid(_DEFAULT_GROUP_KEY), DEFAULT_GROUP_NAME)
            ),
            message=state.message,
            print_job=job.job_id,
            print_settings_name=job.print_setting.replace("_", " ").title(),
            print_settings_code=job.print_setting,
            parts=[
                records.print_part(
                    id=index,
                    guid=str(uuid.uuid5(_NAMESPACE, f"part:{job.job_id}:{model.id}")),
                    display_name=model.name,
                    end_layer=job.layer_count,
                    name=model.name,
                    raw_mesh_hash=model.raw_mesh_hash,
                    start_layer=0,
                    volume_ml=round(share, 6),
                    prepared_scene=job.scene_id,
                )
                for index, model in enumerate(job.models, start=1)
            ],
            cloud_queue_item=queue_item,
            adaptive_thickness=adaptive,
        )

    # -- events -------------------------------------------------------------------------------

    @cached_property
    def events(self) -> list[Record]:
        """Every reported transition up to now, newest first."""
        found: list[tuple[datetime, int, Record]] = []
        for run in self._schedule.runs:
            printer = self._printers.get(run.printer)
            for transition in run.transitions():
                if transition.at > self.now:
                    continue
                at_that_time = records.nested_print_run(
                    self._run_record(run, run.state(transition.at))
                )
                event_id = _event_id(run.job.job_id, transition.type)
                label = EVENT_LABELS[transition.type]
                message = f"{label}: {run.job.name or run.job.job_id} on {run.printer}"
                if transition.type != "PRINTER_OFFLINE" and run.outcome.message and (
                    transition.at == run.stop
                ):
                    message += f": {run.outcome.message}"
                record = records.event_record(
                    id=event_id,
                    printer=run.printer,
                    created_at=records.iso(transition.at),
                    print_run=at_that_time,
                    tank=None if printer is None else printer.tank,
                    cartridge=None if printer is None else printer.cartridge,
                    type=transition.type,
                    type_label=label,
                    message=message,
                    group=dict(at_that_time["group"]),
                )
                found.append((transition.at, event_id, record))
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [record for _, _, record in found]

    # -- printers and consumables -------------------------------------------------------------

    def _printer_runs(self, serial: str) -> list[tuple[ScheduledRun, RunState]]:
        """The runs a printer started, newest first."""
        return [
            (run, state)
            for run, state in self._visible
            if run.printer == serial and state.started
        ]

    @cached_property
    def _last_changes(self) -> dict[str, datetime]:
        latest: dict[str, datetime] = {}
        for run in self._schedule.runs:
            for transition in run.transitions():
                if transition.at > self.now:
                    continue
                known = latest.get(run.printer)
                if known is None or transition.at > known:
                    latest[run.printer] = transition.at
        return latest

    def _last_change(self, serial: str) -> str:
        """When the printer last reported a change (the simulator's start before any)."""
        return records.iso(self._last_changes.get(serial, self.view.started_at))

    @cached_property
    def printers(self) -> list[Record]:
        """Every printer of the fleet with its live status, in printers.json order."""
        return [self._printer_record(p) for p in self._printers.values()]

    def printer(self, serial: str) -> Record | None:
        for record in self.printers:
            if record["serial"] == serial:
                return record
        return None

    def _printer_record(self, printer: _Printer) -> Record:
        entry = printer.entry
        started = self._printer_runs(entry.serial)
        current = started[0] if started else None
        offline = printer.offline_since is not None and self.now >= printer.offline_since
        busy = current is not None and current[1].active
        if offline:
            status = _OFFLINE
        elif busy:
            status = "PRINTING"
        else:
            status = entry.status
        ready = not offline and not busy and entry.ready_to_print_now
        changed = self._last_change(entry.serial)
        sla = printer.technology == "SLA"
        return records.printer_record(
            serial=entry.serial,
            alias=entry.serial,
            machine_type_id=entry.machine_type_id,
            status=records.printer_status(
                status=status,
                last_pinged_at=(
                    _iso_or_none(printer.offline_since) if offline else records.iso(self.now)
                ),
                hopper_level=None,
                material_credit=None,
                hopper_material=entry.material_code,
                last_modified=changed,
                current_temperature=None,
                current_print_run=(
                    None
                    if current is None
                    else records.nested_print_run(self._run_record(*current))
                ),
                build_platform_contents=(
                    "BUILD_PLATFORM_CONTENTS_CONFIRMED_CLEAR"
                    if sla
                    else "BUILD_PLATFORM_CONTENTS_NOT_SUPPORTED"
                ),
                tank_mixer_state=(
                    "TANK_MIXER_STATE_PRESENT" if sla else "TANK_MIXER_STATE_NOT_SUPPORTED"
                ),
                ready_to_print="READY_TO_PRINT_READY" if ready else "READY_TO_PRINT_NOT_READY",
                camera_status="UNKNOWN",
            ),
            cartridge=records.cartridge_status(
                records.nested_cartridge(self._cartridge_record(printer)), changed
            ),
            tank=records.tank_status(records.nested_tank(self._tank_record(printer)), changed),
            group=dict(printer.group),
            previous_print_run=(
                records.nested_print_run(self._run_record(*started[1]))
                if len(started) > 1
                else {}
            ),
            firmware_version=entry.firmware_version,
            location=None,
        )

    def _usage(self, serial: str) -> tuple[int, int, float, int, str | None]:
        """Layers, print milliseconds, millilitres and runs printed; last print start."""
        layers = 0
        millis = 0
        volume = 0.0
        started = self._printer_runs(serial)
        for run, state in started:
            layers += state.currently_printing_layer
            millis += _ms(state.elapsed_s)
            if run.job.layer_count:
                volume += run.job.volume_ml * state.currently_printing_layer / run.job.layer_count
        last = _iso_or_none(started[0][1].started_at) if started else None
        return layers, millis, volume, len(started), last

    def _tank_record(self, printer: _Printer) -> Record:
        layers, millis, _, runs, last = self._usage(printer.serial)
        material = printer.entry.material_code
        sla = printer.technology == "SLA"
        name = self.view.material_name(printer.entry.machine_type_id, material)
        return records.tank_record(
            serial=printer.tank or printer.cylinder or f"{printer.serial}-TANK",
            material=material,
            layers_printed=layers,
            print_time_ms=millis,
            mechanical_version=None,
            manufacture_date=records.iso(SIM_EPOCH),
            manufacturer="Formlabs",
            display_name=f"{name} tank" if sla else "Build chamber",
            lot_number="SIMULATED",
            layer_count=layers,
            last_modified=self._last_change(printer.serial),
            inside_printer=printer.serial,
            write_count=runs,
            tank_type=None if sla else "BUILD_CHAMBER",
            connected_group=printer.group["id"],
            first_fill_date=records.iso(SIM_EPOCH),
            created_at=records.iso(SIM_EPOCH),
            last_print_date=last,
        )

    def _cartridge_record(self, printer: _Printer) -> Record:
        _, _, volume, runs, last = self._usage(printer.serial)
        material = printer.entry.material_code
        dispensed = round(min(_CARTRIDGE_ML, volume), 3)
        return records.cartridge_record(
            serial=printer.cartridge or printer.powder,
            consumable_type="RESIN_CARTRIDGE" if printer.technology == "SLA" else "POWDER",
            machine_type_id=printer.entry.machine_type_id,
            material=material,
            initial_volume_ml=_CARTRIDGE_ML,
            volume_dispensed_ml=dispensed,
            dispense_count=runs,
            write_count=runs,
            mechanical_version="1",
            manufacture_date=records.iso(SIM_EPOCH),
            manufacturer="Formlabs",
            display_name=self.view.material_name(printer.entry.machine_type_id, material),
            lot_number="SIMULATED",
            last_modified=self._last_change(printer.serial),
            is_empty=dispensed >= _CARTRIDGE_ML,
            inside_printer=printer.serial,
            connected_group=printer.group["id"],
            created_at=records.iso(SIM_EPOCH),
            last_print_date=last,
        )

    @cached_property
    def tanks(self) -> list[Record]:
        """The resin tanks inside the fleet's SLA printers."""
        return [self._tank_record(p) for p in self._printers.values() if p.tank is not None]

    @cached_property
    def cartridges(self) -> list[Record]:
        """The resin cartridges inside the fleet's SLA printers."""
        return [
            self._cartridge_record(p) for p in self._printers.values() if p.cartridge is not None
        ]

    # -- groups and queues --------------------------------------------------------------------

    @cached_property
    def groups(self) -> list[Record]:
        """The Dashboard's groups: its own table once a client changed it, else
        :attr:`fleet_groups`."""
        if self._table is None:
            return self.fleet_groups
        shown = [dict(g) for g in self._table]
        placed = {s for g in shown for s in g["printers"]}
        unplaced = [s for s in self._printers if s not in placed]
        if unplaced:  # printers added to the fleet since: the account's own group takes them
            own = group_uuid(_DEFAULT_GROUP_KEY)
            home = next((g for g in shown if g["id"] == own), None)
            if home is None:
                home = {**self.fleet_groups[-1], "printers": []}
                shown.append(home)
            home["printers"] = [*home["printers"], *unplaced]
        return shown

    @cached_property
    def fleet_groups(self) -> list[Record]:
        """The Fleet Control groups of printers.json, then the account's own group."""
        member = records.group_membership(
            is_admin=True,
            user=SIM_USERNAME,
            email=SIM_USER_EMAIL,
            first_name=SIM_USER["first_name"],
            last_name=SIM_USER["last_name"],
        )
        grouped = {s for g in self._groups for s in g.printers}
        found = [
            records.workgroup_record(
                id=group_uuid(g.group_id),
                name=g.group_id[:GROUP_NAME_MAX],
                created_at=records.iso(SIM_EPOCH),
                memberships=[member],
                printers=list(g.printers),
                has_fleet_control=True,
                has_fleet_control_updated_by=SIM_USER["id"],
                update_mode="AUTOMATIC",
            )
            for g in self._groups
        ]
        found.append(
            records.workgroup_record(
                id=group_uuid(_DEFAULT_GROUP_KEY),
                name=DEFAULT_GROUP_NAME,
                created_at=records.iso(SIM_EPOCH),
                memberships=[member],
                printers=[s for s in self._printers if s not in grouped],
                has_fleet_control=False,
                has_fleet_control_updated_by=None,
                update_mode="AUTOMATIC",
            )
        )
        return found

    def resolve_group(self, name: str) -> str | None:
        """A group's Dashboard id from that id, its fleet group id or its queue id."""
        for group in self._groups:
            if name in (group.group_id, group.queue_id, group_uuid(group.group_id)):
                return group_uuid(group.group_id)
        known = {g["id"] for g in self.groups} | {group_uuid(_DEFAULT_GROUP_KEY)}
        return name if name in known else None

    def queue(self, dashboard_group_id: str) -> list[Record]:
        """The jobs waiting in a group's queue now, next to print first."""
        waiting: list[QueuedJob] = [
            q
            for q in self._schedule.queued
            if group_uuid(q.group_id) == dashboard_group_id and q.waiting_at(self.now)
        ]
        waiting.sort(key=lambda q: (q.job.created_at, q.job.job_id))
        return [
            records.queue_item_record(
                id=q.job.job_id,
                name=q.job.name,
                volume_ml=q.job.volume_ml,
                material_name=self.view.material_name(q.job.machine_type, q.job.material_code),
                created_at=records.iso(q.job.created_at),
                username=SIM_USERNAME,
                allowed_machine_type_ids=[q.job.machine_type],
            )
            for q in waiting
        ]


def _iso_or_none(when: datetime | None) -> str | None:
    return None if when is None else records.iso(when)
