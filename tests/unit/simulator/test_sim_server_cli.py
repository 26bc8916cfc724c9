"""The simulator's command line: flags, checks and the immediate exits."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pytest

from preform_pipeline.simulator.cli import (
    DEFAULT_PORT,
    DEFAULT_SCENE_CACHE_SIZE,
    EXIT_FAILURE,
    EXIT_INJECTED_FAULT,
    EXIT_USAGE,
    _default_work_dir,
    default_fleet_dir,
    parse_args,
    run,
)
from preform_pipeline.simulator.faults import FaultPlan
from preform_pipeline.simulator.server import load_engine
from preform_pipeline.simulator.testing import STAND_IN_ENGINE, StandInEngine
from tests.small_disk import SmallDisk


class TestParseArgs:
    """Every flag lands in the configuration; nonsense is a usage error."""

    def test_defaults_match_preformserver(self) -> None:
        config = parse_args([])
        assert (config.host, config.port) == ("127.0.0.1", DEFAULT_PORT)
        assert config.scene_cache_size == DEFAULT_SCENE_CACHE_SIZE
        assert (config.latency, config.time_scale) == ("instant", 1.0)
        assert config.faults == FaultPlan()
        assert config.fleet_dir is None and config.work_dir is None

    def test_server_and_latency_flags(self, tmp_path: Path) -> None:
        config = parse_args(
            [
                "--port", "0", "--host", "0.0.0.0", "--scene-cache-size", "7",
                "--fleet-dir", str(tmp_path / "f"), "--work-dir", str(tmp_path / "w"),
                "--latency", "realistic", "--time-scale", "0.01",
                "--log-file", str(tmp_path / "log.jsonl"),
            ]
        )  # fmt: skip
        assert (config.port, config.host, config.scene_cache_size) == (0, "0.0.0.0", 7)
        assert (config.fleet_dir, config.work_dir) == (tmp_path / "f", tmp_path / "w")
        assert (config.latency, config.time_scale) == ("realistic", 0.01)
        assert config.log_file == tmp_path / "log.jsonl"

    def test_fault_flags(self) -> None:
        config = parse_args(
            [
                "--exit-after-requests", "5", "--exit-during", "auto_support",
                "--hang", "estimatePrintTime", "--error-rate", "0.25", "--seed", "42",
                "--slow-start", "1.5", "--fail-start",
            ]
        )  # fmt: skip
        assert config.faults == FaultPlan(
            exit_after_requests=5,
            exit_during="auto_support",
            hang="estimate_print_time",
            error_rate=0.25,
            seed=42,
            slow_start_s=1.5,
            fail_start=True,
        )

    @pytest.mark.parametrize(
        "argv",
        [
            ["--hang", "auto_magic"],
            ["--exit-during", "get_operation"],
            ["--error-rate", "1.5"],
            ["--port", "70000"],
            ["--latency", "sluggish"],
            ["--slow-start", "-1"],
            ["--exit-after-requests", "-3"],
        ],
        ids=" ".join,
    )
    def test_nonsense_is_a_usage_error(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as caught:
            parse_args(argv)
        assert caught.value.code == EXIT_USAGE
        assert "error:" in capsys.readouterr().err


class TestRun:
    """``run`` returns exit statuses instead of exiting."""

    def test_fail_start_prints_an_error_and_exits_with_the_fault_status(self) -> None:
        stdout, stderr = io.StringIO(), io.StringIO()
        assert run(["--fail-start"], stdout, stderr) == EXIT_INJECTED_FAULT
        assert "simulated start-up failure" in stderr.getvalue()
        assert "READY FOR INPUT" not in stdout.getvalue()

    def test_a_usage_error_is_status_two(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert run(["--port", "x"], io.StringIO(), io.StringIO()) == EXIT_USAGE


class TestDefaultFleetDir:
    """The default fleet directory is per user, under the platform's data directory."""

    def test_it_is_below_the_home_or_data_directory(self) -> None:
        path = default_fleet_dir()
        assert path.parts[-3:] == ("preform-pipeline", "simulator", "fleet")
        assert path.is_absolute()


class TestLoadEngine:
    """The engine is built lazily with the agreed keyword constructor."""

    def test_the_options_reach_the_engine_constructor(self, tmp_path: Path) -> None:
        engine = load_engine(
            scene_cache_size=7,
            fleet_dir=tmp_path / "fleet",
            work_dir=tmp_path / "work",
            factory=STAND_IN_ENGINE,
        )
        assert isinstance(engine, StandInEngine)
        assert (engine.scene_cache_size, engine.fleet_dir, engine.work_dir) == (
            7,
            tmp_path / "fleet",
            tmp_path / "work",
        )

    def test_the_default_is_the_real_engine(self, tmp_path: Path) -> None:
        engine = load_engine(scene_cache_size=3, fleet_dir=tmp_path, work_dir=tmp_path)
        assert type(engine).__name__ == "SimEngine"
        assert engine.call("get_api_version", {}, None)["version"]

    def test_a_missing_engine_module_raises(self, tmp_path: Path) -> None:
        with pytest.raises(ModuleNotFoundError):
            load_engine(
                scene_cache_size=1, fleet_dir=None, work_dir=tmp_path, factory="nowhere_x:Engine"
            )


class TestDefaultWorkDir:
    """Without --work-dir each simulator gets a fresh directory; dead ones' are swept."""

    def test_a_start_removes_work_dirs_of_dead_processes_only(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        root = tmp_path / f"preform-pipeline-{os.getuid()}" / "simulator" / "work"
        dead = root / "999999999-abc"
        alive = root / f"{os.getpid()}-def"
        for folder in (dead, alive):
            folder.mkdir(parents=True)
        fresh = _default_work_dir()
        assert not dead.exists() and alive.exists()
        assert fresh.parent == root and fresh.name.startswith(f"{os.getpid()}-")

    @pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX local paths: user ids")
    def test_the_folder_is_the_users_own_whatever_the_environment_says(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without USER (cron, ``env -i``) every user was "user": one folder for all."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        monkeypatch.delenv("USER", raising=False)
        monkeypatch.delenv("USERNAME", raising=False)
        fresh = _default_work_dir()
        mine = tmp_path / f"preform-pipeline-{os.getuid()}"
        assert fresh.parent == mine / "simulator" / "work"
        assert mine.stat().st_mode & 0o777 == 0o700

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="giving a folder to another user needs root",
    )
    def test_a_folder_of_that_name_another_user_owns_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Root could write into it; its files would still be where that user can replace them."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        theirs = tmp_path / f"preform-pipeline-{os.getuid()}"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)
        with pytest.raises(PermissionError) as refused:
            _default_work_dir()
        assert str(refused.value) == (
            f"{theirs} belongs to user id 65534, not a folder of this user (id {os.getuid()}): "
            "the simulator keeps its files only in a folder of its own; remove it, or set "
            "TMPDIR to a folder of yours"
        )
        assert list(theirs.iterdir()) == []
        # The simulator's start says so and exits 1; the pool shows this in its start-up error.
        log = tmp_path / "simulator.jsonl"
        assert run(["--port", "0", "--log-file", str(log)], io.StringIO(),
                   io.StringIO()) == EXIT_FAILURE
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        assert [(e["reason"], e["error"]) for e in events if e["event"] == "start_failed"] == [
            ("cannot make or use its folders", str(refused.value))]


class TestAFullFleetDisk:
    """A fleet folder on a full disk: the start fails with the file and what helps, and
    leaves no empty member record for the next start to stumble on."""

    def test_said_with_the_file_and_no_record_left(
        self, small_disk: SmallDisk, tmp_path: Path
    ) -> None:
        fleet = small_disk.root / "fleet"
        small_disk.fill()
        log = tmp_path / "simulator.jsonl"

        assert run(["--port", "0", "--fleet-dir", str(fleet), "--log-file", str(log)],
                   io.StringIO(), io.StringIO()) == EXIT_FAILURE

        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        (failed,) = [e for e in events if e["event"] == "start_failed"]
        assert failed["reason"] == "cannot write its files"
        assert failed["hint"] == "the disk is full: free some space on it, then try again"
        assert failed["error"].startswith(
            f"[Errno 28] No space left on device: '{fleet}/users/")
        assert "exception" not in failed
        assert list((fleet / "users").glob("*.json")) == []
