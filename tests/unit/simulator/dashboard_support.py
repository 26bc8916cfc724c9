"""Shared pieces of the Dashboard simulator's unit tests: a fixed epoch and snapshot lookups.

Jobs are written into a fleet directory in ``tmp_path`` with ``write_job`` and the fleet is
looked at with ``FleetView.snapshot(now)`` at chosen moments: no test sleeps. ``make_view``
starts with never-printed printers unless asked: these tests count the runs and events of the
jobs they write, and the past print each printer has by default (``history``) would add to every
count; its own tests ask for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from preform_pipeline.simulator.cloud.fleet_view import FleetSnapshot, FleetView
from preform_pipeline.simulator.cloud.outcomes import OutcomePlan

__all__ = ["T0", "at", "make_view", "printer_of", "run_named"]

#: When the simulated Dashboard started and the first job of a test was sent.
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_view(
    fleet: Path,
    *,
    time_scale: float = 1.0,
    outcomes: OutcomePlan | None = None,
    print_history: bool = False,
) -> FleetView:
    return FleetView(
        fleet,
        started_at=T0,
        time_scale=time_scale,
        outcomes=outcomes,
        print_history=print_history,
    )


def run_named(snapshot: FleetSnapshot, name: str) -> dict[str, Any]:
    found = [r for r in snapshot.runs if r["name"] == name]
    assert len(found) == 1, f"expected one run named {name!r}, found {len(found)}"
    return found[0]


def printer_of(snapshot: FleetSnapshot, serial: str) -> dict[str, Any]:
    record = snapshot.printer(serial)
    assert record is not None, f"no printer {serial}"
    return record
