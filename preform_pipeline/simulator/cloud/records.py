"""The Web API's record shapes, built in one place for every fake of the Web API.

Both fakes of the Dashboard, the in-process :class:`~.fake.FakeWebApi` (its ``sample_*``
records) and the Dashboard simulator (records derived from the fleet
directory), build their answers here, so the two cannot drift apart in which keys a record has,
how records nest, or how timestamps are written. Each builder takes every value of the record
as a keyword argument (the fakes differ in values, never in shape) and returns a fresh ``dict``
with the keys in the order the Web API documents them.

Nested forms are derived, not rebuilt: a print run nested in a printer's status or in an event
is :func:`nested_print_run` of the full record, a tank or cartridge nested in a printer is
:func:`nested_tank` / :func:`nested_cartridge` of the listed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final

__all__ = [
    "HARVEST_STATUS_UNKNOWN",
    "Record",
    "basic_user",
    "cartridge_record",
    "cartridge_status",
    "empty_form_cell",
    "event_record",
    "group_membership",
    "group_ref",
    "iso",
    "nested_cartridge",
    "nested_print_run",
    "nested_tank",
    "page_record",
    "print_note",
    "print_part",
    "print_run_record",
    "print_run_success",
    "printer_record",
    "printer_status",
    "queue_item_record",
    "tank_record",
    "tank_status",
    "workgroup_record",
]

Record = dict[str, Any]

#: The contract makes ``harvest_status`` nullable beside an ``allOf`` holding an enum, which a
#: validator reads as "one of the enum values" only; printers without Form Auto report this.
HARVEST_STATUS_UNKNOWN: Final = "FORM_CELL_HARVEST_UNKNOWN"

# Keys a print run has in the prints feed but not where it is nested (printer status, event).
_FEED_ONLY_RUN_KEYS: Final = ("cloud_queue_item", "parts")
# Keys a listed tank has that the tank nested in a printer's status does not.
_LIST_ONLY_TANK_KEYS: Final = (
    "mechanical_version",
    "manufacture_date",
    "manufacturer",
    "lot_number",
    "last_modified",
    "write_count",
)
# Keys the cartridge nested in a printer's status keeps from the listed one.
_NESTED_CARTRIDGE_KEYS: Final = frozenset(
    {
        "serial",
        "material",
        "consumable_type",
        "initial_volume_ml",
        "volume_dispensed_ml",
        "display_name",
        "is_empty",
        "inside_printer",
        "connected_group",
        "created_at",
        "last_print_date",
        "machine_type_id",
    }
)


def iso(when: datetime) -> str:
    """A timestamp as the Web API writes it: UTC, microseconds, ``Z`` suffix."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def group_ref(id: str, name: str) -> Record:
    """The short form of a printer group that printers, prints and events point at."""
    return {"id": id, "name": name}


def basic_user(id: int, username: str, first_name: str, last_name: str, email: str) -> Record:
    """A user as prints and notes name them (``BasicUser``; DRF renders ``email`` too)."""
    return {
        "id": id,
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
    }


def print_run_success(guid: str, success: str, created_at: str | None) -> Record:
    """A user's rating of a print (``UNKNOWN`` with no time until someone rates it)."""
    return {"print_run": guid, "print_run_success": success, "created_at": created_at}


def print_note(guid: str, note: str, author: Record, updated_at: str) -> Record:
    return {"print_run": guid, "note": note, "author": author, "updated_at": updated_at}


def print_part(
    *,
    id: int,
    guid: str,
    display_name: str,
    end_layer: int,
    name: str,
    raw_mesh_hash: str | None,
    start_layer: int,
    volume_ml: float,
    prepared_scene: str,
) -> Record:
    """One model of a print run."""
    return {
        "id": id,
        "guid": guid,
        "display_name": display_name,
        "end_layer": end_layer,
        "name": name,
        "raw_mesh_hash": raw_mesh_hash,
        "start_layer": start_layer,
        "volume_ml": volume_ml,
        "prepared_scene": prepared_scene,
    }


def print_run_record(
    *,
    guid: str,
    name: str,
    printer: str,
    status: str,
    created_at: str,
    print_started_at: str | None,
    print_finished_at: str | None,
    layer_count: int,
    volume_ml: float,
    material: str | None,
    material_name: str,
    layer_thickness_mm: float,
    currently_printing_layer: int,
    estimated_duration_ms: int,
    elapsed_duration_ms: int,
    estimated_time_remaining_ms: int,
    success: Record,
    firmware_version: str | None,
    cartridge: str | None,
    front_cartridge: str | None,
    back_cartridge: str | None,
    tank: str | None,
    cylinder: str | None,
    note: Record,
    thumbnail_url: str,
    user: Record,
    group: Record,
    message: str | None,
    print_job: str | None,
    print_settings_name: str,
    print_settings_code: str,
    parts: Sequence[Record],
    cloud_queue_item: Mapping[str, Any] | None = None,
    adaptive_thickness: bool = False,
    using_open_mode: bool = False,
    z_height_offset_mm: float = 0.0,
    post_print_photo_url: str | None = None,
    user_custom_label: str = "",
    form_auto_serial: str | None = None,
    form_auto_fw_version: str | None = None,
    harvest_status: str = HARVEST_STATUS_UNKNOWN,
) -> Record:
    """A print run as the prints feed lists it (``PrintRunWithFleetControlData``)."""
    return {
        "guid": guid,
        "name": name,
        "printer": printer,
        "status": status,
        "using_open_mode": using_open_mode,
        "z_height_offset_mm": z_height_offset_mm,
        "print_started_at": print_started_at,
        "print_finished_at": print_finished_at,
        "layer_count": layer_count,
        "volume_ml": volume_ml,
        "material": material,
        "layer_thickness_mm": layer_thickness_mm,
        "currently_printing_layer": currently_printing_layer,
        "estimated_duration_ms": estimated_duration_ms,
        "elapsed_duration_ms": elapsed_duration_ms,
        "estimated_time_remaining_ms": estimated_time_remaining_ms,
        "created_at": created_at,
        "print_run_success": success,
        "firmware_version": firmware_version,
        "cartridge": cartridge,
        "front_cartridge": front_cartridge,
        "back_cartridge": back_cartridge,
        "tank": tank,
        "cylinder": cylinder,
        "note": note,
        "print_thumbnail": {"thumbnail": thumbnail_url},
        "post_print_photo_url": post_print_photo_url,
        "user": user,
        "user_custom_label": user_custom_label,
        "group": group,
        "adaptive_thickness": adaptive_thickness,
        "message": message,
        "print_job": print_job,
        "material_name": material_name,
        "print_settings_name": print_settings_name,
        "print_settings_code": print_settings_code,
        "cloud_queue_item": None if cloud_queue_item is None else dict(cloud_queue_item),
        "form_auto_serial": form_auto_serial,
        "form_auto_fw_version": form_auto_fw_version,
        "harvest_status": harvest_status,
        "parts": [dict(part) for part in parts],
    }


def nested_print_run(run: Mapping[str, Any]) -> Record:
    """A feed record as a printer's status or an event nests it (``MyPrintRunReadOnly``)."""
    return {key: value for key, value in run.items() if key not in _FEED_ONLY_RUN_KEYS}


def tank_record(
    *,
    serial: str,
    material: str | None,
    layers_printed: int | None,
    print_time_ms: int | None,
    mechanical_version: str | None,
    manufacture_date: str,
    manufacturer: str,
    display_name: str,
    lot_number: str,
    layer_count: int,
    last_modified: str,
    inside_printer: str,
    write_count: int,
    tank_type: str | None,
    connected_group: str | None,
    first_fill_date: str | None,
    created_at: str | None,
    last_print_date: str | None,
    heatmap: str = "",
    heatmap_gif: str | None = None,
) -> Record:
    """A resin tank as the tanks list shows it (``Tank``)."""
    return {
        "serial": serial,
        "material": material,
        "layers_printed": layers_printed,
        "print_time_ms": print_time_ms,
        "heatmap": heatmap,
        "heatmap_gif": heatmap_gif,
        "mechanical_version": mechanical_version,
        "manufacture_date": manufacture_date,
        "manufacturer": manufacturer,
        "display_name": display_name,
        "lot_number": lot_number,
        "layer_count": layer_count,
        "last_modified": last_modified,
        "inside_printer": inside_printer,
        "write_count": write_count,
        "tank_type": tank_type,
        "connected_group": connected_group,
        "first_fill_date": first_fill_date,
        "created_at": created_at,
        "last_print_date": last_print_date,
    }


def nested_tank(tank: Mapping[str, Any]) -> Record:
    """A listed tank as a printer's tank status nests it (``TankReadOnly``)."""
    return {key: value for key, value in tank.items() if key not in _LIST_ONLY_TANK_KEYS}


def cartridge_record(
    *,
    serial: str,
    consumable_type: str,
    machine_type_id: str,
    material: str | None,
    initial_volume_ml: float,
    volume_dispensed_ml: float,
    dispense_count: int | None,
    write_count: int,
    mechanical_version: str,
    manufacture_date: str,
    manufacturer: str,
    display_name: str,
    lot_number: str,
    last_modified: str,
    is_empty: bool,
    inside_printer: str,
    connected_group: str | None,
    created_at: str | None,
    last_print_date: str | None,
) -> Record:
    """A resin cartridge as the cartridges list shows it (``Cartridge``)."""
    return {
        "serial": serial,
        "consumable_type": consumable_type,
        "machine_type_id": machine_type_id,
        "material": material,
        "initial_volume_ml": initial_volume_ml,
        "volume_dispensed_ml": volume_dispensed_ml,
        "dispense_count": dispense_count,
        "write_count": write_count,
        "mechanical_version": mechanical_version,
        "manufacture_date": manufacture_date,
        "manufacturer": manufacturer,
        "display_name": display_name,
        "lot_number": lot_number,
        "last_modified": last_modified,
        "is_empty": is_empty,
        "inside_printer": inside_printer,
        "connected_group": connected_group,
        "created_at": created_at,
        "last_print_date": last_print_date,
    }


def nested_cartridge(cartridge: Mapping[str, Any]) -> Record:
    """A listed cartridge as a printer's cartridge status nests it (``CartridgeReadOnly``)."""
    return {key: value for key, value in cartridge.items() if key in _NESTED_CARTRIDGE_KEYS}


def empty_form_cell() -> Record:
    """The Form Auto block of a printer that has none."""
    return {"serial": "", "firmware_version": "", "status": "", "rotation": ""}


def printer_status(
    *,
    status: str,
    last_pinged_at: str | None,
    hopper_level: int | None,
    material_credit: float | None,
    hopper_material: str,
    last_modified: str,
    current_temperature: float | None,
    current_print_run: Record | None,
    build_platform_contents: str,
    tank_mixer_state: str,
    ready_to_print: str,
    camera_status: str,
    form_cell: Record | None = None,
    last_printer_cooldown_started: str | None = None,
    printer_capabilities: Sequence[str] = (),
    printernet_capabilities: Sequence[str] | None = None,
) -> Record:
    """A printer's live status (``MyDeepPrinterStatus``)."""
    return {
        "status": status,
        "last_pinged_at": last_pinged_at,
        "hopper_level": hopper_level,
        "material_credit": material_credit,
        "hopper_material": hopper_material,
        "last_modified": last_modified,
        "current_temperature": current_temperature,
        "current_print_run": current_print_run,
        "form_cell": empty_form_cell() if form_cell is None else form_cell,
        "last_printer_cooldown_started": last_printer_cooldown_started,
        # Free-form and undescribed in the contract; the simulator has nothing to put there,
        # but DRF renders every declared field, so it is sent as null rather than left out.
        "outer_boundary_offset_corrections": None,
        "build_platform_contents": build_platform_contents,
        "tank_mixer_state": tank_mixer_state,
        "ready_to_print": ready_to_print,
        "printer_capabilities": list(printer_capabilities),
        "printernet_capabilities": (
            None if printernet_capabilities is None else list(printernet_capabilities)
        ),
        "camera_status": camera_status,
    }


def cartridge_status(cartridge: Record, last_modified: str, slot: str = "FRONT") -> Record:
    return {"cartridge": cartridge, "last_modified": last_modified, "cartridge_slot": slot}


def tank_status(tank: Record, last_modified: str) -> Record:
    return {"tank": tank, "last_modified": last_modified}


def printer_record(
    *,
    serial: str,
    alias: str | None,
    machine_type_id: str,
    status: Record,
    cartridge: Record,
    tank: Record,
    group: Record,
    previous_print_run: Mapping[str, Any],
    firmware_version: str,
    location: str | None,
) -> Record:
    """A printer on the account with its live status (``DeveloperAPIMyPrinter``)."""
    return {
        "serial": serial,
        "alias": alias,
        "machine_type_id": machine_type_id,
        "printer_status": status,
        "cartridge_status": cartridge,
        "tank_status": tank,
        "group": group,
        "previous_print_run": dict(previous_print_run),
        "firmware_version": firmware_version,
        "location": location,
    }


def event_record(
    *,
    id: int,
    printer: str | None,
    created_at: str,
    print_run: Record,
    tank: str | None,
    cartridge: str | None,
    type: str,
    type_label: str,
    message: str,
    group: Record,
    action: str = "",
    was_read: bool = False,
) -> Record:
    """Something that happened on the account (``UserEventReadOnly``)."""
    return {
        "id": id,
        "printer": printer,
        "created_at": created_at,
        "print_run": print_run,
        "tank": tank,
        "cartridge": cartridge,
        "type": type,
        "type_label": type_label,
        "action": action,
        "message": message,
        "was_read": was_read,
        "group": group,
    }


def group_membership(
    *, is_admin: bool, user: str, email: str, first_name: str, last_name: str
) -> Record:
    return {
        "is_admin": is_admin,
        "user": user,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
    }


def workgroup_record(
    *,
    id: str,
    name: str,
    created_at: str,
    memberships: Sequence[Record],
    printers: Sequence[str],
    has_fleet_control: bool,
    has_fleet_control_updated_by: int | None,
    update_mode: str,
    remote_print_enabled_override: bool = True,
    invitations: Sequence[Record] = (),
) -> Record:
    """A printer group as the groups list shows it (``Workgroup``)."""
    return {
        "id": id,
        "name": name,
        "remote_print_enabled_override": remote_print_enabled_override,
        "created_at": created_at,
        "memberships": [dict(m) for m in memberships],
        "printers": list(printers),
        "invitations": [dict(i) for i in invitations],
        "has_fleet_control": has_fleet_control,
        "has_fleet_control_updated_by": has_fleet_control_updated_by,
        "settings": {"group": id, "update_mode": update_mode},
    }


def queue_item_record(
    *,
    id: str,
    name: str,
    volume_ml: float,
    material_name: str,
    created_at: str,
    username: str,
    allowed_machine_type_ids: Sequence[str],
) -> Record:
    """A job waiting in a Fleet Control queue (``DeveloperAPIMyCloudQueueItems``)."""
    return {
        "id": id,
        "name": name,
        "volume_ml": volume_ml,
        "material_name": material_name,
        "created_at": created_at,
        "username": username,
        "allowed_machine_type_ids": list(allowed_machine_type_ids),
    }


def page_record(
    count: int, next_url: str | None, previous_url: str | None, results: Sequence[Record]
) -> Record:
    """One page of a paginated list: ``count`` across all pages, links to the neighbours."""
    return {"count": count, "next": next_url, "previous": previous_url, "results": list(results)}
