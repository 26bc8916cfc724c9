"""Helpers for the ``preform-pipeline run`` end-to-end tests.

Every test runs the real command line (``python -m preform_pipeline run ...``) as a subprocess;
its pool starts real simulator processes on free ports with test-sized settings (fast restart
backoff, no periodic health checks), and every simulator shares a fleet folder inside the
test's folder, so the print jobs a run sends can be counted there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.store import extract_key
from tests.recipe_texts import full_steps

__all__ = [
    "REPO_ROOT",
    "RunOutcome",
    "cli",
    "command",
    "engraved",
    "printed_name",
    "environment",
    "fleet_jobs",
    "full_steps",
    "run_cli",
    "watch_once",
    "write_box",
    "write_recipe",
    "write_settings",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Upper bound for one run in these tests; a healthy run takes a few seconds.
RUN_TIMEOUT_S = 90.0

RECIPE_HEAD = """\
name: e2e
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
"""

def write_recipe(folder: Path, body: str) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(RECIPE_HEAD + body, encoding="utf-8")
    return path


def write_settings(folder: Path, **servers: Any) -> Path:
    """A settings file for ``count`` simulated servers, sized for tests."""
    values: dict[str, Any] = {
        "count": 2,
        "base_port": 0,
        "startup_timeout_s": 30,
        "stop_timeout_s": 2,
        "health_interval_s": 0,
        "health_timeout_s": 2,
        "restart_backoff_s": 0.05,
        "restart_backoff_max_s": 0.2,
        "recycle_after_builds": 0,
    }
    values.update(servers)
    path = folder / "settings.yaml"
    lines = ["servers:"] + [f"  {key}: {value}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get(
        "PYTHONPATH") else "")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    for name in list(env):
        # The run must see only this test's settings.
        if name.startswith("PREFORM_PIPELINE_"):
            del env[name]
    return env


def command(
    folder: Path,
    recipe: Path,
    models: Sequence[Path],
    *extra: str,
    simulator_args: Sequence[str] = (),
) -> list[str]:
    """The command line of one run: outputs in ``folder/out``, fleet in ``folder/fleet``."""
    return [
        sys.executable, "-m", "preform_pipeline", "run", str(recipe), *map(str, models),
        "--output", str(folder / "out"),
        f"--simulator-arg=--fleet-dir={folder / 'fleet'}",
        *(f"--simulator-arg={arg}" for arg in simulator_args),
        *extra,
    ]


@dataclass(frozen=True)
class RunOutcome:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    events: list[dict[str, Any]]
    out: Path

    def builds(self) -> list[dict[str, Any]]:
        return list(self.report["builds"])

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]


def _reports(out: Path) -> set[Path]:
    return set((out / "reports").glob("*.json"))


def _report(out: Path, before: set[Path]) -> dict[str, Any]:
    """The report the run wrote: the one not there ``before`` it. Not the last by name: a
    run id has the second it started, then random letters, so two runs of one second sort
    either way."""
    written = sorted(_reports(out) - before)
    if not written:
        return {}
    assert len(written) == 1, f"one run wrote {len(written)} reports: {written}"
    data: dict[str, Any] = json.loads(written[0].read_text(encoding="utf-8"))
    return data


def _events(out: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted((out / "logs").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                events.append(json.loads(line))
    return events


def run_cli(folder: Path, argv: list[str], timeout: float = RUN_TIMEOUT_S) -> RunOutcome:
    before = _reports(folder / "out")
    done = subprocess.run(
        argv, capture_output=True, text=True, encoding="utf-8", timeout=timeout,
        env=environment(), cwd=folder, check=False,
    )
    out = folder / "out"
    return RunOutcome(done.returncode, done.stdout, done.stderr, _report(out, before),
                      _events(out), out)


def printed_name(job: dict[str, Any]) -> str:
    """A printed job's name without the job key every print carries (which must be there)."""
    name = str(job["job_name"])
    key = extract_key(name)
    assert key is not None, f"print {name!r} carries no job key"
    return name.replace(f" {key}", "")


def fleet_jobs(folder: Path) -> list[dict[str, Any]]:
    jobs = folder / "fleet" / "jobs"
    if not jobs.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(jobs.glob("*.json"))]


def cli(cwd: Path, *argv: str, timeout: float = RUN_TIMEOUT_S
        ) -> subprocess.CompletedProcess[str]:
    """``preform-pipeline ARGV...`` in a subprocess started in ``cwd``, its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", *argv], env=environment(), cwd=cwd,
        capture_output=True, text=True, encoding="utf-8", timeout=timeout, check=False)


def watch_once(settings: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``preform-pipeline watch SETTINGS --once`` in a subprocess, as cron would start it."""
    return cli(cwd, "watch", str(settings), "--once")


def write_box(path: Path, size: float) -> None:
    """A cube of ``size`` mm as a binary STL at ``path`` (its folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_stl(path, box_triangles((0.0, 0.0, 0.0), (size, size, size)))


def engraved(out: Path) -> list[str]:
    """Every label text in the .form files the simulator saved below ``out``, sorted."""
    texts: list[str] = []
    for form in out.rglob("*.form"):
        with zipfile.ZipFile(form) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        texts.extend(label["label"] for model in manifest["models"]
                     for label in model["labels"])
    return sorted(texts)
