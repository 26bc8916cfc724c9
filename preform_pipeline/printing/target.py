"""Where a prepared build may print: named printers, ``auto``, or a Fleet Control queue.

A recipe's ``print`` step names one printer (serial or address), a list of printers (any of
them, the first free one), ``auto`` (any printer of the scene's machine type with its material
loaded), or a Fleet Control queue (``fleet_group``). A hot-folder sidecar may choose the printer
for its case (``printer:``), checked against the recipe's machine type. The target is stored with
a waiting build, so a restarted daemon sends it where it was meant to go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from preform_pipeline.recipes.model import AUTO_PRINTER, PRINTER_LIST_SEPARATOR


class PrinterCandidate(Protocol):
    """What a match needs of a printer (``verify.targets.PrinterCandidate`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def machine_types(self) -> tuple[str, ...]: ...
    @property
    def materials(self) -> tuple[str, ...]: ...

__all__ = ["PrintTarget", "PrinterCandidate"]


@dataclass(frozen=True)
class PrintTarget:
    """``names``: the printers (or the one queue) a print may go to; ``auto``: any matching
    printer. ``machine_type`` and ``material`` are the scene's, which ``auto`` matches on."""

    names: tuple[str, ...] = ()
    auto: bool = False
    machine_type: str | None = None
    material: str | None = None

    @classmethod
    def parse(
        cls, text: str | Sequence[str], *, machine_type: str | None, material: str | None
    ) -> PrintTarget:
        """From a print option: ``auto``, ``A``, ``A,B`` or a list ``[A, B]``."""
        items = text.split(PRINTER_LIST_SEPARATOR) if isinstance(text, str) else list(text)
        names = tuple(dict.fromkeys(n.strip() for n in items if n.strip()))
        if len(names) == 1 and names[0].lower() == AUTO_PRINTER:
            return cls((), True, machine_type, material)
        return cls(names, False, machine_type, material)

    def matches(self, printer: PrinterCandidate) -> bool:
        """True when ``printer`` may take this print (whether it is free is asked apart)."""
        if self.names:
            return printer.name in self.names
        if self.machine_type is not None and self.machine_type not in printer.machine_types:
            return False
        return self.material is None or self.material in printer.materials

    def describe(self) -> str:
        if self.auto:
            what = " ".join(x for x in (self.machine_type, self.material) if x)
            return f"any ready {what} printer (auto)".replace("  ", " ")
        return " or ".join(self.names)

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "auto": self.auto,
                "machine_type": self.machine_type, "material": self.material}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PrintTarget:
        data = data or {}
        return cls(
            tuple(str(n) for n in data.get("names", ())),
            bool(data.get("auto", False)),
            data.get("machine_type"),
            data.get("material"),
        )
