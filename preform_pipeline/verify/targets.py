"""Choosing a printer for ``print: {printer: auto}``: the first ready one that fits the scene.

A printer qualifies when, at the moment the print is sent, it

1. is of the recipe's machine type (``FORM-4-0``...),
2. is online, not printing and ready to print (as far as its status says),
3. has the recipe's material loaded (tank, cartridge, or powder).

Printer status comes from one of two places, behind the small :class:`PrinterSource`
protocol: the Web API (``GET /printers/``: every printer on the account, with
``ready_to_print`` and the tank and cartridges loaded; :class:`WebApiPrinters`) or the Local
API of the PreFormServer preparing the build (``GET /devices/``: the printers that server
discovered; :class:`LocalApiDevices`). The Web API is preferred when credentials are
configured: it sees every printer of the account, not only those on the server's network.

When none qualifies, :class:`~preform_pipeline.errors.PrinterSelectionError` lists every
printer with what it lacked, so the fix (load the resin, free the printer) is obvious. Order
is the source's own listing order: "first" is stable from one build to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from preform_pipeline.api import Device, PreFormClient
from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.cloud import Printer, WebApiClient
from preform_pipeline.errors import PipelineError, PrinterSelectionError
from preform_pipeline.logging import get_logger
from preform_pipeline.recipes.model import AUTO_PRINTER

__all__ = [
    "AUTO_PRINTER",
    "BUSY_PRINT_STATUSES",
    "READY_TO_PRINT",
    "CombinedReadiness",
    "LocalApiDevices",
    "PrinterCandidate",
    "PrinterSource",
    "WebApiPrinters",
    "is_auto_target",
    "select_printer",
]

log = get_logger(__name__)

#: The Web API's ``ready_to_print`` value of a printer that can start a print now.
READY_TO_PRINT: Final = "READY_TO_PRINT_READY"
#: Statuses of a printer (or its current run) that is busy with a print.
BUSY_PRINT_STATUSES: Final[frozenset[str]] = frozenset(
    {
        "QUEUED",
        "PREPRINT",
        "PRINTING",
        "PAUSING",
        "PAUSED",
        "ABORTING",
        "WAITING_FOR_RESOLUTION",
        "PREHEAT",
        "PRECOAT",
        "POSTCOAT",
    }
)
_OFFLINE: Final = frozenset({"OFFLINE", "DISCONNECTED"})
# The Local API lists Fleet Control groups among devices; they are not printers.
_GROUP_PRODUCT: Final = "Fleet Control Printer Group"


def is_auto_target(printer: str) -> bool:
    """True for the ``auto`` print target (any case, surrounding spaces ignored)."""
    return printer.strip().lower() == AUTO_PRINTER


@dataclass(frozen=True)
class PrinterCandidate:
    """One printer as a selection sees it, whichever API described it.

    ``name`` is what a print is sent to (the serial, or the Local API's device id).
    ``machine_types`` may hold several ids for one product (a Form 3+ is ``FORM-3-1`` and
    ``FORM-3-0``); empty when unknown. ``ready`` is None when the status does not say.
    """

    name: str
    machine_types: tuple[str, ...]
    materials: tuple[str, ...]
    online: bool
    busy: str | None = None
    ready: bool | None = None
    ready_detail: str | None = None
    source: str = ""
    raw: Any = field(default=None, repr=False, compare=False)

    def lacks(self, machine_type: str, material_code: str) -> list[str]:
        """Why this printer cannot take the print now (empty: it can)."""
        missing: list[str] = []
        if machine_type not in self.machine_types:
            have = "/".join(self.machine_types) or "unknown"
            missing.append(f"machine type {have}, not {machine_type}")
        if not self.online:
            missing.append("offline")
        elif self.busy is not None:
            missing.append(self.busy)
        elif self.ready is False:
            detail = f" ({self.ready_detail})" if self.ready_detail else ""
            missing.append(f"not ready to print{detail}")
        if material_code not in self.materials:
            loaded = ", ".join(self.materials)
            missing.append(
                f"{loaded} loaded, not {material_code}" if loaded else "no material loaded"
            )
        return missing


@runtime_checkable
class PrinterSource(Protocol):
    """Where printer status comes from (the Web API or a PreFormServer's device list)."""

    @property
    def description(self) -> str:
        """For messages: ``Web API printer status``."""
        ...

    def printer_candidates(self) -> Sequence[PrinterCandidate]:
        """Every printer the source knows, in its own order."""
        ...


class WebApiPrinters:
    """Printers of the Dashboard account, from ``GET /printers/`` (one request)."""

    description = "Web API printer status"

    def __init__(self, client: WebApiClient) -> None:
        self.client = client

    def printer_candidates(self) -> Sequence[PrinterCandidate]:
        return tuple(_from_web_printer(p) for p in self.client.list_printers())


class LocalApiDevices:
    """Printers a PreFormServer discovered, from ``GET /devices/?can_print=true``.

    Device statuses name the product (``Form 4``), not the machine type; ``catalogue`` maps
    one to the other.
    """

    description = "Local API devices"

    def __init__(self, client: PreFormClient, catalogue: Catalogue = DEFAULT_CATALOGUE, *,
                 offline_too: bool = False) -> None:
        self.client = client
        self.catalogue = catalogue
        #: Also the printers that are offline. ``can_print=true`` leaves them out, which
        #: choosing a printer wants; a page of the lab's printers shows them as offline.
        self.offline_too = offline_too

    def printer_candidates(self) -> Sequence[PrinterCandidate]:
        devices = list(self.client.get_devices(can_print=True))
        if self.offline_too:
            listed = {d.id for d in devices}
            devices += [d for d in self.client.get_devices()
                        if d.id not in listed and d.is_connected is False and any(
                            d.product_name in m.product_names for m in self.catalogue.machines)]
        return tuple(
            _from_device(d, self.catalogue) for d in devices if d.product_name != _GROUP_PRODUCT
        )



class CombinedReadiness:
    """The Web API printers feed when its request budget allows, else the Local API devices."""

    def __init__(self, local: PrinterSource, web: PrinterSource | None,
                 has_budget: Callable[[], bool]) -> None:
        self.local = local
        self.web = web
        self.has_budget = has_budget

    @property
    def description(self) -> str:
        return self.local.description if self.web is None else (
            f"{self.web.description}, else {self.local.description}")

    def printer_candidates(self) -> tuple[PrinterCandidate, ...]:
        if self.web is not None and self.has_budget():
            try:
                return tuple(self.web.printer_candidates())
            except PipelineError as exc:
                log.warning("web_printers_unavailable", error=str(exc))
        return tuple(self.local.printer_candidates())


def select_printer(
    source: PrinterSource | WebApiClient | PreFormClient,
    machine_type: str,
    material_code: str,
    *,
    exclude: Collection[str] = (),
) -> PrinterCandidate:
    """The first printer that can take a ``machine_type`` print in ``material_code`` now.

    ``source`` is a :class:`PrinterSource`, or a Web API or Local API client to read printer
    status from. ``exclude`` names printers already chosen for other builds (of this run, or
    claimed in the job store by another process or node): they count as taken. Raises
    :class:`~preform_pipeline.errors.PrinterSelectionError` listing what each printer lacked
    when none qualifies.
    """
    printers = _as_source(source)
    candidates = printers.printer_candidates()
    reasons: list[tuple[str, str]] = []
    for candidate in candidates:
        missing = candidate.lacks(machine_type, material_code)
        if candidate.name in exclude:
            # By this run, or by another process or node on the job store (its claims).
            missing.append("already chosen for another build, its print not sent yet")
        if not missing:
            log.info(
                "printer_selected",
                printer=candidate.name,
                machine_type=machine_type,
                material=material_code,
                source=printers.description,
                candidates=len(candidates),
            )
            return candidate
        reasons.append((candidate.name, ", ".join(missing)))
    log.warning(
        "printer_selection_failed",
        machine_type=machine_type,
        material=material_code,
        source=printers.description,
        reasons=dict(reasons),
    )
    raise PrinterSelectionError(
        machine_type, material_code, reasons, source=printers.description
    )


def _as_source(source: PrinterSource | WebApiClient | PreFormClient) -> PrinterSource:
    if isinstance(source, WebApiClient):
        return WebApiPrinters(source)
    if isinstance(source, PreFormClient):
        return LocalApiDevices(source)
    return source


# -- Web API printers ----------------------------------------------------------------------------


def _from_web_printer(printer: Printer) -> PrinterCandidate:
    status = (printer.status or "").upper()
    online = status not in _OFFLINE
    busy: str | None = None
    current = printer.current_print
    if current is not None and current.status in BUSY_PRINT_STATUSES:
        name = f" {current.name!r}" if current.name else ""
        busy = f"printing{name} ({current.status})"
    elif status in BUSY_PRINT_STATUSES:
        busy = f"busy ({status})"
    ready_word = printer.ready_to_print
    ready = None if ready_word is None else ready_word == READY_TO_PRINT
    # The resin in the tank is what prints; cartridges and the hopper only refill it. Without
    # a tank (SLS, or a tank not reported) the cartridges, then the hopper, say what is loaded.
    materials: list[str] = []
    if printer.tank is not None and printer.tank.material:
        materials.append(printer.tank.material)
    else:
        materials.extend(c.material for c in printer.cartridges if c.material)
        raw_status = printer.raw.get("printer_status")
        hopper = raw_status.get("hopper_material") if isinstance(raw_status, Mapping) else None
        if not materials and isinstance(hopper, str) and hopper:
            materials.append(hopper)
    return PrinterCandidate(
        name=printer.serial,
        machine_types=(printer.machine_type_id,) if printer.machine_type_id else (),
        materials=_unique(materials),
        online=online,
        busy=busy,
        ready=ready,
        ready_detail=ready_word if ready is False else None,
        source=WebApiPrinters.description,
        raw=printer,
    )


# -- Local API devices ---------------------------------------------------------------------------


def _from_device(device: Device, catalogue: Catalogue) -> PrinterCandidate:
    machine_types: tuple[str, ...] = ()
    for machine in catalogue.machines:
        if device.product_name in machine.product_names:
            machine_types = tuple(machine.type_ids)
            break
    raw = device.raw
    materials: list[str] = []
    if device.tank_material_code:
        materials.append(device.tank_material_code)  # the tank decides, as for the Web API
    else:
        cartridges = raw.get("cartridge_data")
        if isinstance(cartridges, Mapping):
            for slot in cartridges.values():
                code = slot.get("cartridgeMaterialCode") if isinstance(slot, Mapping) else None
                if isinstance(code, str) and code:
                    materials.append(code)
        for key in ("cylinder_material_code", "printer_material_code"):
            code = raw.get(key)
            if isinstance(code, str) and code:
                materials.append(code)
    status = (device.status or "").upper()
    online = device.is_connected is not False and status not in _OFFLINE
    busy: str | None = None
    if status in BUSY_PRINT_STATUSES:
        busy = f"busy ({status})"
    elif (device.estimated_print_time_remaining_ms or 0) > 0:
        busy = "printing"
    ready = device.ready_to_print_now
    return PrinterCandidate(
        name=device.id,
        machine_types=machine_types,
        materials=_unique(materials),
        online=online,
        busy=busy,
        ready=ready,
        ready_detail="jobs sent to it wait in its queue" if ready is False else None,
        source=LocalApiDevices.description,
        raw=device,
    )


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
