"""A remote server that restarts mid-run is waited for, and reached through a ``Z:\\`` map.

Real subprocesses: a simulator started by the test as the "remote" PreFormServer, playing a
Windows machine with drive ``Z:`` mounted on the test's share folder; the command line run
with a settings file that maps the share to ``Z:\\``. The simulator exits after a few
requests (a crash or an update); once the run's log says it is waiting, the test starts the
simulator again on the same port, and the run goes on there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from run_e2e_support import environment

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.startup import LISTENING_PATTERN, READY_LINE

WAIT_S = 60.0
RECIPE = """\
name: remote
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_layout
  - save_form
"""


def _start_remote(share: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "preform_pipeline.simulator", "--port", str(port),
         f"--drive=Z:={share}", "--log-level=WARNING", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment(),
    )
    assert process.stdout is not None
    bound = port
    for line in process.stdout:  # start-up lines end with READY FOR INPUT
        found = LISTENING_PATTERN.search(line)
        if found:
            bound = int(found.group(1))
        if READY_LINE in line:
            return process, bound
    raise AssertionError(f"the simulator did not start (exit {process.wait(5)})")


def _events(out: Path) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for path in sorted((out / "logs").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                events.append(json.loads(line))
    return events


def _wait_for_event(out: Path, name: str, run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if any(e.get("event") == name for e in _events(out)):
            return
        assert run.poll() is None, "the run ended before waiting for its server"
        time.sleep(0.1)  # polling a log file: no event to wait on across processes
    raise AssertionError(f"no {name} event within {WAIT_S} s")


class TestRemoteRestart:
    """The run waits for its only remote server to come back and then succeeds there."""

    def test_the_run_waits_and_succeeds_through_a_drive_letter(self, tmp_path: Path) -> None:
        share = tmp_path / "share"
        models = share / "models"
        models.mkdir(parents=True)
        for name, size in (("a", 20.0), ("b", 15.0)):
            write_stl(models / f"{name}.stl", box_triangles((0.0, 0.0, 0.0), (size, size, size)))
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        first, port = _start_remote(share, 0, "--exit-after-requests=4")
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            "servers:\n  remote_wait_s: 60\n  restart_backoff_s: 0.2\n"
            "  restart_backoff_max_s: 0.5\n  health_timeout_s: 2\n  health_interval_s: 0\n"
            f"remotes:\n  - url: http://127.0.0.1:{port}\n    name: server-1\n"
            f"    path_map:\n      {json.dumps(str(share))}: 'Z:\\'\n",
            encoding="utf-8",
        )
        out = share / "out"
        run = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "run", str(recipe), str(models),
             "--settings", str(settings), "--output", str(out), "--dry-run"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
            cwd=tmp_path,
        )
        second: subprocess.Popen[str] | None = None
        try:
            assert first.wait(WAIT_S) != 0  # it exited on its own, mid-run
            _wait_for_event(out, "remote_server_waiting", run)
            second, _ = _start_remote(share, port)
            stdout, stderr = run.communicate(timeout=WAIT_S)
        finally:
            for process in (run, first, second):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait(10)
        assert run.returncode == 0, stderr[-3000:]
        # Waited for, never restarted (it said "after restart" before session 46).
        assert "retrying (attempt 2) on server-1 when it answers again" in stdout, stdout
        events = _events(out)
        waiting = [e for e in events if e.get("event") == "remote_server_waiting"]
        assert waiting and waiting[0]["server"] == "server-1"
        assert waiting[0]["wait_limit_s"] == 60
        assert any(e.get("event") == "remote_server_back" for e in events)
        # The remote wrote the .form through Z:\ into the share.
        assert list(out.rglob("*.form")), sorted(str(p) for p in out.rglob("*"))
