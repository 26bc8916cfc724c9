"""Templates: plain fields only, no code execution, output paths that cannot leave their root."""

from __future__ import annotations

import itertools
import unicodedata
from pathlib import Path

import pytest

from preform_pipeline.errors import TemplateError
from preform_pipeline.recipes.templates import (
    HOTFOLDER_SIDECAR_FIELDS,
    MAX_COMPONENT_CHARS,
    TEMPLATE_FIELDS_BUILTIN,
    available_fields,
    check_template,
    render_output_path,
    render_template,
    sanitize_component,
    template_fields,
)


class TestParsing:
    """Only plain field names are templates; everything that reaches into objects is refused."""

    def test_fields_are_listed(self) -> None:
        assert template_fields("{date}/{case_id}-{build:03d}.form") == {"date", "case_id", "build"}

    def test_literal_braces_are_not_fields(self) -> None:
        assert template_fields("{{not}}-{build}") == {"build"}

    @pytest.mark.parametrize(
        ("template", "complaint"),
        [
            ("{a.__class__}", "attribute or index access"),
            ("{a.__class__.__mro__}", "attribute or index access"),
            ("{a[0]}", "attribute or index access"),
            ("{}", "positional or malformed field"),
            ("{0}", "positional or malformed field"),
            ("{a!r}", "conversion"),
            ("{a!s}", "conversion"),
            ("{a:{b}}", "format spec"),
            ("{a:%Y}", "format spec"),
            ("{a", "malformed braces"),
            ("a}", "malformed braces"),
        ],
    )
    def test_unsafe_templates_are_refused(self, template: str, complaint: str) -> None:
        with pytest.raises(TemplateError, match=complaint):
            template_fields(template)

    def test_rendering_never_evaluates_attributes(self) -> None:
        with pytest.raises(TemplateError):
            render_template("{x.__class__.__init__.__globals__}", {"x": object()})


class TestRendering:
    """Fields are filled from the values given; a missing one is named, with a suggestion."""

    def test_fields_are_filled(self) -> None:
        assert render_template("{recipe}-{build:>4}", {"recipe": "r", "build": 7}) == "r-   7"

    def test_zero_padding_works_for_numbers(self) -> None:
        assert render_template("{build:03d}", {"build": 7}) == "007"

    def test_a_missing_field_is_named_with_a_suggestion(self) -> None:
        with pytest.raises(TemplateError, match=r"no value for field \{cas_id\}") as caught:
            render_template("{cas_id}", {"case_id": "C1"})
        assert "did you mean {case_id}?" in str(caught.value)

    def test_a_spec_that_does_not_fit_the_value_is_an_error(self) -> None:
        with pytest.raises(TemplateError, match="cannot format"):
            render_template("{build:03d}", {"build": "b1"})


class TestFieldScopes:
    """Which fields a template may use depends on how often it is rendered."""

    def test_builtin_fields_are_the_documented_ones(self) -> None:
        assert {
            "recipe", "build", "job", "date", "time", "stem", "model", "machine", "material"
        } == set(
            TEMPLATE_FIELDS_BUILTIN
        )
        assert {"case_id", "priority", "printer"} <= HOTFOLDER_SIDECAR_FIELDS

    def test_model_templates_see_sidecar_and_declared_fields(self) -> None:
        fields = available_fields("model", ["lab_ticket"])
        assert {"stem", "case_id", "lab_ticket"} <= fields

    def test_build_templates_see_no_model_fields(self) -> None:
        assert "stem" not in available_fields("build")
        assert "build" in available_fields("build")
        assert "build" not in available_fields("run")

    def test_an_unknown_field_gets_a_suggestion(self) -> None:
        (issue,) = check_template("{patient}", scope="model")
        assert issue.suggestion == "patient_ref"


class TestOutputPaths:
    """Rendered paths stay inside the root, whatever the field values say."""

    @pytest.mark.parametrize(
        "value",
        [
            "../../etc/passwd", "..", "/etc/passwd", "C:\\Windows\\x", "a/../../b",
            "\x00evil", " .. ",
        ],
    )
    def test_hostile_values_stay_inside_the_root(self, tmp_path: Path, value: str) -> None:
        path = render_output_path("{case_id}/{build}.form", {"case_id": value, "build": "b1"},
                                  tmp_path)
        assert tmp_path.resolve() in path.resolve().parents
        assert path.name == "b1.form"
        assert len(path.relative_to(tmp_path).parts) == 2

    @pytest.mark.parametrize(
        "template", ["../{build}.form", "a/../../{build}.form", "/tmp/{build}.form",
                     "C:/x/{build}.form", "\\\\server\\share\\{build}.form"],
    )
    def test_templates_that_escape_are_refused(self, tmp_path: Path, template: str) -> None:
        with pytest.raises(TemplateError):
            render_output_path(template, {"build": "b1"}, tmp_path)

    def test_an_empty_value_becomes_a_placeholder(self, tmp_path: Path) -> None:
        path = render_output_path("{case_id}/{build}.form", {"case_id": "", "build": "b"},
                                  tmp_path)
        assert path == tmp_path / "_" / "b.form"

    def test_a_symlink_out_of_the_root_is_refused(self, tmp_path: Path) -> None:
        # Needs symlink rights: always there on Linux and macOS, not by default on Windows.
        root = tmp_path / "root"
        root.mkdir()
        (root / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        with pytest.raises(TemplateError, match="outside the output root"):
            render_output_path("out/{build}.form", {"build": "b"}, root)

    def test_a_deeper_symlink_out_of_the_root_is_refused_too(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        (root / "day").mkdir(parents=True)
        (root / "day" / "case").symlink_to(tmp_path, target_is_directory=True)
        with pytest.raises(TemplateError, match="outside the output root"):
            render_output_path("day/case/{build}.form", {"build": "b"}, root)
        # A folder that does not exist yet below the link is still followed through it.
        with pytest.raises(TemplateError, match="outside the output root"):
            render_output_path("day/case/new/{build}.form", {"build": "b"}, root)

    def test_a_symlink_within_the_root_is_followed_and_the_path_kept(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "root"
        (root / "real").mkdir(parents=True)
        (root / "latest").symlink_to(root / "real", target_is_directory=True)
        path = render_output_path("latest/{build}.form", {"build": "b"}, root)
        assert path == root / "latest" / "b.form"

    def test_a_root_reached_through_a_symlink_still_holds_its_outputs(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "disk").mkdir()
        (tmp_path / "outputs").symlink_to(tmp_path / "disk", target_is_directory=True)
        path = render_output_path("{date}/{build}.form", {"date": "d", "build": "b"},
                                  tmp_path / "outputs")
        assert path == tmp_path / "outputs" / "d" / "b.form"

    def test_fields_the_template_does_not_name_are_neither_needed_nor_read(
        self, tmp_path: Path
    ) -> None:
        path = render_output_path("{build}.form", {"build": "b", "note": "../../x"}, tmp_path)
        assert path == tmp_path / "b.form"
        with pytest.raises(TemplateError, match="did you mean"):
            render_output_path("{biuld}.form", {"build": "b", "note": "x"}, tmp_path)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("C-1042", "C-1042"),
            ("a/b\\c:d", "a_b_c_d"),
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("nul.tar.gz", "_nul.tar.gz"),  # s48: the name before its first dot
            ("trailing. ", "trailing"),
            ("tab\there", "tab_here"),
            ("x" * 300, "x" * 120),
        ],
    )
    def test_values_become_windows_safe_names(self, value: str, expected: str) -> None:
        assert sanitize_component(value) == expected

    def test_each_ascii_character_is_kept_or_replaced_as_the_rule_says(self) -> None:
        # Printable ASCII is cleaned without a look-up per character: the same rule, control
        # characters (which are not printable) included.
        for code in range(128):
            char = chr(code)
            refused = char in '<>:"/\\|?*' or code < 32 or code == 127
            expected = "a_b" if refused else f"a{char}b"
            assert sanitize_component(f"a{char}b") == expected, repr(char)

    def test_every_short_ascii_value_is_cleaned_as_the_general_way_cleans_it(self) -> None:
        # The short way for printable ASCII against the general one, written out here: each
        # of the 128 characters alone, doubled, around a reserved name and between dots and
        # spaces, every pair of them, and the names the end of the rule treats apart.
        def general(value: str) -> str:
            cleaned = "".join(
                "_" if c in '<>:"/\\|?*' or unicodedata.category(c) in ("Cc", "Cf") else c
                for c in unicodedata.normalize("NFC", value)
            )
            cleaned = cleaned.strip(" .")[:MAX_COMPONENT_CHARS].rstrip(" .")
            reserved = {"CON", "PRN", "AUX", "NUL"} | {
                f"{kind}{i}" for kind in ("COM", "LPT") for i in range(1, 10)}
            if cleaned.split(".", 1)[0].upper() in reserved:
                cleaned = "_" + cleaned
            return cleaned or "_"

        chars = [chr(code) for code in range(128)]
        values = [form.format(c) for c in chars for form in (
            "{0}", "{0}{0}", "CON{0}", "{0}nul.txt", ".{0}.", " {0} ", "x" * 119 + "{0}y")]
        values += ["".join(pair) for pair in itertools.product(chars, repeat=2)]
        values += ["CON", "con", "Com1", "LPT9.log", "nul .x", "AUX ", "PRN.", ".", "..",
                   "...", " ", "a.", "a. .", " .a. ", "x" * (MAX_COMPONENT_CHARS - 1) + ". y"]
        wrong = [(v, sanitize_component(v), general(v)) for v in values
                 if sanitize_component(v) != general(v)]
        assert wrong == []

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("cafe\u0301", "caf\u00e9"), ("a\u200db", "a_b"), ("\u00e9t\u00e9:1", "\u00e9t\u00e9_1")],
    )
    def test_other_values_are_composed_and_cleaned_of_format_characters(
        self, value: str, expected: str
    ) -> None:
        assert sanitize_component(value) == expected
