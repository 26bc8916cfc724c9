"""``printer: auto``: the first ready printer of the machine type with the material loaded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from preform_pipeline.api import PreFormClient
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.errors import PrinterSelectionError
from preform_pipeline.recipes import validate_recipe
from preform_pipeline.simulator.cloud import records
from preform_pipeline.simulator.cloud.testing import (
    FakeWebApi,
    sample_cartridge,
    sample_print_run,
    sample_printer,
    sample_tank,
)
from preform_pipeline.simulator.devices import group_status, printer_status
from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS
from preform_pipeline.verify import LocalApiDevices, WebApiPrinters, select_printer
from preform_pipeline.verify.targets import is_auto_target

__all__ = ["local_devices_client"]


def _web_printer(
    serial: str,
    *,
    machine: str = "FORM-4-0",
    material: str = "FLGPGR05",
    ready: str = "READY_TO_PRINT_READY",
    status: str = "IDLE",
    current: str | None = None,
) -> dict[str, Any]:
    record = sample_printer(serial=serial, machine_type_id=machine)
    record["printer_status"].update(
        status=status,
        ready_to_print=ready,
        hopper_material=material,
        current_print_run=None
        if current is None
        else records.nested_print_run(sample_print_run(status=current, name="other job")),
    )
    record["tank_status"]["tank"] = records.nested_tank(sample_tank(material=material))
    record["cartridge_status"]["cartridge"] = records.nested_cartridge(
        sample_cartridge(material=material)
    )
    return record


class TestWebApiPrinterStatus:
    """Printer status from the Web API decides which printer takes the print."""

    def test_the_first_printer_that_qualifies_is_chosen(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.printers = [
            _web_printer("Form3-Old", machine="FORM-3-1"),
            _web_printer("Form4-Black", material="FLGPBK05"),
            _web_printer("Form4-Busy", status="PRINTING", current="PRINTING"),
            _web_printer("Form4-Grey"),
            _web_printer("Form4-Grey-2"),
        ]
        chosen = select_printer(client, "FORM-4-0", "FLGPGR05")
        assert chosen.name == "Form4-Grey"
        assert len(fake_api.api_requests()) == 1  # one GET /printers/

    def test_no_printer_qualifying_lists_what_each_one_lacked(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.printers = [
            _web_printer("Form3-Old", machine="FORM-3-1"),
            _web_printer("Form4-Black", material="FLGPBK05"),
            _web_printer("Form4-Busy", current="PREPRINT"),
            _web_printer("Form4-Off", status="OFFLINE"),
            _web_printer("Form4-Wait", ready="READY_TO_PRINT_NOT_READY"),
        ]
        with capture_logs() as logs, pytest.raises(PrinterSelectionError) as caught:
            select_printer(client, "FORM-4-0", "FLGPGR05")
        reasons = dict(caught.value.reasons)
        assert reasons == {
            "Form3-Old": "machine type FORM-3-1, not FORM-4-0",
            "Form4-Black": "FLGPBK05 loaded, not FLGPGR05",
            "Form4-Busy": "printing 'other job' (PREPRINT)",
            "Form4-Off": "offline",
            "Form4-Wait": "not ready to print (READY_TO_PRINT_NOT_READY)",
        }
        assert "Form4-Black: FLGPBK05 loaded, not FLGPGR05" in str(caught.value)
        assert any(e["event"] == "printer_selection_failed" for e in logs)

    def test_printers_already_chosen_in_the_run_are_passed_over(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        fake_api.printers = [_web_printer("Form4-A"), _web_printer("Form4-B")]
        assert select_printer(client, "FORM-4-0", "FLGPGR05", exclude={"Form4-A"}).name == (
            "Form4-B"
        )

    def test_an_account_without_printers_says_so(
        self, client: WebApiClient, fake_api: FakeWebApi
    ) -> None:
        with pytest.raises(PrinterSelectionError, match="no printers are listed"):
            select_printer(WebApiPrinters(client), "FORM-4-0", "FLGPGR05")


def local_devices_client(devices: list[dict[str, Any]]) -> PreFormClient:
    """A Local API client whose server lists ``devices`` (a transport seam, no server)."""
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/devices/"
        return httpx.Response(200, json={"count": len(devices), "devices": devices})

    return PreFormClient(
        "http://127.0.0.1:44388", transport=httpx.MockTransport(answer),
        check_version_on_first_use=False,
    )


class TestLocalApiDevices:
    """Without Web API credentials, the PreFormServer's device list is the source."""

    def test_the_simulated_fleet_gives_the_printer_with_the_material(self) -> None:
        printers = list(DEFAULT_PRINTERS)
        devices = [printer_status(p) for p in printers]
        devices.append(group_status(DEFAULT_GROUPS[0], printers[:2]))
        with local_devices_client(devices) as client:
            assert select_printer(client, "FORM-4-0", "FLGPBK05").name == "SimulatedForm4-2"
            assert select_printer(LocalApiDevices(client), "FORM-3-1", "FLGPGR04").name == (
                "SimulatedForm3-1"
            )

    def test_a_printing_or_unready_device_is_passed_over_with_the_reason(self) -> None:
        busy = replace(DEFAULT_PRINTERS[0], status="PRINTING")
        waiting = replace(DEFAULT_PRINTERS[3], ready_to_print_now=False)
        client = local_devices_client([printer_status(busy), printer_status(waiting)])
        with client, pytest.raises(PrinterSelectionError) as caught:
            select_printer(client, "FORM-4-0", "FLGPGR05")
        assert dict(caught.value.reasons) == {
            "SimulatedForm4-1": "busy (PRINTING)",
            "SimulatedForm4L-1": "machine type FORM-4L-0, not FORM-4-0, not ready to print "
            "(jobs sent to it wait in its queue)",
        }
        assert "Local API devices" in str(caught.value)


@pytest.mark.parametrize(("text", "auto"), [("auto", True), (" AUTO ", True),
                                              ("Form4-Auto", False), ("", False)])
def test_auto_is_recognised_in_any_case(text: str, auto: bool) -> None:
    assert is_auto_target(text) is auto


class TestRecipeCheck:
    """A recipe asking for ``auto`` must say which machine type and material it needs."""

    @pytest.mark.parametrize(
        ("scene", "problems"),
        [
            ("  machine_type: FORM-4-0\n  material_code: FLGPGR05\n  layer_thickness_mm: 0.1\n",
             []),
            ("  machine_type: FORM-4-0\n  fps_file: grey.fps\n",
             ["$.steps[0].print.printer: printer: auto chooses a printer by the scene's "
              "machine_type and material_code; name both in scene (an fps_file does not say "
              "which material is loaded)"]),
        ],
    )
    def test_auto_needs_the_scenes_machine_type_and_material(
        self, tmp_path: Path, scene: str, problems: list[str]
    ) -> None:
        (tmp_path / "grey.fps").write_text("{}", encoding="utf-8")
        path = tmp_path / "recipe.yaml"
        path.write_text(f"name: r\nscene:\n{scene}steps:\n  - print: {{printer: Auto}}\n",
                        encoding="utf-8")
        found = [f"{p.json_path}: {p.message}" for p in validate_recipe(path).problems]
        assert [p for p in found if "auto" in p] == problems
