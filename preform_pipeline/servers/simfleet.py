"""The declared simulated fleet: the printers (and queues) rehearsals print to.

With no PreFormServer configured, prints go to the simulator's fleet. The settings may declare
it (``simulator.fleet``: name, machine type, material, tank); otherwise the simulator's default
fleet applies (docs/simulator.md). Names outside the fleet are errors, with a "did you mean",
never adopted: a typo in a recipe must fail the rehearsal, not pass it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.config import Settings, SimulatedPrinterSettings

__all__ = [
    "FLEET_ARGUMENT",
    "PRINT_TIME_ARGUMENT",
    "FleetEntry",
    "declared_fleet_argument",
    "simulated_fleet",
]

#: The simulator's command-line option that takes the declared fleet.
FLEET_ARGUMENT: Final = "--fleet-printers"
PRINT_TIME_ARGUMENT: Final = "--print-time-scale"
# Declared printers without an address get one from TEST-NET-1 (RFC 5737): never a real device.
_ADDRESS_PREFIX: Final = "192.0.2."
_ADDRESS_FIRST: Final = 100


@dataclass(frozen=True)
class FleetEntry:
    """One name a print may target in the simulated fleet: a printer (or its address) or a
    Fleet Control queue; ``machine_types`` empty for a queue."""

    name: str
    kind: str  # "printer", "address" or "queue"
    machine_types: tuple[str, ...] = ()


def _printer_json(index: int, printer: SimulatedPrinterSettings, catalogue: Catalogue) -> dict[
    str, str
]:
    machine = catalogue.machine(printer.machine_type)
    body = {
        "serial": printer.name,
        "machine_type_id": printer.machine_type,
        "product_name": machine.label if machine is not None else printer.machine_type,
        "ip_address": printer.ip_address or f"{_ADDRESS_PREFIX}{_ADDRESS_FIRST + index}",
        "material_code": printer.material,
    }
    if printer.tank:
        body["tank_id"] = printer.tank
    return body


def declared_fleet_argument(
    settings: Settings, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> tuple[str, ...]:
    """The simulator arguments that declare ``settings``' fleet and how long its printers stay
    busy (none for what the settings leave to the simulator's defaults)."""
    args: tuple[str, ...] = ()
    if settings.simulated_print_time_scale:
        args = (PRINT_TIME_ARGUMENT, repr(settings.simulated_print_time_scale))
    if not settings.simulated_fleet:
        return args
    printers = [_printer_json(i, p, catalogue) for i, p in enumerate(settings.simulated_fleet)]
    return (*args, FLEET_ARGUMENT, json.dumps(printers, separators=(",", ":")))


def simulated_fleet(settings: Settings) -> Sequence[FleetEntry]:
    """Every name a simulated print may target: the declared printers (or the default fleet's)
    by serial and address, and the default Fleet Control queues."""
    from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS

    entries: list[FleetEntry] = []
    if settings.simulated_fleet:
        for i, declared in enumerate(settings.simulated_fleet):
            body = _printer_json(i, declared, DEFAULT_CATALOGUE)
            types = (declared.machine_type,)
            entries.append(FleetEntry(declared.name, "printer", types))
            entries.append(FleetEntry(body["ip_address"], "address", types))
    else:
        for printer in DEFAULT_PRINTERS:
            types = (printer.machine_type_id,)
            entries.append(FleetEntry(printer.serial, "printer", types))
            entries.append(FleetEntry(printer.ip_address, "address", types))
    for group in DEFAULT_GROUPS:
        entries.append(FleetEntry(group.group_id, "queue"))
        entries.append(FleetEntry(group.queue_id, "queue"))
    return tuple(entries)
