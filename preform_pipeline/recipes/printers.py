"""Print targets against the printers that exist: a misspelt printer name fails early.

The names a recipe's print steps use (``printer``, each name of a ``printer`` list,
``printer_ip``, ``fleet_group``) are checked against :class:`KnownPrinters`: the declared
simulated fleet when the pipeline runs simulated, or the device list of a reachable server.
An unknown name is a problem with a "did you mean"; a known printer of another machine type is
a problem too. ``auto`` and templated names (``{printer}``, filled from a sidecar) are checked
when they are known, at run time.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from preform_pipeline.errors import Problem
from preform_pipeline.recipes.model import AUTO_PRINTER
from preform_pipeline.recipes.semantic import Context

__all__ = [
    "KnownPrinter",
    "KnownPrinters",
    "check_printer_names",
    "machine_type_mismatch",
    "print_target_names",
    "unknown_printer_message",
]

_TARGET_KEYS: Final = ("printer", "printer_ip", "fleet_group")


@dataclass(frozen=True)
class KnownPrinter:
    """A name a print may be sent to; ``machine_types`` empty for a queue (checked by the
    server when the print is sent)."""

    name: str
    machine_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnownPrinters:
    """Every name that exists, and where the list came from (for messages).

    ``queues_listed`` is False when the list cannot hold Fleet Control queues: a server lists
    them only once it is logged in to the Dashboard, so a ``fleet_group`` missing from the
    devices of a server that lists none is not known to be wrong (the server checks it when
    the print is sent).
    """

    printers: tuple[KnownPrinter, ...]
    source: str
    queues_listed: bool = True

    def find(self, name: str) -> KnownPrinter | None:
        return next((p for p in self.printers if p.name == name), None)

    def suggestion(self, name: str) -> str | None:
        """The known name closest to ``name``, if one is close."""
        close = difflib.get_close_matches(name, [p.name for p in self.printers], n=1, cutoff=0.6)
        return close[0] if close else None


def print_target_names(options: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(option path below the step, literal name) of every print target an options mapping
    names; ``auto`` and templates are left out."""
    if not isinstance(options, dict):
        return
    for key in _TARGET_KEYS:
        value = options.get(key)
        values: Sequence[Any] = value if isinstance(value, list) else [value]
        for n, item in enumerate(values):
            if not isinstance(item, str) or "{" in item or item.strip().lower() == AUTO_PRINTER:
                continue
            yield ((key, n) if isinstance(value, list) else (key,)), item.strip()


def unknown_printer_message(name: str, known: KnownPrinters) -> str:
    """The one wording of an unknown print target, with a "did you mean" when one is close."""
    close = known.suggestion(name)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown printer {name!r} (not in {known.source}){hint}"


def machine_type_mismatch(
    found: KnownPrinter, machine_type: object, known: KnownPrinters
) -> str | None:
    """The one wording of a known printer of another machine type (None: it fits, or the
    machine type of either is not known)."""
    if not isinstance(machine_type, str) or not machine_type or not found.machine_types:
        return None
    if machine_type in found.machine_types:
        return None
    return (f"printer {found.name!r} is a {'/'.join(found.machine_types)}, not a "
            f"{machine_type} ({known.source})")


def check_printer_names(ctx: Context, known: KnownPrinters) -> Iterator[Problem]:
    """Every literal print target exists in ``known`` and prints the scene's machine type."""
    machine_type = ctx.scene.get("machine_type")
    for step in ctx.of_kind("print"):
        for path, name in print_target_names(dict(step.options)):
            found = known.find(name)
            if found is None and path[0] == "fleet_group" and not known.queues_listed:
                continue
            if found is None:
                yield ctx.problem(
                    step.option_path(*path),
                    f"unknown printer {name!r} (not in {known.source})",
                    known.suggestion(name),
                )
            else:
                mismatch = machine_type_mismatch(found, machine_type, known)
                if mismatch is not None:
                    yield ctx.problem(step.option_path(*path), mismatch)
