"""The Dashboard simulator's clock-driven print runs: phases, timing, queues, printer status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dashboard_support import T0, at, make_view, printer_of, run_named
from structlog.testing import capture_logs

from preform_pipeline.simulator.cloud.records import iso
from preform_pipeline.simulator.cloud.testing import write_job
from preform_pipeline.simulator.fleet import FleetState

# write_job's defaults: a Form 4 job of 100 layers estimated at 1000 s. Form 4 preprint is
# 300 s, so printing runs from +300 s to +1000 s, 7 s per layer.


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


class TestOneRun:
    """A printed job moves PREPRINT -> PRINTING -> FINISHED as the scaled clock passes."""

    def test_it_starts_in_preprint_when_it_is_sent(self, fleet: Path) -> None:
        write_job(fleet, name="job-a", created_at=T0)

        run = run_named(make_view(fleet).snapshot(at(0)), "job-a")

        assert run["status"] == "PREPRINT"
        assert run["print_started_at"] == iso(T0)
        assert run["print_finished_at"] is None
        assert run["currently_printing_layer"] == 0
        assert run["elapsed_duration_ms"] == 0
        assert run["estimated_duration_ms"] == run["estimated_time_remaining_ms"] == 1_000_000

    def test_it_prints_layer_by_layer_after_preprint(self, fleet: Path) -> None:
        write_job(fleet, name="job-a", created_at=T0)
        view = make_view(fleet)

        just_after_preprint = run_named(view.snapshot(at(300)), "job-a")
        halfway = run_named(view.snapshot(at(650)), "job-a")

        assert just_after_preprint["status"] == "PRINTING"
        assert just_after_preprint["currently_printing_layer"] == 1
        assert halfway["status"] == "PRINTING"
        assert halfway["currently_printing_layer"] == 51
        assert halfway["elapsed_duration_ms"] == 650_000
        assert halfway["estimated_time_remaining_ms"] == 350_000

    def test_it_finishes_when_the_estimated_time_has_passed(self, fleet: Path) -> None:
        write_job(fleet, name="job-a", created_at=T0)
        view = make_view(fleet)

        before = run_named(view.snapshot(at(999.9)), "job-a")
        after = run_named(view.snapshot(at(1000)), "job-a")

        assert before["status"] == "PRINTING"
        assert after["status"] == "FINISHED"
        assert after["print_finished_at"] == iso(at(1000))
        assert after["currently_printing_layer"] == 100
        assert after["estimated_time_remaining_ms"] == 0
        assert after["message"] is None

    def test_the_time_scale_shrinks_every_phase(self, fleet: Path) -> None:
        write_job(fleet, name="job-a", created_at=T0)
        view = make_view(fleet, time_scale=0.01)

        assert run_named(view.snapshot(at(2.9)), "job-a")["status"] == "PREPRINT"
        assert run_named(view.snapshot(at(3.0)), "job-a")["status"] == "PRINTING"
        finished = run_named(view.snapshot(at(10)), "job-a")
        assert finished["status"] == "FINISHED"
        assert finished["estimated_duration_ms"] == 10_000

    def test_preprint_takes_at_most_half_of_a_short_print(self, fleet: Path) -> None:
        write_job(fleet, name="short", created_at=T0, estimated_print_time_s=200)

        assert run_named(make_view(fleet).snapshot(at(100)), "short")["status"] == "PRINTING"

    def test_a_job_sent_later_is_not_listed_before_it_is_sent(self, fleet: Path) -> None:
        write_job(fleet, name="later", created_at=at(60))

        assert make_view(fleet).snapshot(at(59)).runs == []


class TestAJobFileWithoutAnEstimate:
    """Session 46: the Web API requires a print run's ``estimated_duration_ms`` (not null),
    so a job file without ``estimated_print_time_s`` (written by hand) cannot be shown; it is
    said, naming the file and the field, and the other jobs are shown as ever."""

    def test_it_is_said_as_unreadable_and_the_others_are_shown(self, fleet: Path) -> None:
        write_job(fleet, name="job-a", created_at=T0)
        hand = write_job(fleet, name="by-hand", created_at=T0)
        path = fleet / "jobs" / f"{hand}.json"
        written = json.loads(path.read_text(encoding="utf-8"))
        del written["estimated_print_time_s"]
        path.write_text(json.dumps(written), encoding="utf-8")

        with capture_logs() as logs:
            runs = make_view(fleet).snapshot(at(0)).runs

        assert [r["name"] for r in runs] == ["job-a"]
        [said] = [e for e in logs if e["event"] == "job_file_unreadable"]
        assert (said["path"], said["error"], said["log_level"]) == (
            str(path), "estimated_print_time_s is missing", "warning")


class TestRunRecord:
    """A run carries what the job was printed with, named as it was printed."""

    def test_it_reports_the_job_as_printed(self, fleet: Path) -> None:
        job_id = write_job(
            fleet,
            name="lab-42/crowns#key=7f3a",
            printer="SimulatedForm4-2",
            created_at=T0,
            material_code="FLGPBK05",
            layer_thickness_mm=0.05,
            layer_count=321,
            volume_ml=12.75,
            models=(("m1", "crown_11"), ("m2", "crown_12")),
        )

        run = run_named(make_view(fleet).snapshot(at(1)), "lab-42/crowns#key=7f3a")

        assert run["guid"] == run["print_job"] == job_id
        assert run["printer"] == "SimulatedForm4-2"
        assert run["material"] == "FLGPBK05"
        assert run["material_name"] == "Black V5"
        assert run["layer_thickness_mm"] == 0.05
        assert run["layer_count"] == 321
        assert run["volume_ml"] == 12.75
        assert run["created_at"] == iso(T0)
        assert [p["name"] for p in run["parts"]] == ["crown_11", "crown_12"]
        assert sum(p["volume_ml"] for p in run["parts"]) == pytest.approx(12.75)
        assert run["harvest_status"] == "FORM_CELL_HARVEST_UNKNOWN"
        assert run["cloud_queue_item"] is None

    def test_adaptive_layers_report_an_average_thickness(self, fleet: Path) -> None:
        write_job(fleet, name="adaptive", created_at=T0, layer_thickness_mm="ADAPTIVE")

        run = run_named(make_view(fleet).snapshot(at(1)), "adaptive")

        assert run["adaptive_thickness"] is True
        assert run["layer_thickness_mm"] == 0.1

    def test_runs_are_listed_newest_first(self, fleet: Path) -> None:
        serials = ["SimulatedForm4-1", "SimulatedForm4-2", "SimulatedForm3-1"]
        for index, serial in enumerate(serials):
            write_job(
                fleet, name=f"job-{index}", printer=serial, created_at=at(index),
                machine_type="FORM-3-1" if serial.endswith("Form3-1") else "FORM-4-0",
            )

        names = [r["name"] for r in make_view(fleet).snapshot(at(10)).runs]

        assert names == ["job-2", "job-1", "job-0"]


class TestOnePrinterAtATime:
    """A printer prints its jobs one after another; other printers print alongside."""

    def test_a_second_job_waits_queued_until_the_first_ends(self, fleet: Path) -> None:
        write_job(fleet, name="first", created_at=T0)
        write_job(fleet, name="second", created_at=at(10))
        view = make_view(fleet)

        waiting = run_named(view.snapshot(at(500)), "second")
        started = run_named(view.snapshot(at(1000)), "second")

        assert waiting["status"] == "QUEUED"
        assert waiting["print_started_at"] is None
        assert started["status"] == "PREPRINT"
        assert started["print_started_at"] == iso(at(1000))
        assert run_named(view.snapshot(at(2000)), "second")["status"] == "FINISHED"

    def test_jobs_on_different_printers_print_at_the_same_time(self, fleet: Path) -> None:
        write_job(fleet, name="one", printer="SimulatedForm4-1", created_at=T0)
        write_job(fleet, name="two", printer="SimulatedForm4-2", created_at=T0)

        snapshot = make_view(fleet).snapshot(at(400))

        assert {r["name"]: r["status"] for r in snapshot.runs} == {
            "one": "PRINTING",
            "two": "PRINTING",
        }

    def test_a_printer_that_does_not_accept_jobs_leaves_them_queued(self, fleet: Path) -> None:
        FleetState(fleet).update_printer("SimulatedForm4-1", ready_to_print_now=False)
        write_job(fleet, name="stuck", created_at=T0)

        snapshot = make_view(fleet).snapshot(at(10_000))

        assert run_named(snapshot, "stuck")["status"] == "QUEUED"
        status = printer_of(snapshot, "SimulatedForm4-1")["printer_status"]
        assert status["ready_to_print"] == "READY_TO_PRINT_NOT_READY"


class TestFleetControlQueue:
    """A job sent to a group waits in its queue until a member printer takes it."""

    GROUP = "SimulatedGroup-Form4"

    def test_it_goes_to_a_free_member_at_once(self, fleet: Path) -> None:
        write_job(fleet, name="queued", printer=self.GROUP, target_kind="group", created_at=T0)

        snapshot = make_view(fleet).snapshot(at(1))

        run = run_named(snapshot, "queued")
        assert run["printer"] == "SimulatedForm4-1"
        assert run["cloud_queue_item"]["id"] == run["guid"]
        assert snapshot.queue(snapshot.resolve_group(self.GROUP) or "") == []

    def test_it_waits_in_the_queue_while_every_member_is_busy(self, fleet: Path) -> None:
        write_job(fleet, name="a", printer="SimulatedForm4-1", created_at=T0)
        write_job(fleet, name="b", printer="SimulatedForm4-2", created_at=at(1))
        write_job(fleet, name="queued", printer=self.GROUP, target_kind="group", created_at=at(5))
        view = make_view(fleet)

        busy = view.snapshot(at(500))
        freed = view.snapshot(at(1000))

        group = busy.resolve_group(self.GROUP)
        assert group is not None
        assert [item["name"] for item in busy.queue(group)] == ["queued"]
        assert "queued" not in [r["name"] for r in busy.runs]
        assert freed.queue(group) == []
        assert run_named(freed, "queued")["printer"] == "SimulatedForm4-1"
        assert run_named(freed, "queued")["print_started_at"] == iso(at(1000))

    def test_a_paused_queue_keeps_its_jobs(self, fleet: Path) -> None:
        printers = FleetState(fleet)
        printers.printers()  # writes the default fleet
        data = printers.printers_path.read_text(encoding="utf-8").replace(
            '"queue_paused": false', '"queue_paused": true'
        )
        printers.printers_path.write_text(data, encoding="utf-8")
        write_job(fleet, name="held", printer=self.GROUP, target_kind="group", created_at=T0)

        snapshot = make_view(fleet).snapshot(at(10_000))

        assert snapshot.runs == []
        group = snapshot.resolve_group("SimulatedQueue-Form4")
        assert group is not None
        assert [item["name"] for item in snapshot.queue(group)] == ["held"]


class TestPrinterStatus:
    """Printers report their status, loaded material, readiness and prints."""

    def test_an_idle_printer_is_ready_with_its_material_loaded(self, fleet: Path) -> None:
        printer = printer_of(make_view(fleet).snapshot(at(0)), "SimulatedForm4-2")

        assert printer["machine_type_id"] == "FORM-4-0"
        assert printer["printer_status"]["status"] == "IDLE"
        assert printer["printer_status"]["ready_to_print"] == "READY_TO_PRINT_READY"
        assert printer["printer_status"]["hopper_material"] == "FLGPBK05"
        assert printer["cartridge_status"]["cartridge"]["material"] == "FLGPBK05"
        assert printer["tank_status"]["tank"]["material"] == "FLGPBK05"
        assert printer["printer_status"]["current_print_run"] is None

    def test_a_printing_printer_is_busy_with_its_current_run(self, fleet: Path) -> None:
        job_id = write_job(fleet, name="job-a", created_at=T0)

        printer = printer_of(make_view(fleet).snapshot(at(400)), "SimulatedForm4-1")

        assert printer["printer_status"]["status"] == "PRINTING"
        assert printer["printer_status"]["ready_to_print"] == "READY_TO_PRINT_NOT_READY"
        current = printer["printer_status"]["current_print_run"]
        assert current["guid"] == job_id
        assert current["status"] == "PRINTING"
        assert "parts" not in current

    def test_after_printing_it_is_idle_again_and_counts_what_it_printed(
        self, fleet: Path
    ) -> None:
        write_job(fleet, name="first", created_at=T0, volume_ml=4.0)
        write_job(fleet, name="second", created_at=at(1), volume_ml=6.0)

        snapshot = make_view(fleet).snapshot(at(5000))
        printer = printer_of(snapshot, "SimulatedForm4-1")

        assert printer["printer_status"]["status"] == "IDLE"
        assert printer["printer_status"]["ready_to_print"] == "READY_TO_PRINT_READY"
        assert printer["printer_status"]["current_print_run"]["name"] == "second"
        assert printer["previous_print_run"]["name"] == "first"
        assert printer["printer_status"]["last_modified"] == iso(at(2000))
        tank = next(t for t in snapshot.tanks if t["inside_printer"] == "SimulatedForm4-1")
        assert tank["layers_printed"] == 200
        cartridge = next(
            c for c in snapshot.cartridges if c["inside_printer"] == "SimulatedForm4-1"
        )
        assert cartridge["volume_dispensed_ml"] == pytest.approx(10.0)

    def test_an_sls_printer_has_no_resin_tank_or_cartridge(self, fleet: Path) -> None:
        snapshot = make_view(fleet).snapshot(at(0))

        assert "SimulatedFuse1-1" not in {t["inside_printer"] for t in snapshot.tanks}
        assert "SimulatedFuse1-1" not in {c["inside_printer"] for c in snapshot.cartridges}
        fuse = printer_of(snapshot, "SimulatedFuse1-1")
        assert fuse["tank_status"]["tank"]["tank_type"] == "BUILD_CHAMBER"
