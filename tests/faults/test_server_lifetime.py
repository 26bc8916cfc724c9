"""No server outlives its owner: ``run`` or ``watch`` killed with SIGKILL takes its servers.

Each test starts the real command line (``preform-pipeline run`` on sample models, or
``preform-pipeline watch`` on an inbox with files in it) as a subprocess in its own process
group, on two simulated servers with the simulator's realistic latency, so the servers are
busy when the owner dies. It reads the servers' PIDs from the pool's state folder, kills the
owner with SIGKILL (its PID only, or its whole process group), and waits for every server to
be gone.
The test never stops a server itself: if one is still running at the end, it is killed as
a safety net and the test fails.

Linux only: SIGKILL and process groups are POSIX, and the tie that kills the servers is
Linux's parent-death signal (macOS relies on the reaper, tested in test_server_reaping.py).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.servers.process import process_tree_alive
from preform_pipeline.servers.records import ServerRecords
from tests.recipe_texts import full_steps

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
#: How long the servers may take to follow their owner: the signal is immediate.
GONE_TIMEOUT_S = 5.0
SERVERS = 2
#: Operations take as long as on a real server, so the servers are busy when the owner dies.
REALISTIC = ("--latency=realistic", "--time-scale=1")
RECIPE = """\
name: lifetime
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
"""


def _environment(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PREFORM_PIPELINE_SERVER_STATE_DIR"] = str(state_dir)
    return env


def _settings(folder: Path) -> Path:
    path = folder / "settings.yaml"
    path.write_text(
        f"servers:\n  count: {SERVERS}\n  base_port: 0\n  startup_timeout_s: 30\n"
        "  health_interval_s: 0\n  stop_timeout_s: 2\n",
        encoding="utf-8",
    )
    return path


class Owner:
    """A running ``preform-pipeline run`` in its own process group, and its stdout lines."""

    def __init__(self, argv: list[str], folder: Path) -> None:
        self.state_dir = folder / "state"
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            encoding="utf-8", env=_environment(self.state_dir), cwd=folder,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.seen: list[str] = []

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_until_busy(self) -> None:
        """Until a build is being imported: the servers are up and at work."""
        while True:
            line = self.lines.get(timeout=START_TIMEOUT_S)
            assert line is not None, "the run ended early:\n" + "\n".join(self.seen)
            self.seen.append(line)
            if " step " in line and "import_models" in line:
                return

    def server_pids(self) -> list[int]:
        """The servers the pool recorded, checked against the owner's children."""
        recorded = sorted(
            record.server.pid for _, record in ServerRecords(self.state_dir).read_all()
            if record is not None
        )
        children = {c.pid for c in psutil.Process(self.process.pid).children(recursive=True)}
        assert set(recorded) <= children, (recorded, children)
        return recorded


def _run_argv(folder: Path, models: list[Path]) -> list[str]:
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE + full_steps(2), encoding="utf-8")
    return [
        sys.executable, "-m", "preform_pipeline", "run", str(recipe), *map(str, models),
        "--settings", str(_settings(folder)), "--output", str(folder / "out"),
        f"--simulator-arg=--fleet-dir={folder / 'fleet'}",
        *(f"--simulator-arg={arg}" for arg in REALISTIC),
    ]


def _watch_argv(folder: Path) -> list[str]:
    settings = write_hotfolder_settings(
        folder, write_recipe(folder, per_build=2), fleet_dir=folder / "fleet",
        servers=SERVERS, simulator_args=REALISTIC,
    )
    inbox = folder / "inbox"
    inbox.mkdir()
    for seed in range(6):
        (inbox / f"m{seed}.stl").write_bytes(tetra_stl_bytes(seed))
    return [sys.executable, "-m", "preform_pipeline", "watch", str(settings)]


@pytest.fixture(params=["run", "watch"])
def owner(
    request: pytest.FixtureRequest, tmp_path: Path, sample_models_dir: Path
) -> Iterator[Owner]:
    if request.param == "run":
        models = sorted((sample_models_dir / "batch").glob("*.stl"))[:8]
        argv = _run_argv(tmp_path, models)
    else:
        argv = _watch_argv(tmp_path)
    started = Owner(argv, tmp_path)
    yield started
    with contextlib.suppress(ProcessLookupError):
        os.killpg(started.process.pid, signal.SIGKILL)
    started.process.wait(timeout=10)


def _assert_servers_follow(pids: list[int]) -> None:
    try:
        wait_for(lambda: not process_tree_alive(pids), GONE_TIMEOUT_S,
                 what="every server of the killed run gone")
    finally:
        left = process_tree_alive(pids)
        for pid in left:  # the safety net: the test fails below either way
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        assert not left, f"servers outlived their owner: {left}"


class TestOwnerKilled:
    """Whichever way the owner is killed, its busy servers die with it."""

    def test_sigkill_of_the_owner_pid_only(self, owner: Owner) -> None:
        owner.wait_until_busy()
        pids = owner.server_pids()
        assert len(pids) == SERVERS
        owner.process.send_signal(signal.SIGKILL)
        owner.process.wait(timeout=10)
        _assert_servers_follow(pids)

    def test_sigkill_of_the_owner_process_group(self, owner: Owner) -> None:
        owner.wait_until_busy()
        pids = owner.server_pids()
        assert len(pids) == SERVERS
        # The servers run in their own sessions, so the group kill itself does not reach
        # them: only the tie to their owner does.
        os.killpg(owner.process.pid, signal.SIGKILL)
        owner.process.wait(timeout=10)
        _assert_servers_follow(pids)
