"""``preform-pipeline fleet sync`` against a Dashboard simulator subprocess, as a user runs it.

The simulator and the command are real processes talking HTTP on 127.0.0.1; credentials go
through the environment (one of them through a ``*_FILE``), never argv.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.cli import run as cli_run
from preform_pipeline.simulator.cloud.testing import RunningDashboard, start_dashboard
from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS, FleetState

SYNC_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDashboard]:
    fleet = tmp_path_factory.mktemp("fleet-sync") / "fleet"
    # The six Simulated* printers and their one group (the default fleet holds more).
    FleetState(fleet).declare(
        tuple(p for p in DEFAULT_PRINTERS if p.serial.startswith("Simulated")),
        (DEFAULT_GROUPS[0],),
    )
    with start_dashboard(fleet_dir=fleet) as running:
        yield running


def write_settings(folder: Path, dashboard: RunningDashboard) -> Path:
    path = folder / "settings.yaml"
    path.write_text(
        f"""\
cloud:
  base_url: {dashboard.url}
fleet:
  prune: true
  groups:
    - name: Dental lab
      printers: [SimulatedForm4-1, SimulatedForm4-2]
      members:
        - {{email: tech@lab.example, admin: true}}
        - nurse@lab.example
      remote_print: false
    - name: Simulated printers
      printers: [SimulatedForm4B-1, SimulatedForm4L-1, SimulatedForm3-1, SimulatedFuse1-1]
""",
        encoding="utf-8",
    )
    return path


def sync(
    python_exe: str, settings: Path, dashboard: RunningDashboard, *extra: str
) -> subprocess.CompletedProcess[str]:
    secret_file = settings.parent / "client-secret"
    secret_file.write_text(dashboard.credentials.client_secret + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_CLIENT")}
    env["PREFORM_PIPELINE_CLIENT_ID"] = dashboard.credentials.client_id
    env["PREFORM_PIPELINE_CLIENT_SECRET_FILE"] = str(secret_file)
    return subprocess.run(
        [python_exe, "-m", "preform_pipeline", "fleet", "sync", str(settings), *extra],
        env=env, capture_output=True, text=True, timeout=SYNC_TIMEOUT_S, check=False,
    )


def dashboard_groups(dashboard: RunningDashboard) -> dict[str, tuple[str, ...]]:
    with dashboard.client() as client:
        return {g.name: g.printers for g in client.list_groups()}


class TestFleetSync:
    """A dry run shows the plan and changes nothing; a sync applies it; a second finds none."""

    def test_dry_run_then_sync_then_nothing_left(
        self, tmp_path: Path, python_exe: str, dashboard: RunningDashboard
    ) -> None:
        settings = write_settings(tmp_path, dashboard)
        before = dashboard_groups(dashboard)

        dry = sync(python_exe, settings, dashboard, "--dry-run")

        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines() == [
            "plan (6 changes):",
            '  + create group "Dental lab"',
            '  ~ group "Dental lab": remote printing off',
            '  + group "Dental lab": add member tech@lab.example as administrator',
            '  + group "Dental lab": add member nurse@lab.example',
            '  > group "Dental lab": move in SimulatedForm4-1 (from "SimulatedGroup-Form4"), '
            'SimulatedForm4-2 (from "SimulatedGroup-Form4")',
            '  - delete group "SimulatedGroup-Form4"',
            "dry run: nothing was changed",
        ]
        assert dashboard_groups(dashboard) == before

        applied = sync(python_exe, settings, dashboard)

        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.splitlines()[-1] == "applied 6 changes"
        assert dashboard_groups(dashboard) == {
            "Simulated printers": (
                "SimulatedForm4B-1", "SimulatedForm4L-1", "SimulatedForm3-1", "SimulatedFuse1-1"
            ),
            "Dental lab": ("SimulatedForm4-1", "SimulatedForm4-2"),
        }

        again = sync(python_exe, settings, dashboard)

        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [
            "no difference: the Dashboard's groups match the settings"
        ]
        secret = dashboard.credentials.client_secret
        for output in (dry, applied, again):
            assert secret not in output.stdout + output.stderr


class TestRefusals:
    """What cannot be synced fails with a clear message and exit status 1, no traceback."""

    def test_settings_without_a_fleet_section(self, tmp_path: Path) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text("output_root: out\n", encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()

        status = cli_run(["fleet", "sync", str(settings)], out, err)

        assert status == 1
        assert "has no fleet section" in err.getvalue()

    def test_an_unknown_printer_changes_nothing(
        self, tmp_path: Path, python_exe: str, dashboard: RunningDashboard
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"cloud:\n  base_url: {dashboard.url}\nfleet:\n  groups:\n"
            "    - {name: Typo lab, printers: [SimulatedForm4-9]}\n",
            encoding="utf-8",
        )
        before = dashboard_groups(dashboard)

        refused = sync(python_exe, settings, dashboard)

        assert refused.returncode == 1
        assert "'SimulatedForm4-9' is not on the Dashboard account" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert dashboard_groups(dashboard) == before


class TestNamesWithTerminalEscapes:
    """A group so named (YAML's ``\\e`` is ESC) is planned and made with its name shown as
    escapes (a Dashboard of its own: the group is really made)."""

    def test_the_plan_and_done_lines(self, tmp_path: Path, python_exe: str) -> None:
        fleet = tmp_path / "fleet"
        FleetState(fleet).declare(
            tuple(p for p in DEFAULT_PRINTERS if p.serial.startswith("Simulated")),
            (DEFAULT_GROUPS[0],),
        )
        settings = tmp_path / "settings.yaml"
        shown = '"Lab\\x1b]0;owned\\x07\\x1b[2J\\u202e"'
        plan = [f"+ create group {shown}",
                f'> group {shown}: move in SimulatedForm4-1 (from "SimulatedGroup-Form4")']
        with start_dashboard(fleet_dir=fleet) as own:
            settings.write_text(
                f"cloud:\n  base_url: {own.url}\nfleet:\n  groups:\n"
                '    - {name: "Lab\\e]0;owned\\a\\e[2J\\u202e", printers: [SimulatedForm4-1]}\n',
                encoding="utf-8",
            )
            dry = sync(python_exe, settings, own, "--dry-run")
            applied = sync(python_exe, settings, own)
        assert (dry.returncode, applied.returncode) == (0, 0), dry.stderr + applied.stderr
        assert dry.stdout.splitlines()[1:3] == [f"  {line}" for line in plan], dry.stdout
        assert applied.stdout.splitlines()[-3:] == [
            *(f"done: {line}" for line in plan), "applied 2 changes"], applied.stdout
        for done in (dry, applied):
            assert not {"\x1b", "\x07", "\u202e"} & set(done.stdout + done.stderr), done.stdout
