"""Hostile sidecars: deep nesting is a SidecarError, never a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import SidecarError
from preform_pipeline.hotfolder.sidecar import (
    SidecarValues,
    folder_values,
    is_case_folder,
    model_values,
    read_sidecar,
)


class TestDeepNesting:
    """JSON and YAML nested thousands of levels deep are refused with a reason."""

    @pytest.mark.parametrize("name", ["part.json", "part.yaml"])
    def test_deep_nesting(self, tmp_path: Path, name: str) -> None:
        path = tmp_path / name
        path.write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
        with pytest.raises(SidecarError) as caught:
            read_sidecar(path)
        assert caught.value.reason


def _refusal(path: Path) -> SidecarError:
    with pytest.raises(SidecarError) as caught:
        read_sidecar(path)
    return caught.value


class TestAProblemIsPlacedLikeARecipes:
    """A sidecar's problem at a field is shown as file:line:col and the field's path."""

    def test_an_unknown_field_in_yaml_is_placed_at_its_key(self, tmp_path: Path) -> None:
        path = tmp_path / "C-1042.yaml"
        path.write_text("customer: ACME\n# the rush order\n  \npriorty: 2\n", encoding="utf-8")
        refused = _refusal(path)
        assert (refused.line, refused.column) == (4, 1)
        assert refused.message.startswith(f"{path}:4:1: $.priorty: unknown field 'priorty'; ")
        assert refused.hint == "did you mean 'priority'?"

    def test_an_unknown_field_in_json_is_placed_at_its_key(self, tmp_path: Path) -> None:
        path = tmp_path / "part.json"
        path.write_text('{\n  "customer": "ACME",\n    "colour": "red"\n}\n', encoding="utf-8")
        refused = _refusal(path)
        assert refused.message.startswith(f"{path}:3:5: $.colour: unknown field 'colour'; ")

    @pytest.mark.parametrize(("text", "where", "reason"), [
        ("customer: ACME\npriority:   high\n", "2:13",
         "$.priority: expected a whole number, got 'high'"),
        ("case_id: ''\n", "1:10", "$.case_id: is empty"),
        ("customer:\n  - a\n  - b\n", "1:1", "$.customer: expected text or a number, got list"),
    ])
    def test_a_bad_value_is_placed_at_the_value(
        self, tmp_path: Path, text: str, where: str, reason: str
    ) -> None:
        path = tmp_path / "part.yaml"
        path.write_text(text, encoding="utf-8")
        assert _refusal(path).message == f"{path}:{where}: {reason}"

    @pytest.mark.parametrize(("name", "text", "where"), [
        ("part.json", '{"customer": "ACME",\n "case_id": "C-\\ud8007"}', "2:13"),
        ("part.yaml", 'customer: ACME\ncase_id:  "C-\\U0000DC007"\n', "2:11"),
    ])
    def test_half_a_character_is_placed_at_its_value(
        self, tmp_path: Path, name: str, text: str, where: str
    ) -> None:
        # Session 32: the loader's reading refused the escape, so the refusal had no place.
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert _refusal(path).message.startswith(
            f"{path}:{where}: $.case_id: holds a lone surrogate escape (such as \\ud800, ")

    def test_a_json_pair_of_halves_is_one_character_and_other_problems_keep_their_place(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "part.json"
        path.write_text('{"customer": "\\ud83d\\ude00 ACME",\n  "colour": "red"}',
                        encoding="utf-8")
        assert _refusal(path).message.startswith(f"{path}:2:3: $.colour: unknown field ")
        path.write_text('{"customer": "\\ud83d\\ude00 ACME"}', encoding="utf-8")
        assert read_sidecar(path).fields["customer"] == "\U0001f600 ACME"

    def test_a_key_yaml_reads_as_another_type_keeps_its_file_without_a_place(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "part.yaml"
        path.write_text("true: 1\n", encoding="utf-8")  # the key is the boolean True
        refused = _refusal(path)
        assert (refused.line, refused.column) == (None, None)
        assert refused.message.startswith(f"{path}: $.True: unknown field 'True'; ")


class TestACaseFolderNamedAlone:
    """A folder is one case when a case sidecar marks it, beside it or inside it."""

    @pytest.mark.parametrize(("sidecars", "is_case"), [
        ((), False),
        (("C-1/part.yaml",), False),
        (("C-1/C-1.yaml",), True),
        (("C-1.json",), True),
        (("C-1.json", "C-1/C-1.yaml"), True),  # two: a case whose sidecar is unclear
    ])
    def test_the_case_sidecar_marks_it(
        self, tmp_path: Path, sidecars: tuple[str, ...], is_case: bool
    ) -> None:
        (tmp_path / "C-1").mkdir()
        for name in sidecars:
            (tmp_path / name).write_text("customer: ACME\n", encoding="utf-8")
        assert is_case_folder(tmp_path / "C-1") is is_case


class TestAKeyGivenTwice:
    """Both readers keep the last of two equal keys; a sidecar, like a recipe, says so."""

    @pytest.mark.parametrize(("name", "text", "where"), [
        ("part.yaml", "customer: ACME\npriority: 1\npriority: 5\n", "3:1"),
        ("part.json", '{"customer": "ACME",\n "priority": 1,\n "priority": 5}\n', "3:2"),
    ])
    def test_it_is_refused_at_the_second(
        self, tmp_path: Path, name: str, text: str, where: str
    ) -> None:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        refused = _refusal(path)
        assert refused.message == (
            f"{path}:{where}: $.priority: duplicate key 'priority' (first given at line 2)"
        )
        assert "remove the other" in refused.hint

    def test_json_the_yaml_reader_cannot_read_is_still_taken(self, tmp_path: Path) -> None:
        # A tab before the opening brace is JSON that PyYAML refuses: the check for
        # twice-given keys must not turn it into a refusal.
        path = tmp_path / "part.json"
        path.write_text('\t{"customer": "AC\\/ME",\n "priority": 2}\n', encoding="utf-8")
        values = read_sidecar(path)
        assert dict(values.fields) == {"customer": "AC/ME", "priority": "2"}


class TestANameWithNoRoomForASidecar:
    """A model or case folder named with nearly 255 bytes has no sidecar: `run` ended with
    ``OSError: File name too long`` (exit 70) asking whether ``<name>.yaml`` was a file."""

    def test_a_models_values_are_its_case_folders(self, tmp_path: Path) -> None:
        model = tmp_path / ("m" * 251 + ".stl")  # 255 bytes; "m...m.json" would be 256
        model.write_bytes(b"solid x\nendsolid x\n")
        base = SidecarValues(case_id="C-1")
        assert model_values(model, base) is base

    def test_a_case_folder_gives_its_name_as_the_case(self, tmp_path: Path) -> None:
        folder = tmp_path / ("c" * 252)  # its own sidecar, "c...c.json", would be 257 bytes
        folder.mkdir()
        assert folder_values(folder).case_id == folder.name
        assert not is_case_folder(folder)
