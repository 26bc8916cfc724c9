"""Device status bodies (the contract's DeviceStatusModel family) for simulated printers.

Each printer answers in the shape of its family: Form 4 / 4B / 4L, Form 3 / 3+ / 3L, Fuse 1 /
1+; Fleet Control groups answer as printer groups. Field values come from the fleet state
(:mod:`preform_pipeline.simulator.fleet`); consumables the fleet file does not describe get
fixed simulated values.
"""

from __future__ import annotations

from typing import Final

from .fleet import SimGroup, SimPrinter
from .protocol import Json

__all__ = [
    "CARTRIDGE_VOLUME_ML",
    "GROUP_PRODUCT_NAME",
    "POWDER_CREDIT_G",
    "group_status",
    "printer_status",
]

#: Capacity reported for the simulated resin cartridge of every SLA printer.
CARTRIDGE_VOLUME_ML: Final = 1000.0
#: Simulated powder credit of a Fuse printer.
POWDER_CREDIT_G: Final = 5000.0
GROUP_PRODUCT_NAME: Final = "Fleet Control Printer Group"


def _base(printer: SimPrinter) -> Json:
    return {
        "id": printer.serial,
        "product_name": printer.product_name,
        "status": printer.status,
        "is_connected": printer.status != "OFFLINE",
        "connection_type": printer.connection_type,
        "ip_address": printer.ip_address,
        "firmware_version": printer.firmware_version,
        "ready_to_print_now": printer.ready_to_print_now,
        "is_remote_print_enabled": printer.is_remote_print_enabled,
        "estimated_print_time_remaining_ms": int(printer.estimated_print_time_remaining_ms),
    }


def _cartridges(printer: SimPrinter) -> Json:
    return {
        f"{printer.serial}-cartridge": {
            "cartridgeMaterialCode": printer.material_code,
            "cartridgeEstimatedVolumeDispensed_mL": 0.0,
            "cartridgeOriginalVolume_mL": CARTRIDGE_VOLUME_ML,
        }
    }


def printer_status(printer: SimPrinter) -> Json:
    """The family-specific status of one printer."""
    body = _base(printer)
    family = printer.machine_type_id
    if family.startswith("FS"):
        body |= {
            "bed_temperature_c": 25.0,
            "powder_level": "FULL",
            "printing_layer": 0,
            "printing_guid": "",
            "cylinder_material_code": printer.material_code,
            "cylinder_serial": f"{printer.serial}-cylinder",
            "printer_material_code": printer.material_code,
            "powder_credit_g": POWDER_CREDIT_G,
        }
        return body
    body |= {
        "tank_id": printer.tank_id or f"{printer.serial}-tank",
        "tank_material_code": printer.material_code,
        "cartridge_data": _cartridges(printer),
    }
    if family.startswith("FORM-3"):
        body["form_auto_status"] = "NOT_INSTALLED"
    return body


def group_status(group: SimGroup, members: list[SimPrinter]) -> Json:
    """A Fleet Control group: ready when any member is ready and the queue is running."""
    machine_types = sorted({p.machine_type_id for p in members})
    return {
        "id": group.group_id,
        "product_name": GROUP_PRODUCT_NAME,
        "status": "PAUSED" if group.queue_paused else "ONLINE",
        "is_connected": True,
        "connection_type": "REMOTE",
        "ip_address": "",
        "firmware_version": "",
        "ready_to_print_now": (not group.queue_paused)
        and any(p.ready_to_print_now for p in members),
        "dashboard_group_id": group.group_id,
        "dashboard_queue_id": group.queue_id,
        "queue_paused": group.queue_paused,
        "has_form_auto": False,
        "supported_machine_type_ids": machine_types,
        "printers": [{"id": p.serial, "machine_type_id": p.machine_type_id} for p in members],
    }
