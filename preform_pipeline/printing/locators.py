"""Where an accepted print can surface, asked by its job key: the one lookup protocol.

A :class:`PrintLocator` looks for one send (:class:`SendRecord`) in one place and answers a
:class:`Sighting` (the print exists there), None (this place sees every print it should and
this one is not there), or raises :class:`~preform_pipeline.errors.PrintLookupError` (this place
cannot tell right now). The key settles it because it is random, unique to the build, and only
ever appears in the name the build's print was sent with (``embed_key``).

:class:`FleetFolderLocator` reads a simulator's fleet folder (one JSON file per accepted print);
:class:`~preform_pipeline.printing.web.WebApiLocator` asks the Formlabs Web API (prints feed,
Fleet Control queues, the printer's current and previous run). What the answers mean together
is decided in one place only: :mod:`preform_pipeline.printing.owner`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Final, Protocol

from preform_pipeline.errors import PrintLookupError
from preform_pipeline.logging import get_logger
from preform_pipeline.printing.fleetfolder import fleet_job_status
from preform_pipeline.printing.holder import SendHolder
from preform_pipeline.store import Build, extract_key

__all__ = [
    "DEFAULT_FLEET_REPORT_DELAY_S",
    "DEFAULT_FLEET_RECHECK_S",
    "FleetFolderLocator",
    "PrintLocator",
    "SendRecord",
    "Sighting",
]

log = get_logger(__name__)

#: A simulated server writes its job file in the same request that accepts the print.
DEFAULT_FLEET_REPORT_DELAY_S: Final = 0.5
#: Reading a folder is cheap: look again often while an answer may still change.
DEFAULT_FLEET_RECHECK_S: Final = 0.25


@dataclass(frozen=True)
class SendRecord:
    """One send as the store recorded it before the request went out."""

    build_id: int | None
    job_key: str
    job_name: str | None
    printer: str | None
    started_at: datetime
    holder: SendHolder | None

    @classmethod
    def of(cls, build: Build) -> SendRecord:
        return cls(
            build_id=build.id,
            job_key=build.job_key,
            job_name=build.job_name,
            printer=build.printer,
            started_at=build.print_sent_at or build.updated_at,
            holder=SendHolder.from_json(build.send_holder),
        )

    def matches(self, name: str) -> bool:
        """True when a job named ``name`` is this send's print."""
        if self.job_name and name == self.job_name:
            return True
        return extract_key(name) == self.job_key


@dataclass(frozen=True)
class Sighting:
    """Where a send's print turned up."""

    where: str
    job_id: str | None = None
    printer: str | None = None
    status: str | None = None
    name: str = ""


class PrintLocator(Protocol):
    """Looks one send's print up in one place (module docstring)."""

    #: What this place is, for reasons and logs ("the prints feed", ...).
    name: str
    #: How long after a server passed a print on this place may take to show it.
    report_delay_s: float
    #: How often to look again while an answer may still change (rate budgets differ).
    recheck_s: float

    def locate(self, send: SendRecord) -> Sighting | None:
        """The print's sighting, or None; raises PrintLookupError when this place cannot tell."""
        ...


class FleetFolderLocator:
    """Looks prints up in a simulator fleet folder (``<fleet>/jobs/<job id>.json``)."""

    def __init__(
        self,
        fleet_dir: Path,
        *,
        report_delay_s: float = DEFAULT_FLEET_REPORT_DELAY_S,
        recheck_s: float = DEFAULT_FLEET_RECHECK_S,
    ) -> None:
        self.fleet_dir = fleet_dir
        self.name = f"the fleet folder {fleet_dir}"
        self.report_delay_s = report_delay_s
        self.recheck_s = recheck_s

    def locate(self, send: SendRecord) -> Sighting | None:
        folder = self.fleet_dir / "jobs"
        if not folder.is_dir():
            return None
        for path in folder.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                # A job file being written right now: skipping it could read as "absent".
                log.warning("fleet_job_unreadable", path=str(path), error=str(exc))
                raise PrintLookupError(send.job_key, f"{path} cannot be read: {exc}") from exc
            if send.matches(str(data.get("job_name", ""))):
                job_id = data.get("job_id")
                printer = data.get("printer")
                return Sighting(
                    where=self.name,
                    job_id=str(job_id) if job_id else None,
                    printer=str(printer) if printer else None,
                    status=fleet_job_status(data, datetime.now(timezone.utc))[0],
                    name=str(data.get("job_name", "")),
                )
        return None
