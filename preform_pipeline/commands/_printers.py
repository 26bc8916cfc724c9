"""Which printers exist: the declared simulated fleet, or a reachable server's device list.

``validate`` and ``plan`` check a recipe's print targets against these
(:func:`preform_pipeline.recipes.printers.check_printer_names`), so a misspelt printer name
fails before anything is prepared. The simulated fleet's folder (:func:`fleet_dir_of`) is here
too, beside the fleet it holds: ``run`` and ``watch`` both look for interrupted prints there,
and ``run`` importing it from ``commands.watch`` paid for the hot-folder daemon at each start.
"""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.errors import PipelineError
from preform_pipeline.logging import get_logger, hide_secrets
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.settings import Settings, load_settings
from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS, default_fleet_dir
from preform_pipeline.userpath import expand_user

__all__ = [
    "DEFAULT_DEVICES_TIMEOUT_S",
    "fleet_dir_of",
    "known_printers",
    "printers_of_fleet",
    "printers_of_server",
    "printers_of_settings",
    "simulated_fleet",
]

log = get_logger(__name__)

#: How long ``plan --server`` waits for the server's device list.
DEFAULT_DEVICES_TIMEOUT_S = 5.0


def fleet_dir_of(settings: Settings) -> Path:
    """The simulator's fleet folder: ``--fleet-dir`` in ``servers.extra_args``, else its
    per-user default.

    The last one named, as the simulator's argparse takes it: ``run`` appends its
    ``--simulator-arg`` flags after the configured ones, and the folder they name is the one
    served."""
    args = list(settings.servers.extra_args)
    source = "the simulator's --fleet-dir (servers.extra_args or --simulator-arg)"
    named: str | None = None
    for index, arg in enumerate(args):
        if arg == "--fleet-dir" and index + 1 < len(args):
            named = args[index + 1]
        elif arg.startswith("--fleet-dir="):
            named = arg.split("=", 1)[1]
    if named is None:
        return default_fleet_dir()
    return expand_user(named, source=source).absolute()


def printers_of_fleet(settings: Settings) -> KnownPrinters:
    """The declared simulated fleet (or the default one) with its queues."""
    source = (
        "the declared simulated fleet (simulator.fleet)"
        if settings.simulated_fleet
        else "the default simulated fleet"
    )
    return KnownPrinters(simulated_fleet(settings), source)


def printers_of_settings(settings: Settings) -> KnownPrinters | None:
    """What print targets are checked against on ``settings`` alone: its simulated fleet
    when it runs simulated, else None (a real fleet is known to its server). The one rule
    ``validate``, ``plan``, ``run`` and ``watch`` share."""
    return printers_of_fleet(settings) if settings.simulated else None


def printers_of_server(
    url: str, *, timeout_s: float, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> KnownPrinters | None:
    """The devices the server at ``url`` lists (by id, and by address), None if unreachable."""
    # Here, not at the top: the API client's httpx costs validate and plan when no --server.
    from preform_pipeline.api import PreFormClient

    try:
        with PreFormClient(url, timeout=timeout_s, check_version_on_first_use=False) as client:
            devices = client.get_devices(timeout=timeout_s)
    except PipelineError as exc:
        log.warning("devices_unavailable", url=url, error=str(exc))
        return None
    known: list[KnownPrinter] = []
    queues = False
    for device in devices:
        machine = next(
            (m for m in catalogue.machines if device.product_name in m.product_names), None
        )
        types = tuple(machine.type_ids) if machine is not None else ()
        known.append(KnownPrinter(device.id, types))
        if device.ip_address:
            known.append(KnownPrinter(device.ip_address, types))
        queue = device.raw.get("dashboard_queue_id")
        if isinstance(queue, str) and queue:
            known.append(KnownPrinter(queue))
            queues = True
    # Named with a url's password hidden: said in a problem's message (review rv45-small).
    return KnownPrinters(tuple(known), f"the devices of {hide_secrets(url)}",
                         queues_listed=queues)


def known_printers(
    settings_path: Path | None = None, server: str | None = None, *,
    timeout_s: float = DEFAULT_DEVICES_TIMEOUT_S,
) -> KnownPrinters | None:
    """The printers to check print targets against: the devices of ``server`` when it answers,
    else the simulated fleet when the settings (``settings_path``, else the usual ones) run
    simulated; None: nothing to check against. Settings that cannot be read are left to the
    commands that use them (``validate --settings`` reports their problems)."""
    if server:
        found = printers_of_server(server, timeout_s=timeout_s)
        if found is not None:
            return found
    try:
        settings = load_settings(settings_path)
    except PipelineError:
        return None
    return printers_of_settings(settings)


def simulated_fleet(settings: Settings) -> tuple[KnownPrinter, ...]:
    """Every name a simulated print may target: the declared printers (or the default fleet's)
    by serial and address, and the default Fleet Control queues (any machine type)."""
    known: list[KnownPrinter] = []
    if settings.simulated_fleet:
        # Here, not at the top: the servers package (its pool, httpx) costs every validate.
        from preform_pipeline.servers.simfleet import printer_json

        for i, declared in enumerate(settings.simulated_fleet):
            types = (declared.machine_type,)
            known.append(KnownPrinter(declared.name, types))
            known.append(KnownPrinter(printer_json(i, declared)["ip_address"], types))
    else:
        for printer in DEFAULT_PRINTERS:
            types = (printer.machine_type_id,)
            known.append(KnownPrinter(printer.serial, types))
            known.append(KnownPrinter(printer.ip_address, types))
    for group in DEFAULT_GROUPS:
        known.append(KnownPrinter(group.group_id))
        known.append(KnownPrinter(group.queue_id))
    return tuple(known)
