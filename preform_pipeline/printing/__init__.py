"""The single owner of sending a print and resolving an interrupted send (docs/printing.md).

:class:`PrintOwner` writes begin / sent / refused / unconfirmed to the job store and resolves a
send whose outcome is unknown through one lookup protocol (:class:`PrintLocator`) into
found / absent / unknown, with one rule for unknown (UNVERIFIED, never resent automatically).
"""

from __future__ import annotations

from preform_pipeline.printing.fleetfolder import FleetFolderFeed
from preform_pipeline.printing.holder import HolderProbe, SendHolder, holder_gone
from preform_pipeline.printing.locators import (
    FleetFolderLocator,
    PrintLocator,
    SendRecord,
    Sighting,
)
from preform_pipeline.printing.owner import Evidence, PrintOwner, Resolution

__all__ = [
    "Evidence",
    "FleetFolderFeed",
    "FleetFolderLocator",
    "HolderProbe",
    "PrintLocator",
    "PrintOwner",
    "Resolution",
    "SendHolder",
    "SendRecord",
    "Sighting",
    "holder_gone",
]
