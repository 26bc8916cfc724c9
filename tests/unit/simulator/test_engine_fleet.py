"""SimEngine fleet: simulated devices, printing into the fleet directory, account, firmware."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.geometry import write_stl
from preform_pipeline.logging import capture_logs
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
SECRET = "hunter2-very-secret"
BENCH = {"serial": "Bench-A", "machine_type_id": "FORM-4-0", "product_name": "Form 4",
         "ip_address": "192.0.2.71", "material_code": "FLGPGR05"}


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


@pytest.fixture
def engine(tmp_path: Path, fleet_dir: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=fleet_dir)


def error_of(engine: SimEngine, op: str, params: dict[str, str], body: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value


@pytest.fixture
def ready_scene(engine: SimEngine, tmp_path: Path) -> dict[str, str]:
    scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
    path = tmp_path / "cube.stl"
    write_stl(path, box_triangles((0, 0, 0), (20, 20, 20)))
    engine.call("import_model", scene, {"file": str(path)})
    return scene


class TestDevices:
    """The default fleet is created on first use and answered in each family's shape."""

    def test_the_default_fleet_is_written_to_the_fleet_dir(
        self, engine: SimEngine, fleet_dir: Path
    ) -> None:
        devices = engine.call("get_devices", {}, None)
        assert devices["count"] == len(DEFAULT_PRINTERS) == len(devices["devices"])
        stored = json.loads((fleet_dir / "printers.json").read_text(encoding="utf-8"))
        assert [p["serial"] for p in stored["printers"]] == [d["id"] for d in devices["devices"]]

    def test_each_family_has_its_own_fields(self, engine: SimEngine) -> None:
        by_id = {d["id"]: d for d in engine.call("get_devices", {}, None)["devices"]}
        assert "tank_id" in by_id["SimulatedForm4-1"]
        assert "form_auto_status" in by_id["SimulatedForm3-1"]
        assert "powder_level" in by_id["SimulatedFuse1-1"]
        assert "tank_id" not in by_id["SimulatedFuse1-1"]

    def test_an_existing_fleet_file_is_used_as_it_is(self, tmp_path: Path, fleet_dir: Path) -> None:
        fleet_dir.mkdir()
        printer = {
            "serial": "Lab-Form4L",
            "machine_type_id": "FORM-4L-0",
            "product_name": "Form 4L",
            "ip_address": "192.0.2.99",
            "material_code": "FLGPGR05",
        }
        (fleet_dir / "printers.json").write_text(json.dumps({"printers": [printer]}))
        engine = SimEngine(fleet_dir=fleet_dir, work_dir=tmp_path / "work")
        devices = engine.call("get_devices", {}, None)["devices"]
        assert [d["id"] for d in devices] == ["Lab-Form4L"]

    def test_get_device_finds_by_serial_or_address(self, engine: SimEngine) -> None:
        assert (
            engine.call("get_device", {"id": "SimulatedForm4L-1"}, None)["product_name"]
            == "Form 4L"
        )
        assert engine.call("get_device", {"id": "192.0.2.16"}, None)["id"] == "SimulatedFuse1-1"

    def test_an_unknown_device_is_a_400(self, engine: SimEngine) -> None:
        error = error_of(engine, "get_device", {"id": "Form9-Nope"}, None)
        assert (error.status, error.code) == (400, "DEVICE_NOT_FOUND")

    def test_discovery_at_an_address_finds_that_printer(self, engine: SimEngine) -> None:
        found = engine.call("discover_devices", {}, {"ip_address": "192.0.2.11"})
        assert (found["count"], found["devices"][0]["id"]) == (1, "SimulatedForm4-1")

    def test_discovery_at_an_empty_address_fails(self, engine: SimEngine) -> None:
        error = error_of(engine, "discover_devices", {}, {"ip_address": "192.0.2.250"})
        assert error.code == "PRINTER_IP_NOT_FOUND"

    def test_fleet_control_groups_show_only_when_logged_in(self, engine: SimEngine) -> None:
        before = engine.call("get_devices", {}, None)["count"]
        engine.call("login", {}, {"username": "lab", "password": SECRET})
        devices = engine.call("get_devices", {}, None)["devices"]
        assert len(devices) == before + len(DEFAULT_GROUPS)
        queues = [d["dashboard_queue_id"] for d in devices if "dashboard_queue_id" in d]
        assert queues == [g.queue_id for g in DEFAULT_GROUPS]

    def test_can_print_leaves_out_offline_printers(
        self, engine: SimEngine, fleet_dir: Path
    ) -> None:
        engine.fleet.update_printer("SimulatedForm3-1", status="OFFLINE")
        ids = [d["id"] for d in engine.call("get_devices", {"can_print": "true"}, None)["devices"]]
        assert "SimulatedForm3-1" not in ids and "SimulatedForm4-1" in ids


class TestPrinting:
    """A print writes one job file with what the Dashboard simulator needs."""

    def test_a_print_records_a_job_file(
        self, engine: SimEngine, ready_scene: dict[str, str], fleet_dir: Path
    ) -> None:
        answer = engine.call(
            "print", ready_scene, {"printer": "SimulatedForm4-1", "job_name": "Lot 1"}
        )
        job_id = answer["job_id"]
        assert uuid.UUID(job_id)
        job = json.loads((fleet_dir / "jobs" / f"{job_id}.json").read_text(encoding="utf-8"))
        assert (job["job_name"], job["printer"], job["status"]) == (
            "Lot 1",
            "SimulatedForm4-1",
            "PRINTING",
        )
        assert job["scene_settings"]["material_code"] == "FLGPGR05"
        assert job["layer_count"] == 200
        assert job["volume_ml"] == pytest.approx(8.0)
        assert job["estimated_print_time_s"] > 0
        assert datetime.fromisoformat(job["created_at"].replace("Z", "+00:00")).tzinfo is not None
        assert engine.fleet.jobs()[0]["job_id"] == job_id
        assert list((fleet_dir / "jobs").glob("*.tmp")) == []

    def test_a_printer_can_be_named_by_address(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        engine.call(
            "print", ready_scene, {"printer": "192.0.2.12", "job_name": "x", "print_now": False}
        )
        (job,) = engine.fleet.jobs()
        assert (job["printer"], job["status"]) == ("SimulatedForm4-2", "QUEUED")

    def test_an_unknown_printer_is_refused(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        error = error_of(engine, "print", ready_scene, {"printer": "Nope", "job_name": "x"})
        assert (error.status, error.code) == (400, "PRINTER_NOT_FOUND")
        assert engine.fleet.jobs() == []

    def test_an_unknown_printer_is_never_adopted_and_the_error_names_the_closest(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        body = {"printer": "SimulatedFrom4-1", "job_name": "x"}
        error = error_of(engine, "print", ready_scene, body)
        assert error.code == "PRINTER_NOT_FOUND"
        assert "did you mean 'SimulatedForm4-1'?" in error.message
        assert "declared fleet" not in error.message  # the default fleet: nothing to restore
        assert "SimulatedFrom4-1" not in {p.serial for p in engine.fleet.printers()}

    def test_a_declared_fleet_replaces_the_fleet_folders_printers(
        self, tmp_path: Path, fleet_dir: Path
    ) -> None:
        first = SimEngine(work_dir=tmp_path / "w1", fleet_dir=fleet_dir)
        first.fleet.printers()  # default
        first.close()  # ended: the folder may hold another fleet now
        declared = [{"serial": "Lab-1", "machine_type_id": "FORM-4-0", "product_name": "Form 4",
                     "ip_address": "192.0.2.200", "material_code": "FLGPGR05"}]
        engine = SimEngine(
            work_dir=tmp_path / "w2", fleet_dir=fleet_dir, declared_printers=declared
        )
        assert [p.serial for p in engine.fleet.printers()] == ["Lab-1"]

    def test_a_start_without_a_declared_fleet_restores_the_default_printers(
        self, tmp_path: Path, fleet_dir: Path
    ) -> None:
        """A rehearsal's declared printers must not stay what the next default run prints to
        (the README's recipe names Form4-CapableClam); its print history stays."""
        rehearsal = SimEngine(
            work_dir=tmp_path / "w1", fleet_dir=fleet_dir, declared_printers=[BENCH]
        )
        scene = {"scene_id": rehearsal.call("create_scene", {}, FORM4)["id"]}
        write_stl(tmp_path / "cube.stl", box_triangles((0, 0, 0), (20, 20, 20)))
        rehearsal.call("import_model", scene, {"file": str(tmp_path / "cube.stl")})
        job_id = rehearsal.call("print", scene, {"printer": "Bench-A", "job_name": "r"})["job_id"]
        rehearsal.close()  # the rehearsal ended
        with capture_logs() as logs:
            default = SimEngine(work_dir=tmp_path / "w2", fleet_dir=fleet_dir)
        # Restored at start, before any request: a Dashboard simulator reads the folder.
        restored = [e for e in logs if e["event"] == "fleet_default_restored"]
        assert [e["replaced"] for e in restored] == [["Bench-A"]]
        assert default.fleet.printers() == list(DEFAULT_PRINTERS)
        assert default.fleet.groups() == list(DEFAULT_GROUPS)
        assert [j["job_id"] for j in default.fleet.jobs()] == [job_id]
        assert not default.fleet.is_declared()

    def test_a_declared_fleet_stays_declared_when_a_printer_changes(
        self, tmp_path: Path, fleet_dir: Path
    ) -> None:
        """A firmware update (or the Dashboard marking one offline) rewrites printers.json;
        losing the mark would make the rehearsal's printers the user's own for good."""
        declared = SimEngine(
            work_dir=tmp_path / "w1", fleet_dir=fleet_dir, declared_printers=[BENCH]
        )
        declared.fleet.update_printer("Bench-A", status="OFFLINE")
        assert declared.fleet.is_declared()
        declared.close()
        default = SimEngine(work_dir=tmp_path / "w2", fleet_dir=fleet_dir)
        assert default.fleet.printers() == list(DEFAULT_PRINTERS)

    def test_a_refusal_in_a_declared_fleet_says_how_to_get_the_default_back(
        self, tmp_path: Path, fleet_dir: Path
    ) -> None:
        engine = SimEngine(work_dir=tmp_path / "w", fleet_dir=fleet_dir, declared_printers=[BENCH])
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        write_stl(tmp_path / "cube.stl", box_triangles((0, 0, 0), (20, 20, 20)))
        engine.call("import_model", scene, {"file": str(tmp_path / "cube.stl")})
        error = error_of(engine, "print", scene, {"printer": "Form4-CapableClam", "job_name": "x"})
        assert error.code == "PRINTER_NOT_FOUND"
        assert f"the declared fleet in {fleet_dir}" in error.message
        assert "without a declared fleet to get the default printers back" in error.message

    def test_a_printer_of_another_type_is_refused(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        body = {"printer": "SimulatedFuse1-1", "job_name": "x"}
        assert error_of(engine, "print", ready_scene, body).code == "MACHINE_TYPE_MISMATCH"

    def test_an_empty_scene_is_not_printed(self, engine: SimEngine) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {"printer": "SimulatedForm4-1", "job_name": "x"}
        assert error_of(engine, "print", scene, body).code == "EMPTY_SCENE"

    def test_models_out_of_bounds_are_not_printed(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        model_id = engine.call("get_scene", ready_scene, None)["models"][0]["id"]
        engine.call(
            "update_model",
            {**ready_scene, "id": model_id},
            {"position": {"x": 150, "y": 0, "z": 0}},
        )
        body = {"printer": "SimulatedForm4-1", "job_name": "x"}
        assert error_of(engine, "print", ready_scene, body).code == "MODELS_OUT_OF_BOUNDS"

    def test_print_now_on_a_busy_printer_is_refused(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        engine.fleet.update_printer("SimulatedForm4-1", ready_to_print_now=False, status="PRINTING")
        body = {"printer": "SimulatedForm4-1", "job_name": "x", "print_now": True}
        assert error_of(engine, "print", ready_scene, body).code == "PRINTER_NOT_READY"
        queued = engine.call("print", ready_scene, {**body, "print_now": False})
        assert engine.fleet.jobs()[0]["job_id"] == queued["job_id"]

    def test_a_printer_is_busy_while_it_prints_on_the_scaled_estimate(
        self, tmp_path: Path, engine: SimEngine, fleet_dir: Path
    ) -> None:
        busy = SimEngine(work_dir=tmp_path / "busy", fleet_dir=fleet_dir, print_time_scale=1.0)
        ready_scene = {"scene_id": busy.call("create_scene", {}, FORM4)["id"]}
        path = tmp_path / "cube.stl"
        write_stl(path, box_triangles((0, 0, 0), (20, 20, 20)))
        busy.call("import_model", ready_scene, {"file": str(path)})
        busy.call("print", ready_scene, {"printer": "SimulatedForm4-1", "job_name": "x"})
        (job,) = busy.fleet.jobs()
        devices = {d["id"]: d for d in busy.call("get_devices", {}, None)["devices"]}
        printing = devices["SimulatedForm4-1"]
        assert (printing["status"], printing["ready_to_print_now"]) == ("PRINTING", False)
        left_s = printing["estimated_print_time_remaining_ms"] / 1000
        assert 0 < left_s <= job["estimated_print_time_s"]
        assert devices["SimulatedForm4-2"]["ready_to_print_now"] is True
        body = {"printer": "SimulatedForm4-1", "job_name": "y", "print_now": True}
        assert error_of(busy, "print", ready_scene, body).code == "PRINTER_NOT_READY"
        # The engine without a print time scale sees the same job as over at once.
        free = {d["id"]: d for d in engine.call("get_devices", {}, None)["devices"]}
        assert free["SimulatedForm4-1"]["ready_to_print_now"] is True

    def test_a_fleet_control_queue_needs_a_login(
        self, engine: SimEngine, ready_scene: dict[str, str]
    ) -> None:
        body = {"printer": "SimulatedQueue-Form4", "job_name": "x"}
        assert error_of(engine, "print", ready_scene, body).code == "NOT_LOGGED_IN"
        engine.call("login", {}, {"access_token": "token"})
        engine.call("print", ready_scene, body)
        (job,) = engine.fleet.jobs()
        assert (job["printer"], job["target_kind"], job["status"]) == (
            "SimulatedGroup-Form4",
            "group",
            "QUEUED",
        )

    @pytest.mark.parametrize(
        "body",
        [
            {"printer": "SimulatedForm4-1"},
            {"job_name": "x"},
            {"printer": "SimulatedForm4-1", "job_name": "x", "find_printer_timeout_seconds": -1},
        ],
    )
    def test_incomplete_bodies_are_invalid(
        self, engine: SimEngine, ready_scene: dict[str, str], body: dict[str, Any]
    ) -> None:
        assert error_of(engine, "print", ready_scene, body).code == "INVALID_BODY"


class TestAccount:
    """A simulated Dashboard account: tokens out, user info in, passwords never echoed."""

    def test_no_user_before_login(self, engine: SimEngine) -> None:
        error = error_of(engine, "get_user", {}, None)
        assert (error.status, error.code) == (404, "NOT_LOGGED_IN")

    def test_login_gives_tokens_and_a_user(self, engine: SimEngine) -> None:
        with capture_logs() as logs:
            tokens = engine.call("login", {}, {"username": "lab@example.org", "password": SECRET})
        assert set(tokens) == {"access_token", "refresh_token"}
        user = engine.call("get_user", {}, None)
        assert user["email"] == "lab@example.org"
        assert SECRET not in json.dumps([tokens, user, logs])

    def test_an_empty_password_is_refused(self, engine: SimEngine) -> None:
        error = error_of(engine, "login", {}, {"username": "lab", "password": ""})
        assert error.code == "INVALID_CREDENTIALS"
        assert error_of(engine, "get_user", {}, None).status == 404

    def test_mixing_the_two_login_forms_is_invalid(self, engine: SimEngine) -> None:
        body = {"username": "lab", "password": SECRET, "access_token": "t"}
        error = error_of(engine, "login", {}, body)
        assert error.code == "INVALID_BODY" and SECRET not in error.error_message

    def test_logout_forgets_the_user(self, engine: SimEngine) -> None:
        engine.call("login", {}, {"access_token": "t"})
        assert engine.call("logout", {}, None) == {}
        assert error_of(engine, "logout", {}, None).code == "NOT_LOGGED_IN"


class TestFirmware:
    """upload-firmware records the new version on the printer."""

    def test_the_version_is_the_file_stem(self, engine: SimEngine, tmp_path: Path) -> None:
        firmware = tmp_path / "form4-public-2.0.0-100.formware"
        firmware.write_bytes(b"firmware")
        body = {"printer": "SimulatedForm4-1", "file_path": str(firmware)}
        answer = engine.call("upload_firmware", {}, body)
        assert answer["devices"][0]["firmware_version"] == "form4-public-2.0.0-100"
        assert engine.call("get_device", {"id": "SimulatedForm4-1"}, None)["firmware_version"] == (
            "form4-public-2.0.0-100"
        )

    def test_other_files_are_refused(self, engine: SimEngine, tmp_path: Path) -> None:
        other = tmp_path / "notes.txt"
        other.write_text("x")
        body = {"printer": "SimulatedForm4-1", "file_path": str(other)}
        assert error_of(engine, "upload_firmware", {}, body).code == "INVALID_FIRMWARE_FILE"
