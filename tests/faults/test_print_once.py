"""No job is ever printed twice: the runner killed right after a print is sent, restarted.

A real runner process (``print_once_child.py``: the executor with print tracking and a job
store) prepares one build on a real simulated PreFormServer and sends its print. The moment
the server has answered, before the store records ``print_sent``, the runner is killed with
SIGKILL (``Popen.kill``: TerminateProcess on Windows): the print exists, and the store only
says it was being sent. The runner is started again on the same store. It prepares the build
again, and before sending looks the build's job key up in the Dashboard simulator's prints
feed (real HTTP, same fleet folder): it recognises the print, records it, and sends nothing.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from preform_pipeline.cloud import Credentials
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.simulator.testing import RunningSimulator, start_simulator
from preform_pipeline.store import JobState, SqliteJobStore, extract_key
from tests.children import reaped
from tests.command_line import TIMEOUT_S

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("print_once_child.py")
MODEL = REPO / "sample_models" / "batch" / "part_01.stl"
SECRET = "print-once-secret"
#: Each runner child's bound: a child's start, one build and its exit take about 1 s of CPU,
#: but 10-14 s of wall at load 27 alone, and the second child crossed 60 s in session 46's
#: loaded hunt (its result line printed, its exit not yet done). What this test looks for
#: (the print found, not sent again) is told by the child's words, not by its speed: no
#: wait in it is long (the feed answered at its first look, no thread kept the exit).
WAIT_S = TIMEOUT_S


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


@pytest.fixture
def simulator(fleet: Path, tmp_path: Path) -> Iterator[RunningSimulator]:
    with start_simulator("--log-level", "WARNING", fleet_dir=fleet,
                         work_dir=tmp_path / "sim-work") as sim:
        yield sim


@pytest.fixture
def dashboard(fleet: Path) -> Iterator[DashboardServer]:
    with dashboard_server(fleet, credentials=Credentials(TEST_CLIENT_ID, SECRET),
                          time_scale=0.001) as server:
        yield server
        server.check()


@contextmanager
def _runner(tmp_path: Path, sim: RunningSimulator, dash: DashboardServer, *extra: str,
            readers: Sequence[threading.Thread] = ()) -> Iterator[subprocess.Popen[str]]:
    """A runner child for the block, killed (SIGKILL: no cleanup, no last store write) if it
    still runs when the block ends, and reaped, whatever ended the block."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env.update(PYTHONPATH=str(REPO), PREFORM_PIPELINE_CLIENT_ID=TEST_CLIENT_ID,
               PREFORM_PIPELINE_CLIENT_SECRET=SECRET, PYTHONIOENCODING="utf-8")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path), sim.url, dash.url, str(MODEL), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
    )
    with reaped(child, readers=readers, wait_s=WAIT_S):
        yield child


def _lines(process: subprocess.Popen[str], readers: list[threading.Thread]
           ) -> queue.Queue[str]:
    """The child's stdout, a line at a time, read by a thread added to ``readers``."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.strip())
        lines.put("<exited>")  # the child ended without what the test waits for

    reader = threading.Thread(target=pump, daemon=True)
    readers.append(reader)
    reader.start()
    return lines


def _fleet_jobs(fleet: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in (fleet / "jobs").glob("*.json")]


class TestKilledRightAfterSending:
    """The restarted runner recognises the print it sent before dying and does not resend."""

    @pytest.mark.timeout(3 * WAIT_S)  # two children, each within WAIT_S
    def test_the_print_is_recognised_not_sent_again(
        self, tmp_path: Path, fleet: Path, simulator: RunningSimulator,
        dashboard: DashboardServer,
    ) -> None:
        readers: list[threading.Thread] = []
        with _runner(tmp_path, simulator, dashboard, "--pause-after-send",
                     readers=readers) as first:
            said = _lines(first, readers).get(timeout=WAIT_S)
            first.kill()  # at once, answered: the store has not recorded the print sent
            first.wait(timeout=WAIT_S)
            assert first.stderr is not None
            assert said == "PRINT_ANSWERED", first.stderr.read()[-3000:]
        [job] = _fleet_jobs(fleet)
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            [build] = store.list_builds()
        assert build.state is JobState.PRINT_SENDING
        assert extract_key(str(job["job_name"])) == build.job_key

        with _runner(tmp_path, simulator, dashboard) as second:
            out, err = second.communicate(timeout=WAIT_S)
        assert second.returncode == 0, err
        outcome = json.loads(out.strip().splitlines()[-1])
        assert (outcome["status"], outcome["job_id"]) == ("succeeded", job["job_id"])
        # Exactly one job file for the build: the print was recognised, not sent again.
        assert [j["job_id"] for j in _fleet_jobs(fleet)] == [job["job_id"]]
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            after = store.get_build(build.id)
            history = store.build_history(build.id)
        assert (after.state, after.print_job_id) == (JobState.PRINT_SENT, job["job_id"])
        assert "not sent again" in history[-1].reason
        events = [json.loads(line) for line in
                  (tmp_path / "child.jsonl").read_text(encoding="utf-8").splitlines()]
        assert any(e["event"] == "print_found_not_resent" for e in events)
