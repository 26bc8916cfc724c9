"""Events: one per reported transition of a print run, carrying the run as it was then."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_support import T0, at, make_view

from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.records import iso
from preform_pipeline.simulator.cloud.testing import write_job


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


class TestTransitions:
    """Each change of a run is an event, once it has happened."""

    def test_a_print_starts_then_finishes(self, fleet: Path) -> None:
        job_id = write_job(fleet, name="job-a", created_at=T0)
        view = make_view(fleet)

        during = view.snapshot(at(999)).events
        after = view.snapshot(at(1000)).events

        assert [e["type"] for e in during] == ["PRINT_STARTED"]
        assert [e["type"] for e in after] == ["PRINT_FINISHED", "PRINT_STARTED"]
        finished, started = after
        assert finished["created_at"] == iso(at(1000))
        assert started["created_at"] == iso(T0)
        assert finished["print_run"]["guid"] == started["print_run"]["guid"] == job_id
        assert started["print_run"]["status"] == "PREPRINT"
        assert finished["print_run"]["status"] == "FINISHED"
        assert finished["printer"] == "SimulatedForm4-1"
        assert finished["tank"] == "SimulatedForm4-1-TANK"
        assert "job-a" in finished["message"]

    def test_a_failed_print_reports_its_error_and_message(self, fleet: Path) -> None:
        write_job(fleet, name="bad", created_at=T0)
        outcomes = parse_outcomes(
            {"jobs": [{"name": "bad", "outcome": "ERROR", "at": 0.5, "message": "Tank leak"}]}
        )

        events = make_view(fleet, outcomes=outcomes).snapshot(at(600)).events

        assert [e["type"] for e in events] == ["PRINT_ERROR", "PRINT_STARTED"]
        assert events[0]["type_label"] == "Print error"
        assert "Tank leak" in events[0]["message"]
        assert events[0]["print_run"]["message"] == "Tank leak"

    def test_an_aborted_print_reports_an_abort(self, fleet: Path) -> None:
        write_job(fleet, name="stop-me", created_at=T0)
        outcomes = parse_outcomes({"jobs": [{"name": "stop-*", "outcome": "ABORTED"}]})

        events = make_view(fleet, outcomes=outcomes).snapshot(at(600)).events

        assert events[0]["type"] == "PRINT_ABORTED"

    def test_a_queued_job_has_no_events_yet(self, fleet: Path) -> None:
        write_job(fleet, name="first", created_at=T0)
        write_job(fleet, name="waiting", created_at=at(1))

        events = make_view(fleet).snapshot(at(500)).events

        assert {e["print_run"]["name"] for e in events} == {"first"}


class TestEventIdentity:
    """An event keeps its id from one poll to the next, and ids do not collide."""

    def test_ids_are_stable_and_unique(self, fleet: Path) -> None:
        for index in range(5):
            write_job(fleet, name=f"job-{index}", printer="SimulatedForm4-2", created_at=at(index))
        view = make_view(fleet, time_scale=0.01)

        early = {(e["print_run"]["guid"], e["type"]): e["id"] for e in view.snapshot(at(15)).events}
        late = {(e["print_run"]["guid"], e["type"]): e["id"] for e in view.snapshot(at(99)).events}

        assert len(set(late.values())) == len(late) == 10
        assert all(late[key] == value for key, value in early.items())
