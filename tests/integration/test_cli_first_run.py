"""The README's first command, as a newcomer types it on a clean home folder.

A real subprocess of ``python -m preform_pipeline`` on the embedded simulator, with no settings
from the environment and a home folder of the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180.0
#: The README's first command, after the install: ``run`` with these arguments.
README_RUN = (
    "recipes/engineering-grey-form4.yaml", "sample_models/parts", "sample_models/batch",
)


def _readme_run(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFORM_PIPELINE_", "XDG_"))}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [str(REPO_ROOT / a) for a in README_RUN]
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "run", *argv,
         "--output", str(home / "out" / "demo")],
        cwd=home, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


class TestTheReadmesFirstRun:
    """The shipped recipe on the shipped sample models runs clean: every part labelled."""

    def test_all_thirty_models_print_with_their_labels_and_no_warning(
        self, tmp_path: Path
    ) -> None:
        done = _readme_run(tmp_path)
        assert done.returncode == 0, done.stderr
        assert "exit 0: 2 of 2 builds succeeded" in done.stdout
        assert "skipped" not in done.stdout, done.stdout
        (report,) = (tmp_path / "out" / "demo" / "reports").glob("*.json")
        logs = (tmp_path / "out" / "demo" / "logs").glob("*.jsonl")
        events = [json.loads(line) for log in logs
                  for line in log.read_text(encoding="utf-8").splitlines()]
        assert [e for e in events if e["event"] == "label_skipped"] == []
        assert sum(e["event"] == "job_claimed" for e in events) == 30
        assert "label_skipped" not in report.read_text(encoding="utf-8")


class TestACaseFolderNamedOnTheCommandLine:
    """``run recipe.yaml C-1042/`` on a folder a case sidecar marks takes it as one case, as
    the hot folder does: while one of its models is still being written, none is taken."""

    def _case(self, home: Path) -> Path:
        case = home / "C-1042"
        case.mkdir()
        whole = (REPO_ROOT / "sample_models" / "batch" / "part_01.stl").read_bytes()
        (case / "upper.stl").write_bytes(whole)
        # Half of a binary STL: its size does not match its triangle count yet.
        (case / "lower.stl").write_bytes(whole[: len(whole) // 2])
        return case

    def _run(self, home: Path, *models: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFORM_PIPELINE_", "XDG_"))}
        env["HOME"] = str(home)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "run", str(REPO_ROOT / README_RUN[0]),
             *models, "--dry-run", "--output", str(home / "out")],
            cwd=home, env=env, capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False)

    @pytest.mark.parametrize("sidecar", ["C-1042/C-1042.yaml", "C-1042.yaml"])
    def test_a_marked_case_folder_waits_whole(self, tmp_path: Path, sidecar: str) -> None:
        self._case(tmp_path)
        (tmp_path / sidecar).write_text("customer: ACME\n", encoding="utf-8")
        done = self._run(tmp_path, "C-1042/")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[:3] == [
            "not taken yet: C-1042/lower.stl: still being written (the STL is incomplete, "
            f"{(tmp_path / 'C-1042' / 'lower.stl').stat().st_size} bytes so far); the next run "
            "takes it",
            "not taken yet: C-1042/upper.stl: its case folder C-1042 waits for lower.stl, "
            "still being written; the next run takes it",
            "nothing to do: no complete model files (.stl, .obj, .3mf) in C-1042",
        ]

    def test_an_unmarked_folder_is_still_an_inbox_of_files(self, tmp_path: Path) -> None:
        self._case(tmp_path)
        done = self._run(tmp_path, "C-1042/")
        assert done.returncode == 0, done.stderr
        assert "not taken yet: C-1042/lower.stl: still being written" in done.stdout
        assert "waits for" not in done.stdout
        assert "exit 0: 1 of 1 build succeeded" in done.stdout
