"""Each simulated printer starts with one finished past print, seen alike everywhere."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import T0, at, make_view, printer_of

from preform_pipeline.cloud.models import parse_datetime
from preform_pipeline.simulator.cloud.filtering import filter_prints
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.testing import write_job
from preform_pipeline.simulator.fleet import FleetState

SERIAL = "SimulatedForm4-1"


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


def _when(text: Any) -> Any:
    parsed = parse_datetime(text)
    assert parsed is not None, f"{text!r} is not a time"
    return parsed


class TestPastPrint:
    """Before anything was sent, every printer's current print is one finished past print."""

    def test_every_printer_has_one_finished_print_from_before_the_start(self, fleet: Path) -> None:
        snapshot = make_view(fleet, print_history=True).snapshot(at(0))
        serials = [p.serial for p in FleetState(fleet).printers()]

        assert serials
        for serial in serials:
            current = printer_of(snapshot, serial)["printer_status"]["current_print_run"]
            (listed,) = snapshot.runs_of(serial)
            assert current["guid"] == listed["guid"] == listed["print_job"]
            assert current["status"] == "FINISHED"
            assert current["name"] and current["material"] and current["material_name"]
            started = _when(current["print_started_at"])
            finished = _when(current["print_finished_at"])
            assert _when(current["created_at"]) < started < finished <= T0 - timedelta(hours=2)
            assert finished >= T0 - timedelta(days=3, hours=1)
            assert current["currently_printing_layer"] == current["layer_count"] > 0
            assert current["estimated_time_remaining_ms"] == 0
            assert printer_of(snapshot, serial)["previous_print_run"] == {}
        assert len({r["guid"] for r in snapshot.runs}) == len(serials)

    def test_it_is_printed_in_the_material_the_printer_has_loaded(self, fleet: Path) -> None:
        snapshot = make_view(fleet, print_history=True).snapshot(at(0))

        for entry in FleetState(fleet).printers():
            (run,) = snapshot.runs_of(entry.serial)
            assert run["material"] == entry.material_code
            assert snapshot.machine_type_of(run) == entry.machine_type_id

    def test_the_same_past_is_shown_by_every_snapshot_and_every_view(self, fleet: Path) -> None:
        first = make_view(fleet, print_history=True).snapshot(at(0)).runs
        again = make_view(fleet, print_history=True).snapshot(at(7200)).runs

        assert first and first == again

    def test_its_start_and_finish_are_events_and_the_tank_counts_it(self, fleet: Path) -> None:
        snapshot = make_view(fleet, print_history=True).snapshot(at(0))
        (run,) = snapshot.runs_of(SERIAL)

        mine = [e for e in snapshot.events if e["print_run"]["guid"] == run["guid"]]
        assert [(e["type"], e["created_at"]) for e in mine] == [
            ("PRINT_FINISHED", run["print_finished_at"]),
            ("PRINT_STARTED", run["print_started_at"]),
        ]
        tank = next(t for t in snapshot.tanks if t["inside_printer"] == SERIAL)
        assert tank["write_count"] == 1
        assert tank["layers_printed"] == run["layer_count"]
        assert tank["last_print_date"] == run["print_started_at"]

    def test_a_date_filter_from_the_start_leaves_it_out(self, fleet: Path) -> None:
        snapshot = make_view(fleet, print_history=True).snapshot(at(0))
        (run,) = snapshot.runs_of(SERIAL)
        sent = run["created_at"]

        after_start = filter_prints(snapshot.runs, {"date__gt": [T0.isoformat()]},
                                    snapshot.machine_type_of)
        on_its_day = filter_prints(snapshot.runs_of(SERIAL), {"date": [sent[:10]]},
                                   snapshot.machine_type_of)

        assert after_start == []
        assert [r["guid"] for r in on_its_day] == [run["guid"]]


class TestPrintingAgain:
    """A new print takes the past one's place; the past one stays in the feed."""

    def test_the_new_print_is_current_and_the_past_one_previous(self, fleet: Path) -> None:
        job_id = write_job(fleet, name="job-a", created_at=T0)
        view = make_view(fleet, print_history=True)
        (past,) = [r for r in view.snapshot(at(0)).runs_of(SERIAL) if r["guid"] != job_id]

        printing = printer_of(view.snapshot(at(400)), SERIAL)
        finished = view.snapshot(at(5000))

        assert printing["printer_status"]["current_print_run"]["guid"] == job_id
        assert printing["printer_status"]["status"] == "PRINTING"
        assert printing["previous_print_run"]["guid"] == past["guid"]
        assert [r["guid"] for r in finished.runs_of(SERIAL)] == [job_id, past["guid"]]

    def test_the_past_print_ends_before_an_older_job_of_the_fleet(self, fleet: Path) -> None:
        sent = T0 - timedelta(days=10)
        write_job(fleet, name="old-job", created_at=sent)
        snapshot = make_view(fleet, print_history=True).snapshot(at(0))

        (past,) = [r for r in snapshot.runs_of(SERIAL) if r["name"] != "old-job"]

        assert _when(past["print_finished_at"]) <= sent - timedelta(hours=2)
        assert printer_of(snapshot, SERIAL)["printer_status"]["current_print_run"]["name"] == (
            "old-job"
        )

    def test_an_offline_printer_still_shows_its_past_print_finished(self, fleet: Path) -> None:
        outcomes = parse_outcomes({"printers": {SERIAL: {"offline_after_s": 0}}})
        snapshot = make_view(fleet, outcomes=outcomes, print_history=True).snapshot(at(10))

        printer = printer_of(snapshot, SERIAL)

        assert printer["printer_status"]["status"] == "OFFLINE"
        assert printer["printer_status"]["current_print_run"]["status"] == "FINISHED"


class TestNeverPrinted:
    """Without a history a printer never printed: no current print, an empty feed."""

    def test_the_current_print_is_null_and_the_feed_empty(self, fleet: Path) -> None:
        snapshot = make_view(fleet, print_history=False).snapshot(at(0))

        assert snapshot.runs == [] and snapshot.events == []
        assert all(p["printer_status"]["current_print_run"] is None for p in snapshot.printers)
