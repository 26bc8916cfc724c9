"""Was an interrupted print sent? Looking a build's print up instead of sending it again.

A build found in ``PRINT_SENDING`` after a crash (or after a print request that got no
answer) may or may not exist on the printer. It is never resent blindly: a
:class:`PrintLookup` looks for it by the job name it was sent with (which carries the build's
key, see :mod:`preform_pipeline.store.keys`):

``found``
    the print exists: the build is PRINT_SENT, its files go to done/.
``not_found``
    the lookup sees every print of the target and this one is not there. Only trusted once
    ``settle_s`` passed since the send began (a request still on its way could land later);
    then the build is prepared and sent again.
``unknown``
    the lookup cannot tell (no way to list the printer's jobs): the build becomes
    UNVERIFIED, its files go to failed/ with instructions to check the printer.

:class:`FleetDirLookup` reads the simulator's fleet folder (one JSON file per accepted print):
authoritative for simulated printers. Real printers offer no such listing through the Local
API (``get_devices`` lists printers, not their jobs), so :class:`NoLookup` answers
``unknown`` there; a Web API prints-feed lookup can be plugged in through the same protocol.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final, Protocol

from preform_pipeline.logging import get_logger
from preform_pipeline.store import Build, extract_key

__all__ = [
    "DEFAULT_PRINT_SETTLE_S",
    "FleetDirLookup",
    "LookupResult",
    "LookupStatus",
    "NoLookup",
    "PrintLookup",
]

log = get_logger(__name__)

#: A simulated server writes its job file within milliseconds of receiving the request; a
#: few seconds cover a request that was still in flight when the daemon died.
DEFAULT_PRINT_SETTLE_S: Final = 5.0


class LookupStatus(str, Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LookupResult:
    status: LookupStatus
    detail: str = ""
    job_id: str | None = None
    printer: str | None = None


class PrintLookup(Protocol):
    """Finds the print of a build that was being sent; see the module docstring."""

    #: Seconds after the send began before ``not_found`` proves the print does not exist.
    settle_s: float

    def find(self, build: Build) -> LookupResult: ...


class NoLookup:
    """No way to list a printer's jobs: every answer is ``unknown``."""

    settle_s: float = DEFAULT_PRINT_SETTLE_S

    def find(self, build: Build) -> LookupResult:
        target = build.printer or "the printer"
        return LookupResult(
            LookupStatus.UNKNOWN,
            f"the pipeline cannot list the jobs of {target}; the print named "
            f"{build.job_name or build.job_key!r} may or may not have been queued",
        )


class FleetDirLookup:
    """Looks prints up in a simulator fleet folder (``<fleet>/jobs/<job id>.json``)."""

    def __init__(self, fleet_dir: Path, *, settle_s: float = DEFAULT_PRINT_SETTLE_S) -> None:
        self.fleet_dir = fleet_dir
        self.settle_s = settle_s

    def find(self, build: Build) -> LookupResult:
        folder = self.fleet_dir / "jobs"
        if not folder.is_dir():
            return LookupResult(LookupStatus.NOT_FOUND, f"no prints in {folder}")
        for path in folder.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("fleet_job_unreadable", path=str(path), error=str(exc))
                continue
            name = str(data.get("job_name", ""))
            matches = name == build.job_name if build.job_name else (
                extract_key(name) == build.job_key
            )
            if matches:
                return LookupResult(
                    LookupStatus.FOUND,
                    f"found as job {data.get('job_id')} in {folder}",
                    job_id=str(data.get("job_id")) if data.get("job_id") else None,
                    printer=str(data.get("printer")) if data.get("printer") else None,
                )
        return LookupResult(
            LookupStatus.NOT_FOUND,
            f"no print named {build.job_name or build.job_key!r} in {folder}",
        )
