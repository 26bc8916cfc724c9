"""The declared simulated fleet: the printers (and queues) rehearsals print to.

With no PreFormServer configured, prints go to the simulator's fleet. The settings may declare
it (``simulator.fleet``: name, machine type, material, tank); otherwise the simulator's default
fleet applies (docs/simulator.md). Names outside the fleet are errors, with a "did you mean",
never adopted: a typo in a recipe must fail the rehearsal, not pass it.
"""

from __future__ import annotations

import json
from typing import Final

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.settings import PoolSettings, SimulatedPrinterSettings

__all__ = [
    "FLEET_ARGUMENT",
    "PRINT_TIME_ARGUMENT",
    "declared_fleet_argument",
    "printer_json",
]

#: The simulator's command-line option that takes the declared fleet.
FLEET_ARGUMENT: Final = "--fleet-printers"
PRINT_TIME_ARGUMENT: Final = "--print-time-scale"
# Declared printers without an address get one from TEST-NET-1 (RFC 5737): never a real device.
_ADDRESS_PREFIX: Final = "192.0.2."
_ADDRESS_FIRST: Final = 100


def printer_json(
    index: int, printer: SimulatedPrinterSettings, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> dict[str, str]:
    """One declared printer as the simulator's fleet file holds it (``--fleet-printers``)."""
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
    settings: PoolSettings, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> tuple[str, ...]:
    """The simulator arguments that declare ``settings``' fleet and how long its printers stay
    busy (none for what the settings leave to the simulator's defaults)."""
    args: tuple[str, ...] = ()
    if settings.simulated_print_time_scale:
        args = (PRINT_TIME_ARGUMENT, repr(settings.simulated_print_time_scale))
    if not settings.simulated_fleet:
        return args
    printers = [printer_json(i, p, catalogue) for i, p in enumerate(settings.simulated_fleet)]
    return (*args, FLEET_ARGUMENT, json.dumps(printers, separators=(",", ":")))
