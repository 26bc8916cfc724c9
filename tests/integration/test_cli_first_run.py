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
