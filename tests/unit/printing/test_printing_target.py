"""A print target as a recipe writes it: one printer, a list, ``auto``, and what it matches."""

from __future__ import annotations

import pytest

from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.verify.targets import PrinterCandidate

FORM4 = "FORM-4-0"
GREY = "FLGPGR05"


def _printer(name: str, machine: str = FORM4, material: str = GREY) -> PrinterCandidate:
    return PrinterCandidate(name, (machine,), (material,), online=True)


class TestParse:
    """A print option reads as named printers in order, once each, or as ``auto``."""

    def test_a_comma_list_keeps_order_and_drops_blanks_and_repeats(self) -> None:
        target = PrintTarget.parse(" A , B,,A ,C", machine_type=FORM4, material=GREY)
        assert target == PrintTarget(("A", "B", "C"), False, FORM4, GREY)

    def test_a_yaml_list_is_taken_as_it_is(self) -> None:
        target = PrintTarget.parse(["Form4-1", " Form4-2 "], machine_type=None, material=None)
        assert target.names == ("Form4-1", "Form4-2") and not target.auto

    def test_a_printer_name_with_spaces_is_one_printer(self) -> None:
        assert PrintTarget.parse("Lab Form 4", machine_type=None, material=None).names == (
            "Lab Form 4",)

    @pytest.mark.parametrize("text", ["auto", "AUTO", " Auto ", ["auto"]])
    def test_auto_in_any_case_means_any_matching_printer(self, text: str | list[str]) -> None:
        target = PrintTarget.parse(text, machine_type=FORM4, material=GREY)
        assert target == PrintTarget((), True, FORM4, GREY)

    def test_auto_among_other_names_is_a_printer_called_auto(self) -> None:
        target = PrintTarget.parse("auto,B", machine_type=FORM4, material=GREY)
        assert target.names == ("auto", "B") and not target.auto

    def test_nothing_named_is_an_empty_target(self) -> None:
        assert PrintTarget.parse(" , ", machine_type=None, material=None) == PrintTarget()


class TestMatches:
    """Named printers match by name; ``auto`` matches machine type and loaded material."""

    def test_named_printers_match_by_name_only(self) -> None:
        target = PrintTarget(("A", "B"), machine_type="FORM-3-0", material="other")
        assert target.matches(_printer("B"))
        assert not target.matches(_printer("C"))

    def test_auto_needs_the_machine_type(self) -> None:
        target = PrintTarget(auto=True, machine_type=FORM4, material=None)
        assert target.matches(_printer("A"))
        assert not target.matches(_printer("A", machine="FORM-3-0"))

    def test_auto_needs_the_material_loaded(self) -> None:
        target = PrintTarget(auto=True, machine_type=None, material=GREY)
        assert target.matches(_printer("A"))
        assert not target.matches(_printer("A", material="FLCL0000"))

    def test_auto_without_machine_or_material_matches_any_printer(self) -> None:
        assert PrintTarget(auto=True).matches(_printer("A", machine="X", material="Y"))


class TestDescribe:
    """People read a target as the printers' names or as 'any ready … printer (auto)'."""

    def test_named_printers_are_joined_with_or(self) -> None:
        assert PrintTarget(("A", "B", "C")).describe() == "A or B or C"

    def test_auto_names_machine_and_material(self) -> None:
        assert PrintTarget(auto=True, machine_type=FORM4, material=GREY).describe() == (
            f"any ready {FORM4} {GREY} printer (auto)")

    def test_auto_with_only_a_material_has_single_spaces(self) -> None:
        assert PrintTarget(auto=True, material=GREY).describe() == (
            f"any ready {GREY} printer (auto)")

    def test_auto_with_nothing_known_has_single_spaces(self) -> None:
        assert PrintTarget(auto=True).describe() == "any ready printer (auto)"


class TestStored:
    """A waiting build's target comes back from the store as it was saved."""

    @pytest.mark.parametrize("target", [
        PrintTarget(("A", "B"), False, FORM4, GREY),
        PrintTarget((), True, FORM4, GREY),
        PrintTarget((), True, None, None),
    ])
    def test_a_target_survives_the_store(self, target: PrintTarget) -> None:
        assert PrintTarget.from_json(target.to_json()) == target

    def test_the_stored_form_has_the_documented_keys(self) -> None:
        assert PrintTarget(("A",), False, FORM4, GREY).to_json() == {
            "names": ["A"], "auto": False, "machine_type": FORM4, "material": GREY}

    @pytest.mark.parametrize("data", [None, {}])
    def test_nothing_stored_is_an_empty_target(self, data: dict[str, object] | None) -> None:
        assert PrintTarget.from_json(data) == PrintTarget()
