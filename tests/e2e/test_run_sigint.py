"""Ctrl-C (SIGINT) or SIGTERM to a running ``preform-pipeline run`` leaves no server behind.

The run uses the simulator's realistic latency, so it is still busy when the signal comes.
The simulators' pids are read from the runner's children (psutil) once it says its servers
started; after the signal the runner must write its report and summary, exit 130 (SIGINT) or
143 (SIGTERM, what a service manager sends), and none of its servers may be left. POSIX only:
the test sends signals to a child process, which Windows has no way to do.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from run_e2e_support import command, environment, full_steps, write_recipe, write_settings

from preform_pipeline.servers.process import process_tree_alive

WAIT_S = 60.0


def _lines(stream: object, sink: queue.Queue[str | None]) -> threading.Thread:
    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.put(line.rstrip("\n"))
        sink.put(None)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


class TestInterrupt:
    """SIGINT and SIGTERM stop the run cleanly: a report and summary, no orphaned servers."""

    @pytest.mark.parametrize(
        ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
    )
    def test_a_signal_stops_the_run_and_every_server(
        self, tmp_path: Path, sample_models_dir: Path, signum: signal.Signals, status: int
    ) -> None:
        models = sorted((sample_models_dir / "batch").glob("*.stl"))[:12]
        recipe = write_recipe(tmp_path, full_steps(3))
        settings = write_settings(tmp_path, count=2)
        argv = command(
            tmp_path, recipe, models, "--settings", str(settings),
            simulator_args=["--latency=realistic", "--time-scale=0.5"],
        )
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            env=environment(), cwd=tmp_path,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        _lines(process.stdout, lines)
        errors: queue.Queue[str | None] = queue.Queue()
        _lines(process.stderr, errors)
        servers: list[int] = []
        try:
            deadline = time.monotonic() + WAIT_S
            seen: list[str] = []
            while True:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                assert line is not None, f"the run ended early: {seen}"
                seen.append(line)
                if line.startswith("servers started:"):
                    break
            while True:  # wait until a build is under way, so the signal interrupts work
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                assert line is not None, f"the run ended early: {seen}"
                seen.append(line)
                if " step " in line and "import_models" in line:
                    break
            servers = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
            assert len(servers) >= 2
            process.send_signal(signum)
            assert process.wait(timeout=WAIT_S) == status
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process_tree_alive(servers) == []
        rest: list[str] = []
        while (line := lines.get(timeout=WAIT_S)) is not None:
            rest.append(line)
        assert rest[-1].startswith(f"exit {status}: ")
        # The run's closing line is said once (after the cancelled builds, before their
        # blocks), and says the run was interrupted.
        (finished,) = [line for line in rest if line.startswith("run ") and " finished in " in line]
        assert "builds succeeded" in finished and "(interrupted)" in finished
        report = json.loads(next((tmp_path / "out" / "reports").glob("*.json")).read_text())
        assert report["interrupted"] is True and report["ok"] is False
        assert {b["status"] for b in report["builds"]} <= {"succeeded", "cancelled"}
        assert "cancelled" in {b["status"] for b in report["builds"]}
