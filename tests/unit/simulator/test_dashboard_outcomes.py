"""Forced outcomes: prints that fail or are aborted, printers that go offline, the file format."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import T0, at, make_view, printer_of, run_named

from preform_pipeline.cloud.primitives import parse_datetime
from preform_pipeline.errors import ConfigError
from preform_pipeline.logging import capture_logs
from preform_pipeline.simulator.cloud.outcomes import (
    DEFAULT_ABORTED_MESSAGE,
    Outcome,
    OutcomePlan,
    OutcomeRule,
    OutcomesFile,
    PrinterOutage,
    load_outcomes,
    parse_outcomes,
)
from preform_pipeline.simulator.cloud.records import iso
from preform_pipeline.simulator.cloud.testing import write_job
from preform_pipeline.simulator.fleet import FleetState


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


def plan(**data: object) -> OutcomePlan:
    return parse_outcomes(data)


class TestForcedErrors:
    """A print named by an ERROR or ABORTED rule ends that way, at the fraction given."""

    def test_an_error_ends_the_run_at_its_fraction_with_the_message(self, fleet: Path) -> None:
        write_job(fleet, name="crowns-fail-1", created_at=T0)
        outcomes = plan(
            jobs=[{"name": "*-fail-*", "outcome": "ERROR", "at": 0.65, "message": "Resin low"}]
        )
        view = make_view(fleet, outcomes=outcomes)

        before = run_named(view.snapshot(at(649)), "crowns-fail-1")
        failed = run_named(view.snapshot(at(2000)), "crowns-fail-1")

        assert before["status"] == "PRINTING"
        assert before["message"] is None
        assert failed["status"] == "ERROR"
        assert failed["message"] == "Resin low"
        assert failed["print_finished_at"] == iso(at(650))
        assert failed["currently_printing_layer"] == 51
        assert failed["elapsed_duration_ms"] == 650_000

    def test_an_abort_has_a_default_message(self, fleet: Path) -> None:
        write_job(fleet, name="to-abort", created_at=T0)
        view = make_view(fleet, outcomes=plan(jobs=[{"name": "to-*", "outcome": "ABORTED"}]))

        run = run_named(view.snapshot(at(600)), "to-abort")

        assert run["status"] == "ABORTED"
        assert run["message"] == DEFAULT_ABORTED_MESSAGE
        assert run["print_finished_at"] == iso(at(500))

    def test_the_next_job_starts_when_the_failed_one_stopped(self, fleet: Path) -> None:
        write_job(fleet, name="fails", created_at=T0)
        write_job(fleet, name="next", created_at=at(1))
        view = make_view(fleet, outcomes=plan(jobs=[{"name": "fails", "outcome": "ERROR"}]))

        assert run_named(view.snapshot(at(600)), "next")["print_started_at"] == iso(at(500))

    def test_a_job_id_rule_names_one_job_and_the_first_match_wins(self, fleet: Path) -> None:
        chosen = write_job(fleet, name="same-name", printer="SimulatedForm4-1", created_at=T0)
        write_job(fleet, name="same-name", printer="SimulatedForm4-2", created_at=T0)
        outcomes = plan(
            jobs=[
                {"job_id": chosen, "outcome": "ABORTED", "at": 0.1},
                {"name": "same-*", "outcome": "ERROR", "at": 0.2},
            ]
        )

        runs = make_view(fleet, outcomes=outcomes).snapshot(at(5000)).runs

        assert {r["guid"] == chosen: r["status"] for r in runs} == {True: "ABORTED", False: "ERROR"}

    def test_unmatched_jobs_finish(self, fleet: Path) -> None:
        write_job(fleet, name="fine", created_at=T0)
        view = make_view(fleet, outcomes=plan(jobs=[{"name": "*-fail-*", "outcome": "ERROR"}]))

        assert run_named(view.snapshot(at(1000)), "fine")["status"] == "FINISHED"


class TestOfflinePrinters:
    """A printer that goes offline freezes its print as last reported and starts nothing."""

    def test_a_running_print_freezes_when_its_printer_goes_offline(self, fleet: Path) -> None:
        write_job(fleet, name="interrupted", created_at=T0)
        write_job(fleet, name="never", created_at=at(1))
        outcomes = plan(printers={"SimulatedForm4-1": {"offline_after_s": 650}})
        view = make_view(fleet, outcomes=outcomes)

        snapshot = view.snapshot(at(50_000))

        frozen = run_named(snapshot, "interrupted")
        assert frozen["status"] == "PRINTING"
        assert frozen["currently_printing_layer"] == 51
        assert frozen["print_finished_at"] is None
        assert run_named(snapshot, "never")["status"] == "QUEUED"
        status = printer_of(snapshot, "SimulatedForm4-1")["printer_status"]
        assert status["status"] == "OFFLINE"
        assert status["ready_to_print"] == "READY_TO_PRINT_NOT_READY"
        assert status["last_pinged_at"] == iso(at(650))
        assert [e["type"] for e in snapshot.events] == ["PRINTER_OFFLINE", "PRINT_STARTED"]

    def test_it_is_online_until_then(self, fleet: Path) -> None:
        outcomes = plan(printers={"SimulatedForm4-1": {"offline_at": "2025-03-03T09:10:00Z"}})
        view = make_view(fleet, outcomes=outcomes)

        before = printer_of(view.snapshot(at(599)), "SimulatedForm4-1")["printer_status"]
        after = printer_of(view.snapshot(at(600)), "SimulatedForm4-1")["printer_status"]

        assert before["status"] == "IDLE"
        assert after["status"] == "OFFLINE"

    def test_a_queue_skips_an_offline_member(self, fleet: Path) -> None:
        outcomes = plan(printers={"SimulatedForm4-1": {"offline_after_s": 0}})
        write_job(
            fleet, name="queued", printer="SimulatedGroup-Form4", target_kind="group",
            created_at=at(1),
        )

        run = run_named(make_view(fleet, outcomes=outcomes).snapshot(at(2)), "queued")

        assert run["printer"] == "SimulatedForm4-2"

    def test_offline_in_printers_json_counts_from_when_the_file_was_written(
        self, fleet: Path
    ) -> None:
        FleetState(fleet).update_printer("SimulatedForm4-2", status="OFFLINE")
        now = datetime.now(timezone.utc)
        write_job(fleet, name="sent-anyway", printer="SimulatedForm4-2", created_at=now)

        snapshot = make_view(fleet).snapshot(now)

        assert printer_of(snapshot, "SimulatedForm4-2")["printer_status"]["status"] == "OFFLINE"
        assert run_named(snapshot, "sent-anyway")["status"] == "QUEUED"


class TestOutcomesFile:
    """The outcomes file is JSON or YAML, checked, and re-read when it changes."""

    def test_json_and_yaml_say_the_same(self, tmp_path: Path) -> None:
        data = {
            "jobs": [{"name": "*x*", "outcome": "ERROR", "at": 0.25, "message": "boom"}],
            "printers": {"P-1": {"offline_after_s": 3}},
        }
        as_json = tmp_path / "outcomes.json"
        as_json.write_text(json.dumps(data), encoding="utf-8")
        as_yaml = tmp_path / "outcomes.yaml"
        as_yaml.write_text(
            "jobs:\n  - name: '*x*'\n    outcome: ERROR\n    at: 0.25\n    message: boom\n"
            "printers:\n  P-1:\n    offline_after_s: 3\n",
            encoding="utf-8",
        )

        expected = OutcomePlan(
            rules=(OutcomeRule(Outcome("ERROR", 0.25, "boom"), name="*x*"),),
            outages=(PrinterOutage("P-1", offline_after_s=3.0),),
        )
        assert load_outcomes(as_json) == load_outcomes(as_yaml) == expected

    @pytest.mark.parametrize(
        ("data", "complaint"),
        [
            ({"jobs": [{"name": "a", "outcome": "EXPLODED"}]}, "$.jobs[0].outcome"),
            ({"jobs": [{"outcome": "ERROR"}]}, "exactly one of 'name'"),
            ({"jobs": [{"name": "a", "job_id": "b", "outcome": "ERROR"}]}, "exactly one"),
            ({"jobs": [{"name": "a", "outcome": "ERROR", "at": 1.5}]}, "$.jobs[0].at"),
            ({"jobs": [{"name": "a", "outcome": "ERROR", "when": 1}]}, "unknown key"),
            ({"printers": {"P": {"offline_after_s": -1}}}, "offline_after_s"),
            ({"printers": {"P": {"offline_at": "soon"}}}, "offline_at"),
            ({"extra": 1}, "unknown key"),
        ],
    )
    def test_a_wrong_file_is_refused_saying_where(self, data: object, complaint: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_outcomes(data, "outcomes.yaml")

        assert complaint in str(caught.value)
        assert "outcomes.yaml" in str(caught.value)

    def test_a_change_is_picked_up_and_a_broken_one_ignored(self, tmp_path: Path) -> None:
        path = tmp_path / "outcomes.json"
        path.write_text("{}", encoding="utf-8")
        source = OutcomesFile(path)
        assert source.current() == OutcomePlan()

        path.write_text('{"jobs": [{"name": "x", "outcome": "ABORTED"}]}', encoding="utf-8")
        changed = source.current()
        path.write_text('{"jobs": [', encoding="utf-8")
        with capture_logs() as logs:
            kept = source.current()

        assert changed.outcome_for("id", "x").status == "ABORTED"
        assert kept == changed
        assert [e["event"] for e in logs] == ["outcomes_reload_failed"]

    def test_the_view_reads_the_current_plan_for_every_snapshot(
        self, tmp_path: Path, fleet: Path
    ) -> None:
        path = tmp_path / "outcomes.json"
        path.write_text("{}", encoding="utf-8")
        view = make_view(fleet)
        view.outcomes = OutcomesFile(path)
        write_job(fleet, name="decided-late", created_at=T0)

        first = run_named(view.snapshot(at(2000)), "decided-late")["status"]
        path.write_text('{"jobs": [{"name": "decided-*", "outcome": "ERROR"}]}', "utf-8")
        second = run_named(view.snapshot(at(2000)), "decided-late")["status"]

        assert (first, second) == ("FINISHED", "ERROR")


class TestOutcomesRecordedInTheFleet:
    """Without its own outcomes file the Dashboard shows the end the fleet folder recorded."""

    def test_a_recorded_error_ends_the_run_as_the_job_file_says(self, fleet: Path) -> None:
        (fleet).mkdir(parents=True)
        (fleet / "outcomes.yaml").write_text(
            'jobs:\n  - name: "*-resin-*"\n    outcome: ERROR\n    at: 0.5\n'
            '    message: "Resin level too low"\n', encoding="utf-8")
        state, job = _taken_back(fleet, "crown-resin-1")
        state.record_job(state.schedule(job, 1.0))
        view = make_view(fleet)  # no outcomes of its own

        assert run_named(view.snapshot(at(400)), "crown-resin-1")["status"] == "PRINTING"
        failed = run_named(view.snapshot(at(2000)), "crown-resin-1")
        assert (failed["status"], failed["message"]) == ("ERROR", "Resin level too low")
        assert failed["print_finished_at"] == iso(at(500))

    @pytest.mark.parametrize("unsaid", ["ends_at", "print_time_scale"])
    def test_a_recorded_error_whose_file_does_not_say_when_ends_at_full_length(
        self, fleet: Path, unsaid: str
    ) -> None:
        # A job file written by hand, or by an older simulator: no end recorded, so none
        # earlier than the print's own (s45-mutants).
        _error_recorded(fleet, at_fraction=0.5, unsaid=unsaid)

        failed = run_named(make_view(fleet).snapshot(at(2000)), "crown-resin-1")
        assert failed["status"] == "ERROR"
        assert failed["print_finished_at"] == iso(at(1000))

    def test_a_recorded_error_at_the_print_s_full_length_ends_then(self, fleet: Path) -> None:
        _error_recorded(fleet, at_fraction=1.0)

        failed = run_named(make_view(fleet).snapshot(at(2500)), "crown-resin-1")
        assert (failed["status"], failed["print_finished_at"]) == ("ERROR", iso(at(1000)))
        assert failed["message"] == "Simulated print error"  # no message of its own

    def test_a_print_ended_early_in_the_fleet_folder_finishes_then(self, fleet: Path) -> None:
        state, job = _taken_back(fleet, "crown-ended-early")
        job = state.schedule(job, 1.0)
        # Its end rewritten to 300 s of its 1,000, as a person rehearsing (or a test) ends it.
        state.record_job({**job, "ends_at": iso(at(300))})
        view = make_view(fleet)

        assert run_named(view.snapshot(at(299)), "crown-ended-early")["status"] in (
            "PREPRINT", "PRINTING")
        ended = run_named(view.snapshot(at(300)), "crown-ended-early")
        assert (ended["status"], ended["print_finished_at"]) == ("FINISHED", iso(at(300)))
        assert ended["currently_printing_layer"] == ended["layer_count"]

    def test_a_finish_recorded_at_full_length_is_at_its_natural_end(self, fleet: Path) -> None:
        state, job = _taken_back(fleet, "crown-full")
        # 1,000 s at this scale is 12.3456 s: its end, written to the millisecond, 12.345 s on.
        state.record_job(state.schedule(job, 0.0123456))
        view = make_view(fleet)

        finished = run_named(view.snapshot(at(2000)), "crown-full")
        assert finished["print_finished_at"] == iso(at(1000))

    def test_an_end_written_without_a_zone_is_utc_in_both_simulators(self, fleet: Path) -> None:
        state, job = _taken_back(fleet, "crown-ended-by-hand")
        job = state.schedule(job, 1.0)
        # Ended by hand at 300 s of its 1,000, the moment written without a zone.
        state.record_job({**job, "ends_at": at(300).replace(tzinfo=None).isoformat()})

        ended = run_named(make_view(fleet).snapshot(at(2000)), "crown-ended-by-hand")
        following = state.schedule({**job, "job_id": "following", "created_at": iso(at(1))}, 1.0)

        assert ended["print_finished_at"] == iso(at(300))
        assert parse_datetime(following["started_at"]) == at(300)  # its printer free then

    @pytest.mark.parametrize("outcome", ["FINISHED", "ERROR"])
    @pytest.mark.parametrize("ends_at", ["9999-12-31T23:59:59.999Z", "not a time", 12, None])
    def test_an_end_past_the_print_or_not_a_time_is_its_full_length(
        self, fleet: Path, ends_at: object, outcome: str
    ) -> None:
        state, job = _taken_back(fleet, "crown-odd-end")
        state.record_job({**state.schedule(job, 1.0), "ends_at": ends_at, "outcome": outcome})

        ended = run_named(make_view(fleet).snapshot(at(2000)), "crown-odd-end")

        assert (ended["status"], ended["print_finished_at"]) == (outcome, iso(at(1000)))


def _error_recorded(fleet: Path, *, at_fraction: float, unsaid: str = "") -> None:
    """``crown-resin-1`` (1,000 s) recorded in ``fleet`` by the printing side as failing at
    ``at_fraction`` of its print, its job file without the field ``unsaid``; the Dashboard's
    view has no outcomes of its own."""
    fleet.mkdir(parents=True)
    (fleet / "outcomes.yaml").write_text(
        f'jobs:\n  - name: "*-resin-*"\n    outcome: ERROR\n    at: {at_fraction}\n',
        encoding="utf-8")
    state, queued = _taken_back(fleet, "crown-resin-1")
    state.record_job({k: v for k, v in state.schedule(queued, 1.0).items() if k != unsaid})


def _taken_back(fleet: Path, name: str) -> tuple[FleetState, dict[str, Any]]:
    """A job ``name`` queued at T0 in ``fleet`` and its file taken back, to be recorded again
    by the test as the printing server records it (scheduled, perhaps with an end of its
    own)."""
    state = FleetState(fleet)
    path = state.jobs_dir / f"{write_job(fleet, name=name, created_at=T0)}.json"
    job = json.loads(path.read_text(encoding="utf-8"))
    path.unlink()
    return state, job
