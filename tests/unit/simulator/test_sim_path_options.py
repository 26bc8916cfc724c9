"""The simulators' path options expand ``~`` as the pipeline does: the pipeline starts them
without a shell (``servers.extra_args``), and reads the fleet folder it names itself
(``fleet_dir_of``), so a ``--fleet-dir ~/lab`` taken as written was another folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.commands._printers import fleet_dir_of
from preform_pipeline.settings import Settings
from preform_pipeline.settings.servers import ServerSettings
from preform_pipeline.simulator import cli as server_cli
from preform_pipeline.simulator.cloud import cli as dashboard_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_server_simulator_finds_the_fleet_folder_the_pipeline_reads(home: Path) -> None:
    settings = Settings(servers=ServerSettings(extra_args=("--fleet-dir", "~/lab")))
    config = server_cli.parse_args(list(settings.servers.extra_args))
    assert config.fleet_dir == fleet_dir_of(settings) == home / "lab"


def test_the_last_fleet_folder_named_is_the_one_served_and_read(home: Path) -> None:
    """``run`` appends ``--simulator-arg=--fleet-dir=...`` after a configured one: the
    simulator serves that later folder, so interrupted prints are looked for there too."""
    settings = Settings(servers=ServerSettings(
        extra_args=("--fleet-dir", "~/configured", "--fleet-dir=~/given")))
    config = server_cli.parse_args(list(settings.servers.extra_args))
    assert config.fleet_dir == fleet_dir_of(settings) == home / "given"


def test_the_dashboard_simulator_expands_its_paths(home: Path) -> None:
    config = dashboard_cli.parse_args(
        ["--fleet-dir=~/lab", "--outcomes", "~/outcomes.yaml", "--log-file", "~/d.jsonl"])
    assert (config.fleet_dir, config.outcomes, config.log_file) == (
        home / "lab", home / "outcomes.yaml", home / "d.jsonl")


def test_the_work_folder_too(home: Path) -> None:
    assert server_cli.parse_args(["--work-dir", "~/work"]).work_dir == home / "work"


def test_a_tilde_name_of_no_user_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        server_cli.parse_args(["--fleet-dir", "~no-such-user-38/lab"])
    assert exited.value.code == 2
    assert "argument --fleet-dir" in capsys.readouterr().err
