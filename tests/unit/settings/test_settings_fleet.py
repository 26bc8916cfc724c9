"""The settings' fleet section: declared printer groups, read and cross-checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError, SettingsError
from preform_pipeline.settings import FleetGroup, FleetMember, FleetSettings, load_settings


def load(tmp_path: Path, text: str) -> FleetSettings:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env={}).fleet


class TestReading:
    """A fleet section becomes frozen values; without one nothing is declared."""

    def test_groups_members_and_flags_are_read(self, tmp_path: Path) -> None:
        fleet = load(tmp_path, """\
fleet:
  prune: true
  groups:
    - name: Dental lab
      printers: [Form4-A, Form4-B]
      members:
        - tech@lab.example
        - {email: lead@lab.example, admin: true}
      prune_members: true
      remote_print: false
    - name: Models
""")

        assert fleet == FleetSettings(
            groups=(
                FleetGroup(
                    "Dental lab",
                    printers=("Form4-A", "Form4-B"),
                    members=(FleetMember("tech@lab.example"),
                             FleetMember("lead@lab.example", admin=True)),
                    prune_members=True,
                    remote_print=False,
                ),
                FleetGroup("Models"),
            ),
            prune=True,
            declared=True,
        )

    def test_settings_without_a_fleet_section_declare_nothing(self, tmp_path: Path) -> None:
        assert load(tmp_path, "output_root: out\n") == FleetSettings(declared=False)


class TestErrors:
    """A declaration that cannot be synced is refused with the key path."""

    @pytest.mark.parametrize(
        ("text", "wanted"),
        [
            ("fleet:\n  groups:\n    - printers: [A]\n", "'name' is a required property"),
            (f"fleet:\n  groups:\n    - name: {'x' * 41}\n", "is too long"),
            ("fleet:\n  groups:\n    - name: A\n      members: [not-an-email]\n",
             "members[0]"),
            ("fleet:\n  group: []\n", "did you mean 'groups'"),
        ],
    )
    def test_schema_errors(self, tmp_path: Path, text: str, wanted: str) -> None:
        with pytest.raises(SettingsError, match=r"fleet") as caught:
            load(tmp_path, text)
        assert wanted in str(caught.value)

    def test_two_groups_with_one_name(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"\$\.fleet\.groups\[1\]: a second group is named"):
            load(tmp_path, "fleet:\n  groups:\n    - name: A\n    - name: A\n")

    def test_a_printer_in_two_groups(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="'P1' is already in group 'A'"):
            load(tmp_path, "fleet:\n  groups:\n    - {name: A, printers: [P1]}\n"
                           "    - {name: B, printers: [P1]}\n")

    def test_a_member_listed_twice(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="listed twice"):
            load(tmp_path, "fleet:\n  groups:\n    - name: A\n      members:\n"
                           "        - a@lab.example\n        - {email: A@lab.example}\n")
