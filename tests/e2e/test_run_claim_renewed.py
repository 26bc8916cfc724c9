"""A ``run`` keeps its printer claim while its print request is on the way, however long.

Real subprocesses: two ``run`` command lines on one SQLite job store, each with its own pool
of simulator processes, one simulated Form 4 in a shared fleet folder. The first run's claims
last 1 s (``short_claim_lease_child.py``, a seam for the lease only) and its simulator holds
the print request until the test lets it go (``held_print_engine.py``, the simulator's seam
for a stand-in engine), far past the lease. A second run for ``printer: auto`` comes while
that request is on the way, after the first claim would have run out unrenewed: the printer
is not free for it (its build is left waiting in the store), and the printer prints once, the
first run's build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from held_print_engine import RELEASE_ENV
from run_e2e_support import environment, fleet_jobs, write_recipe

from preform_pipeline.geometry import write_stl
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.store import JobState, SqliteJobStore, extract_key

CHILD = Path(__file__).resolve().parent / "short_claim_lease_child.py"
PRINTER = "Form4-Only"
LEASE_S = 1.0
#: The first run's simulator: its print request waits for the test's release file.
HELD = ("--engine=tests.e2e.held_print_engine:HeldPrintEngine",)
STEPS = """\
steps:
  - save_form
  - print:
      printer: auto
"""


def _settings(folder: Path) -> Path:
    path = folder / "settings.json"
    path.write_text(json.dumps({
        "servers": {"count": 1, "base_port": 0, "startup_timeout_s": 30, "stop_timeout_s": 2,
                    "health_interval_s": 0, "recycle_after_builds": 0},
        "simulator": {"fleet": [
            {"name": PRINTER, "machine_type": "FORM-4-0", "material": "FLGPGR05"}]},
        # The second run waits for the printer briefly, then leaves its build waiting.
        "dispatch": {"run_wait_s": 0.5, "poll_interval_s": 0.1},
    }), encoding="utf-8")
    return path


def _argv(folder: Path, name: str, model: Path, size: float, *simulator: str) -> list[str]:
    # Models of different sizes: the job store's ledger takes a model once, by its content.
    write_stl(model, box_triangles((0.0, 0.0, 0.0), (size, size, size)))
    return ["run", str(folder / "recipe.yaml"), str(model), "--output", str(folder / name),
            "--settings", str(folder / "settings.json"), "--store", str(folder / "jobs.db"),
            f"--simulator-arg=--fleet-dir={folder / 'fleet'}",
            *(f"--simulator-arg={arg}" for arg in simulator)]


def _events(out: Path, name: str) -> list[dict[str, Any]]:
    lines = [line for path in sorted((out / "logs").glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [e for e in map(json.loads, lines) if e.get("event") == name]


def _sending(store_path: Path) -> list[str]:
    if not store_path.exists():
        return []
    with SqliteJobStore(store_path) as store:
        return [b.job_key for b in store.list_builds(state=JobState.PRINT_SENDING)]


class TestARunsClaimOutlivesItsLease:
    """Renewed while its print request is on the way: no other run takes the printer."""

    @pytest.mark.timeout(240)
    def test_a_second_run_in_the_middle_of_a_slow_print_request_finds_the_printer_taken(
        self, tmp_path: Path
    ) -> None:
        write_recipe(tmp_path, STEPS)
        _settings(tmp_path)
        store_path = tmp_path / "jobs.db"
        first_argv = _argv(tmp_path, "first", tmp_path / "a.stl", 20.0, *HELD)
        release = tmp_path / "release-the-print"
        with (tmp_path / "first.out").open("wb") as out:
            first = subprocess.Popen([sys.executable, str(CHILD), str(LEASE_S), *first_argv],
                                     cwd=tmp_path, env={**environment(), RELEASE_ENV: str(release)},
                                     stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: bool(_sending(store_path)) or first.poll() is not None, 120,
                     interval=0.1, what="the first run's print request under way")
            [key] = _sending(store_path)
            # Let the first claim's lease pass several times over: unrenewed, it ran out.
            time.sleep(3 * LEASE_S)
            second = subprocess.run(
                [sys.executable, "-m", "preform_pipeline",
                 *_argv(tmp_path, "second", tmp_path / "b.stl", 25.0)],
                capture_output=True, text=True, encoding="utf-8", timeout=120,
                env=environment(), cwd=tmp_path, check=False)
            # The second run chose while the first's print request was still on the way.
            assert _sending(store_path) == [key]
            release.touch()
            assert first.wait(120) == 0, (tmp_path / "first.out").read_text(errors="replace")
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(30)

        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "still no free printer after" in second.stdout
        printed = [(extract_key(str(j["job_name"])), j["printer"]) for j in fleet_jobs(tmp_path)]
        assert printed == [(key, PRINTER)]
        first_out = tmp_path / "first"
        assert [e["build"] for e in _events(first_out, "printer_claimed")] != []
        assert _events(first_out, "printer_claim_lost") == []
        assert _events(tmp_path / "second", "printer_claimed") == []
        with SqliteJobStore(store_path) as store:
            assert store.printers_claimed(other_than="") == frozenset()  # sent: released
            [waiting] = store.list_builds(state=JobState.WAITING_FOR_PRINTER)
            assert waiting.job_key != key  # the second run's build waits for the printer
