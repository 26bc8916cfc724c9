"""The ``dispatch`` section: prepared builds waiting for a free printer (docs/dispatch.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_DISPATCH_NOTIFY_AFTER_S",
    "DEFAULT_DISPATCH_POLL_INTERVAL_S",
    "DEFAULT_RUN_WAIT_S",
    "DispatchSettings",
    "read_dispatch_settings",
]

#: A build waiting for a printer longer than this notifies (once).
DEFAULT_DISPATCH_NOTIFY_AFTER_S: Final = 3600.0
#: How often printer readiness is read while builds wait.
DEFAULT_DISPATCH_POLL_INTERVAL_S: Final = 5.0
#: How long ``run`` waits for a free printer before leaving the build waiting in the store.
DEFAULT_RUN_WAIT_S: Final = 600.0


@dataclass(frozen=True)
class DispatchSettings:
    """Builds waiting for a free printer (docs/dispatch.md)."""

    notify_after_s: float = DEFAULT_DISPATCH_NOTIFY_AFTER_S
    poll_interval_s: float = DEFAULT_DISPATCH_POLL_INTERVAL_S
    run_wait_s: float = DEFAULT_RUN_WAIT_S


def read_dispatch_settings(raw: Mapping[str, Any]) -> DispatchSettings:
    """The section from its raw mapping (already valid against the schema)."""
    return DispatchSettings(**{k: float(v) for k, v in raw.items()})
