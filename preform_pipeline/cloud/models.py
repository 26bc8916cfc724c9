"""Typed, frozen views of the Web API's answers; each keeps the decoded JSON as ``raw``.

Parsing is lenient on purpose: the Web API is a beta whose answers gain and lose fields
between versions, and a verification poller must not stop because an optional field went
missing. Absent or mistyped fields become ``None`` (or an empty tuple); ``raw`` always has
everything the server sent (kept out of repr, which it would flood, and out of equality, so
two fetches of one record compare by their typed fields). Times are parsed as ISO 8601 and
returned timezone-aware (UTC when the server sent no zone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from .primitives import PRINT_STATUSES, TERMINAL_PRINT_STATUSES, parse_datetime

__all__ = [
    "PRINT_STATUSES",
    "TERMINAL_PRINT_STATUSES",
    "Cartridge",
    "Event",
    "GroupMember",
    "GroupRef",
    "NewGroup",
    "Page",
    "PrintPart",
    "PrintRun",
    "Printer",
    "PrinterGroup",
    "QueueItem",
    "Tank",
    "parse_datetime",
]

Json = Mapping[str, Any]
T = TypeVar("T")

# -- lenient field readers ---------------------------------------------------------------------


def _str(data: Json, key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _opt_str(data: Json, key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _opt_int(data: Json, key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _opt_float(data: Json, key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _opt_bool(data: Json, key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _opt_time(data: Json, key: str) -> datetime | None:
    return parse_datetime(data.get(key))


def _opt_obj(data: Json, key: str) -> Json | None:
    value = data.get(key)
    return value if isinstance(value, Mapping) and value else None


def _strings(data: Json, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value if item is not None)


def _objects(value: Any, parse: Callable[[Json], T]) -> tuple[T, ...]:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(parse(item) for item in value if isinstance(item, Mapping) and item)


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRef:
    """The short form of a printer group that printers, prints and events point at."""

    id: str
    name: str
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> GroupRef:
        return cls(id=_str(data, "id"), name=_str(data, "name"), raw=data)


def _group_ref(data: Json, key: str) -> GroupRef | None:
    value = _opt_obj(data, key)
    return GroupRef.from_json(value) if value is not None else None


@dataclass(frozen=True)
class PrintPart:
    """One model in a print run."""

    guid: str
    name: str | None
    display_name: str | None
    volume_ml: float | None
    start_layer: int | None
    end_layer: int | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> PrintPart:
        return cls(
            guid=_str(data, "guid"),
            name=_opt_str(data, "name"),
            display_name=_opt_str(data, "display_name"),
            volume_ml=_opt_float(data, "volume_ml"),
            start_layer=_opt_int(data, "start_layer"),
            end_layer=_opt_int(data, "end_layer"),
            raw=data,
        )


@dataclass(frozen=True)
class PrintRun:
    """One print on one printer, as the prints feed reports it."""

    guid: str
    name: str
    printer: str
    status: str
    material: str | None
    material_name: str | None
    volume_ml: float | None
    layer_count: int | None
    layer_thickness_mm: float | None
    currently_printing_layer: int | None
    created_at: datetime | None
    print_started_at: datetime | None
    print_finished_at: datetime | None
    estimated_duration_ms: int | None
    elapsed_duration_ms: int | None
    estimated_time_remaining_ms: int | None
    print_job: str | None
    message: str | None
    #: ``SUCCESS``, ``FAILURE`` or ``UNKNOWN`` once someone rated the print, else None.
    success: str | None
    tank: str | None
    cartridge: str | None
    front_cartridge: str | None
    back_cartridge: str | None
    harvest_status: str | None
    group: GroupRef | None
    parts: tuple[PrintPart, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the print finished, was aborted or failed."""
        return self.status in TERMINAL_PRINT_STATUSES

    @classmethod
    def from_json(cls, data: Json) -> PrintRun:
        success = _opt_obj(data, "print_run_success")
        return cls(
            guid=_str(data, "guid"),
            name=_str(data, "name"),
            printer=_str(data, "printer"),
            status=_str(data, "status"),
            material=_opt_str(data, "material"),
            material_name=_opt_str(data, "material_name"),
            volume_ml=_opt_float(data, "volume_ml"),
            layer_count=_opt_int(data, "layer_count"),
            layer_thickness_mm=_opt_float(data, "layer_thickness_mm"),
            currently_printing_layer=_opt_int(data, "currently_printing_layer"),
            created_at=_opt_time(data, "created_at"),
            print_started_at=_opt_time(data, "print_started_at"),
            print_finished_at=_opt_time(data, "print_finished_at"),
            estimated_duration_ms=_opt_int(data, "estimated_duration_ms"),
            elapsed_duration_ms=_opt_int(data, "elapsed_duration_ms"),
            estimated_time_remaining_ms=_opt_int(data, "estimated_time_remaining_ms"),
            print_job=_opt_str(data, "print_job"),
            message=_opt_str(data, "message"),
            success=_opt_str(success, "print_run_success") if success else None,
            tank=_opt_str(data, "tank"),
            cartridge=_opt_str(data, "cartridge"),
            front_cartridge=_opt_str(data, "front_cartridge"),
            back_cartridge=_opt_str(data, "back_cartridge"),
            harvest_status=_opt_str(data, "harvest_status"),
            group=_group_ref(data, "group"),
            parts=_objects(data.get("parts"), PrintPart.from_json),
            raw=data,
        )


@dataclass(frozen=True)
class Tank:
    """A resin tank, from the tanks list or nested in a printer's tank status."""

    serial: str
    material: str | None
    display_name: str | None
    tank_type: str | None
    layer_count: int | None
    layers_printed: int | None
    print_time_ms: int | None
    inside_printer: str | None
    connected_group: str | None
    first_fill_date: datetime | None
    created_at: datetime | None
    last_print_date: datetime | None
    last_modified: datetime | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Tank:
        return cls(
            serial=_str(data, "serial"),
            material=_opt_str(data, "material"),
            display_name=_opt_str(data, "display_name"),
            tank_type=_opt_str(data, "tank_type"),
            layer_count=_opt_int(data, "layer_count"),
            layers_printed=_opt_int(data, "layers_printed"),
            print_time_ms=_opt_int(data, "print_time_ms"),
            inside_printer=_opt_str(data, "inside_printer") or None,
            connected_group=_opt_str(data, "connected_group"),
            first_fill_date=_opt_time(data, "first_fill_date"),
            created_at=_opt_time(data, "created_at"),
            last_print_date=_opt_time(data, "last_print_date"),
            last_modified=_opt_time(data, "last_modified"),
            raw=data,
        )


@dataclass(frozen=True)
class Cartridge:
    """A resin cartridge, from the cartridges list or nested in a printer's cartridge status."""

    serial: str
    material: str | None
    display_name: str | None
    consumable_type: str | None
    machine_type_id: str | None
    initial_volume_ml: float | None
    volume_dispensed_ml: float | None
    is_empty: bool | None
    inside_printer: str | None
    connected_group: str | None
    created_at: datetime | None
    last_print_date: datetime | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def remaining_ml(self) -> float | None:
        if self.initial_volume_ml is None or self.volume_dispensed_ml is None:
            return None
        return max(0.0, self.initial_volume_ml - self.volume_dispensed_ml)

    @classmethod
    def from_json(cls, data: Json) -> Cartridge:
        return cls(
            serial=_str(data, "serial"),
            material=_opt_str(data, "material"),
            display_name=_opt_str(data, "display_name"),
            consumable_type=_opt_str(data, "consumable_type"),
            machine_type_id=_opt_str(data, "machine_type_id"),
            initial_volume_ml=_opt_float(data, "initial_volume_ml"),
            volume_dispensed_ml=_opt_float(data, "volume_dispensed_ml"),
            is_empty=_opt_bool(data, "is_empty"),
            inside_printer=_opt_str(data, "inside_printer") or None,
            connected_group=_opt_str(data, "connected_group"),
            created_at=_opt_time(data, "created_at"),
            last_print_date=_opt_time(data, "last_print_date"),
            raw=data,
        )


@dataclass(frozen=True)
class Printer:
    """A printer registered to the account and its live status."""

    serial: str
    alias: str | None
    machine_type_id: str
    firmware_version: str | None
    location: str | None
    #: The printer's own status word (``IDLE``, ``PRINTING``, ...), None when not reported.
    status: str | None
    ready_to_print: str | None
    build_platform_contents: str | None
    last_pinged_at: datetime | None
    current_print: PrintRun | None
    group: GroupRef | None
    tank: Tank | None
    cartridges: tuple[Cartridge, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def display_name(self) -> str:
        return self.alias or self.serial

    @classmethod
    def from_json(cls, data: Json) -> Printer:
        status = _opt_obj(data, "printer_status") or {}
        current = _opt_obj(status, "current_print_run")
        tank_status = _opt_obj(data, "tank_status") or {}
        tank = _opt_obj(tank_status, "tank")
        # One status object per cartridge slot; a single-cartridge printer sends one object.
        slots = data.get("cartridge_status")
        slot_list = [slots] if isinstance(slots, Mapping) else slots
        cartridges: list[Cartridge] = []
        if isinstance(slot_list, list):
            for slot in slot_list:
                inner = _opt_obj(slot, "cartridge") if isinstance(slot, Mapping) else None
                if inner is not None:
                    cartridges.append(Cartridge.from_json(inner))
        return cls(
            serial=_str(data, "serial"),
            alias=_opt_str(data, "alias"),
            machine_type_id=_str(data, "machine_type_id"),
            firmware_version=_opt_str(data, "firmware_version"),
            location=_opt_str(data, "location"),
            status=_opt_str(status, "status"),
            ready_to_print=_opt_str(status, "ready_to_print"),
            build_platform_contents=_opt_str(status, "build_platform_contents"),
            last_pinged_at=_opt_time(status, "last_pinged_at"),
            current_print=PrintRun.from_json(current) if current is not None else None,
            group=_group_ref(data, "group"),
            tank=Tank.from_json(tank) if tank is not None else None,
            cartridges=tuple(cartridges),
            raw=data,
        )


@dataclass(frozen=True)
class Event:
    """Something that happened on the account: a print finished, a tank was inserted, ..."""

    id: int | None
    type: str
    type_label: str | None
    action: str | None
    message: str | None
    printer: str | None
    tank: str | None
    cartridge: str | None
    created_at: datetime | None
    was_read: bool | None
    print_run: PrintRun | None
    group: GroupRef | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Event:
        run = _opt_obj(data, "print_run")
        return cls(
            id=_opt_int(data, "id"),
            type=_str(data, "type"),
            type_label=_opt_str(data, "type_label"),
            action=_opt_str(data, "action"),
            message=_opt_str(data, "message"),
            printer=_opt_str(data, "printer"),
            tank=_opt_str(data, "tank"),
            cartridge=_opt_str(data, "cartridge"),
            created_at=_opt_time(data, "created_at"),
            was_read=_opt_bool(data, "was_read"),
            print_run=PrintRun.from_json(run) if run is not None else None,
            group=_group_ref(data, "group"),
            raw=data,
        )


@dataclass(frozen=True)
class GroupMember:
    """A user's membership in a printer group."""

    user: str
    email: str
    first_name: str | None
    last_name: str | None
    is_admin: bool | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> GroupMember:
        return cls(
            user=_str(data, "user"),
            email=_str(data, "email"),
            first_name=_opt_str(data, "first_name"),
            last_name=_opt_str(data, "last_name"),
            is_admin=_opt_bool(data, "is_admin"),
            raw=data,
        )


@dataclass(frozen=True)
class PrinterGroup:
    """A printer group (Dashboard workgroup): its printers, members and Fleet Control flag."""

    id: str
    name: str
    created_at: datetime | None
    printers: tuple[str, ...]
    has_fleet_control: bool | None
    remote_print_enabled_override: bool | None
    memberships: tuple[GroupMember, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> PrinterGroup:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            created_at=_opt_time(data, "created_at"),
            printers=_strings(data, "printers"),
            has_fleet_control=_opt_bool(data, "has_fleet_control"),
            remote_print_enabled_override=_opt_bool(data, "remote_print_enabled_override"),
            memberships=_objects(data.get("memberships"), GroupMember.from_json),
            raw=data,
        )


@dataclass(frozen=True)
class NewGroup:
    """A group just created (``NewWorkgroup``): no printers and only its creator as member."""

    id: str
    name: str
    created_at: datetime | None
    has_fleet_control: bool | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> NewGroup:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            created_at=_opt_time(data, "created_at"),
            has_fleet_control=_opt_bool(data, "has_fleet_control"),
            raw=data,
        )


@dataclass(frozen=True)
class QueueItem:
    """A job waiting in a Fleet Control group's queue."""

    id: str
    name: str
    volume_ml: float | None
    material_name: str | None
    username: str | None
    created_at: datetime | None
    allowed_machine_type_ids: tuple[str, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> QueueItem:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            volume_ml=_opt_float(data, "volume_ml"),
            material_name=_opt_str(data, "material_name"),
            username=_opt_str(data, "username"),
            created_at=_opt_time(data, "created_at"),
            allowed_machine_type_ids=_strings(data, "allowed_machine_type_ids"),
            raw=data,
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paginated list, for callers that manage paging themselves.

    ``count`` is the server's total across all pages; ``next_page`` / ``previous_page`` are
    page numbers read from the server's links (None at either end).
    """

    items: tuple[T, ...]
    page: int
    per_page: int | None
    count: int | None
    next_page: int | None
    previous_page: int | None

    @property
    def has_next(self) -> bool:
        return self.next_page is not None
