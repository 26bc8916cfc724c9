"""Session 21: ``run`` waiting for a free printer on the PreFormServer's own device list."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
from structlog.testing import capture_logs

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from preform_pipeline.simulator.devices import printer_status
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify import PrintTracking
from tests.unit.recipes.recipe_cases import SLA_RECIPE, validate_text

#: The one Form 4 with the recipe's material (FLGPGR05) among the simulator's printers.
FORM4 = DEFAULT_PRINTERS[0]


class _Plan:
    """The part of a BuildPlan the tracking reads: its name."""

    name = "b-1"


def _devices_until_free(clock: ManualClock, freed_after_sleeps: int,
                        asked: list[str]) -> PreFormClient:
    """A PreFormServer whose only fitting printer prints until the tracking has slept
    ``freed_after_sleeps`` times; ``asked`` collects the requests' paths."""
    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        busy = len(clock.sleeps) < freed_after_sleeps
        printer = replace(FORM4, status="PRINTING" if busy else "IDLE")
        return httpx.Response(200, json={"count": 1, "devices": [printer_status(printer)]})

    return PreFormClient("http://127.0.0.1:44388", transport=httpx.MockTransport(answer),
                         check_version_on_first_use=False)


class TestRunWaitsOnTheServersDevices:
    """Without the Web API, ``run`` reads the PreFormServer's devices every interval until a
    printer that fits is free, and prints there."""

    def test_the_printer_freed_meanwhile_is_chosen(
        self, tmp_path: Path, clock: ManualClock, store: SqliteJobStore
    ) -> None:
        report = validate_text(tmp_path, SLA_RECIPE + "  - save_form\n"
                               "  - print: {printer: auto}\n")
        assert report.recipe is not None
        job = store.create_job(recipe="r", source_path="a.stl", state=JobState.PROCESSING)
        build = store.create_build(recipe="r", job_ids=[job.id])
        asked: list[str] = []
        tracking = PrintTracking(store=store, clock=clock, build_ids={"b-1": build.id},
                                 wait_s=300.0, wait_interval_s=30.0)
        tracker = tracking.for_build(_Plan())  # type: ignore[arg-type]
        with _devices_until_free(clock, 2, asked) as server, capture_logs() as logs:
            chosen = tracker.resolve_printer("auto", report.recipe, server)
        assert chosen == FORM4.serial
        assert clock.sleeps == [30.0, 30.0]
        # The first choice, the check that such a printer exists, then one look per interval.
        assert asked == ["/devices/"] * 4
        assert [(e["event"], e.get("printer")) for e in logs
                if e["event"].startswith("printer_wait")] == [
            ("printer_wait_started", None), ("printer_wait_ended", FORM4.serial)]
