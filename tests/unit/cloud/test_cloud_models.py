"""Typed results: lenient parsing of Web API answers, ISO 8601 times, the kept raw JSON."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from preform_pipeline.cloud.models import (
    Cartridge,
    Event,
    Printer,
    PrinterGroup,
    PrintRun,
    QueueItem,
    Tank,
    parse_datetime,
)
from preform_pipeline.simulator.cloud.testing import (
    sample_cartridge,
    sample_event,
    sample_group,
    sample_print_run,
    sample_printer,
    sample_queue_item,
    sample_tank,
)

UTC = timezone.utc


class TestParseDatetime:
    """ISO 8601 timestamps become aware datetimes on every supported Python."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2025-01-06T08:00:00Z", datetime(2025, 1, 6, 8, tzinfo=UTC)),
            ("2025-01-06T08:00:00.123Z", datetime(2025, 1, 6, 8, 0, 0, 123_000, tzinfo=UTC)),
            ("2025-01-06T08:00:00.1234567Z", datetime(2025, 1, 6, 8, 0, 0, 123_456, tzinfo=UTC)),
            ("2025-01-06T09:00:00+01:00", datetime(2025, 1, 6, 8, tzinfo=UTC)),
            ("2025-01-06T09:00:00+0100", datetime(2025, 1, 6, 8, tzinfo=UTC)),
            ("2025-01-06T08:00", datetime(2025, 1, 6, 8, tzinfo=UTC)),
            ("2025-01-06 08:00:00", datetime(2025, 1, 6, 8, tzinfo=UTC)),
        ],
    )
    def test_accepted_forms(self, text: str, expected: datetime) -> None:
        parsed = parse_datetime(text)
        assert parsed == expected
        assert parsed is not None and parsed.tzinfo is not None

    @pytest.mark.parametrize("value", [None, "", "yesterday", "2025-13-40T00:00:00Z", 12])
    def test_anything_else_is_none(self, value: object) -> None:
        assert parse_datetime(value) is None


class TestPrintRun:
    """A print run parses its fields, nested success and parts."""

    def test_fields(self) -> None:
        raw = sample_print_run()
        run = PrintRun.from_json(raw)
        assert run.guid == raw["guid"]
        assert run.status == "FINISHED"
        assert run.is_terminal
        assert run.success == "SUCCESS"
        assert run.print_finished_at == run.print_started_at + timedelta(minutes=58)  # type: ignore[operator]
        assert run.group is not None and run.group.name == "Production"
        assert run.parts[0].name == "crown_11.stl"
        assert run.raw is raw

    def test_missing_optional_fields_become_none(self) -> None:
        run = PrintRun.from_json({"guid": "g", "name": "n", "status": "PRINTING"})
        assert (run.volume_ml, run.print_started_at, run.success, run.group) == (
            None,
            None,
            None,
            None,
        )
        assert run.parts == ()
        assert not run.is_terminal

    def test_mistyped_numbers_become_none(self) -> None:
        run = PrintRun.from_json({"guid": "g", "volume_ml": "lots", "layer_count": True})
        assert run.volume_ml is None
        assert run.layer_count is None

    def test_results_are_frozen_and_compare_by_typed_fields(self) -> None:
        first = PrintRun.from_json(sample_print_run())
        second = PrintRun.from_json({**sample_print_run(), "extra_field": 1})
        assert first == second
        with pytest.raises(dataclasses.FrozenInstanceError):
            first.status = "ERROR"  # type: ignore[misc]
        assert "raw" not in repr(first)


class TestPrinter:
    """A printer flattens its status, tank and cartridges."""

    def test_fields(self) -> None:
        printer = Printer.from_json(sample_printer())
        assert printer.serial == "Form4-SweetMatcha"
        assert printer.display_name == "Sweet Matcha"
        assert printer.status == "IDLE"
        assert printer.ready_to_print == "READY_TO_PRINT_READY"
        assert printer.current_print is not None and printer.current_print.status == "FINISHED"
        assert printer.tank is not None and printer.tank.serial == "Tank-Blue-1"
        assert [c.serial for c in printer.cartridges] == ["CartFront-1"]

    def test_a_list_of_cartridge_slots_gives_every_cartridge(self) -> None:
        raw = sample_printer()
        slot = raw["cartridge_status"]
        back = {**slot, "cartridge": {**slot["cartridge"], "serial": "CartBack-1"}}
        raw["cartridge_status"] = [slot, back]
        assert [c.serial for c in Printer.from_json(raw).cartridges] == [
            "CartFront-1",
            "CartBack-1",
        ]

    def test_an_idle_printer_without_a_current_print(self) -> None:
        raw = sample_printer()
        raw["printer_status"]["current_print_run"] = None
        printer = Printer.from_json(raw)
        assert printer.current_print is None
        assert printer.display_name == "Sweet Matcha"
        assert Printer.from_json({**raw, "alias": None}).display_name == "Form4-SweetMatcha"


class TestOtherResults:
    """Tanks, cartridges, events, groups and queue items parse their fields."""

    def test_tank(self) -> None:
        tank = Tank.from_json(sample_tank())
        assert (tank.serial, tank.layers_printed, tank.tank_type) == (
            "Tank-Blue-1",
            12_000,
            "FORM4_LT",
        )

    def test_cartridge_remaining_volume(self) -> None:
        cartridge = Cartridge.from_json(sample_cartridge())
        assert cartridge.remaining_ml == 750.0
        assert Cartridge.from_json({"serial": "x"}).remaining_ml is None

    def test_event_with_its_print_run(self) -> None:
        event = Event.from_json(sample_event())
        assert event.type == "PRINT_FINISHED"
        assert event.print_run is not None and event.print_run.name == "crowns-batch-0001"

    def test_group_with_members(self) -> None:
        group = PrinterGroup.from_json(sample_group())
        assert group.printers == ("Form4-SweetMatcha",)
        assert group.has_fleet_control is True
        assert group.memberships[0].email == "lab-bot@example.com"

    def test_queue_item(self) -> None:
        item = QueueItem.from_json(sample_queue_item())
        assert item.allowed_machine_type_ids == ("FORM-4-0",)
        assert item.volume_ml == 8.25
