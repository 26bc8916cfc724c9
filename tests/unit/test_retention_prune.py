"""Retention removes the pipeline's old outputs below the output folder, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.retention import SECONDS_PER_DAY, prune_outputs
from preform_pipeline.settings import load_settings

NOW = 2_000_000_000.0


def _file(path: Path, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 100)
    moment = NOW - age_days * SECONDS_PER_DAY
    os.utime(path, (moment, moment))
    return path


class TestPrune:
    """Old reports, logs, checkpoints and .form files go; recent ones and other files stay."""

    def test_only_old_outputs_are_removed_and_listed(self, tmp_path: Path) -> None:
        old = [
            _file(tmp_path / "reports" / "run-1.json", 40),
            _file(tmp_path / "logs" / "run-1.jsonl", 40),
            _file(tmp_path / ".checkpoints" / "b-001" / "step-3.form", 31),
            _file(tmp_path / "2026-01-01" / "b-001.form", 45),
        ]
        kept = [
            _file(tmp_path / "reports" / "run-9.json", 2),
            _file(tmp_path / "notes.txt", 400),
            _file(tmp_path / "models" / "part.stl", 400),
            _file(tmp_path / "logs" / "current.jsonl", 40),
        ]
        with capture_logs() as logs:
            pruned = prune_outputs(tmp_path, 30, now=NOW, keep=[kept[-1]])
        assert sorted(pruned.files) == sorted(old)
        assert pruned.bytes == 400
        assert all(not p.exists() for p in old)
        assert all(p.exists() for p in kept)
        assert not (tmp_path / ".checkpoints" / "b-001").exists()
        assert not (tmp_path / "2026-01-01").exists()
        text = pruned.describe(tmp_path)
        assert text.startswith("retention: removed 4 files older than 30 days")
        assert "reports/run-1.json" in text
        (event,) = [e for e in logs if e["event"] == "retention_pruned"]
        assert event["files"] == 4

    def test_nothing_old_says_so(self, tmp_path: Path) -> None:
        _file(tmp_path / "reports" / "run-9.json", 1)
        pruned = prune_outputs(tmp_path, 30, now=NOW)
        assert pruned.files == ()
        assert "nothing older than 30 days" in pruned.describe(tmp_path)


class TestSetting:
    """``run.retention_days`` and the completeness periods are read from the settings."""

    def test_run_settings_are_read(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text(
            "run:\n  retention_days: 14\n  quiet_period_s: 2\n"
            "servers:\n  remote_wait_s: 90\n",
            encoding="utf-8",
        )
        settings = load_settings(path)
        assert settings.run.retention_days == 14
        assert settings.run.quiet_period_s == 2
        assert settings.servers.remote_wait_s == 90
        assert load_settings(None).run.retention_days is None


class TestItsImport:
    """Retention imported the whole executor (runner, progress consoles, build states: about
    0.4 s) to learn the checkpoint folder's name."""

    def test_it_reads_the_folders_names_without_the_executor(self) -> None:
        done = subprocess.run(
            [sys.executable, "-c", "import json, sys, preform_pipeline.retention; "
             "print(json.dumps(sorted(sys.modules)))"],
            capture_output=True, text=True, timeout=60, check=True)
        modules = json.loads(done.stdout)

        assert "preform_pipeline.outputfolders" in modules
        assert [m for m in modules if m.startswith("preform_pipeline.executor")] == []
