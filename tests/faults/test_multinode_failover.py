"""Failover on a shared PostgreSQL store: three real node processes, signals, a server restart.

The nodes are simulated ones (preform_pipeline.store.testing): real processes, real claims,
leases and fences on a real PostgreSQL, "printing" into a fleet folder. The hot-folder daemon
does not take claims yet (docs/multi-node.md), so this checks the store's failover machinery,
with 60 builds instead of the issue's 300 files to stay within the suite's time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from preform_pipeline.store import ACTIVE_STATES, Build, JobState
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.testing import printed_keys
from tests.pg_cluster import PG_PASSWORD, PgCluster, require_postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILDS = 60
LEASE_S = 1.5
TIMEOUT_S = 90.0
S = JobState


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A cluster of its own: this test restarts it, which would cut other tests' sessions."""
    require_postgres()
    made = PgCluster.create()
    try:
        yield made
    finally:
        made.destroy()


def _wait(what: str, condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Farm:
    """Three node processes on one store and one fleet folder."""

    def __init__(self, url: str, fleet: Path, logs: Path) -> None:
        self.url, self.fleet, self.logs = url, fleet, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, PASSWORD_ENV: PG_PASSWORD,
                    "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.store = PostgresJobStore(url, password=PG_PASSWORD)
        self.finished: list[subprocess.Popen[bytes]] = []

    def start(self, node: str) -> None:
        life = f"{node}-{len(self.finished) + len(self.procs)}"
        out = (self.logs / f"{life}.txt").open("ab")
        self.procs[node] = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline.store.testing", self.url, node,
             str(self.fleet), "--lease", str(LEASE_S), "--work", "0.15", "--send", "0.15",
             "--log", str(self.logs / f"{life}.jsonl")],
            env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def signal(self, node: str, number: int) -> None:
        self.procs[node].send_signal(number)
        if number == signal.SIGKILL:
            self.procs[node].wait(timeout=10)
            self.finished.append(self.procs.pop(node))

    def held(self, node: str, state: JobState) -> Build | None:
        with self.store._transaction("test look", write=False) as conn:
            row = conn.execute("SELECT id FROM builds WHERE owner = ? AND state = ? "
                               "AND lease_until > now() LIMIT 1", (node, state.value)).fetchone()
        return self.store.get_build(row["id"]) if row else None

    def epoch(self, build_id: int) -> int:
        with self.store._transaction("test look", write=False) as conn:
            return int(conn.execute("SELECT epoch FROM builds WHERE id = ?",
                                    (build_id,)).fetchone()["epoch"])

    def events(self, node: str) -> list[dict[str, object]]:
        found = []
        for path in sorted(self.logs.glob(f"{node}-*.jsonl")):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("{"):
                    found.append(json.loads(line))
        return found

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=10)
        self.store.close()


@pytest.fixture
def farm(cluster: PgCluster, tmp_path: Path) -> Iterator[Farm]:
    url = cluster.create_database("failover")
    fleet, logs = tmp_path / "fleet", tmp_path / "logs"
    fleet.mkdir()
    logs.mkdir()
    made = Farm(url, fleet, logs)
    for i in range(BUILDS):
        job = made.store.create_job(recipe="dental", source_path=f"/nas/processing/{i}.stl",
                                    state=S.PROCESSING)
        made.store.create_build(recipe="dental", job_ids=[job.id])
    try:
        yield made
    finally:
        made.kill_all()


class TestFailover:
    """Killed, stalled and cut-off nodes lose no build and print none twice."""

    @pytest.mark.slow
    def test_kills_a_stall_and_a_database_restart(self, farm: Farm, cluster: PgCluster) -> None:
        for node in ("n1", "n2", "n3"):
            farm.start(node)
        # SIGKILL n1 while it prepares, and start it again (a restarted PC).
        _wait("n1 preparing", lambda: farm.held("n1", S.PREPARING) is not None)
        farm.signal("n1", signal.SIGKILL)
        farm.start("n1")
        # SIGKILL n2 while it sends.
        _wait("n2 sending", lambda: farm.held("n2", S.PRINT_SENDING) is not None)
        farm.signal("n2", signal.SIGKILL)
        farm.start("n2")
        # SIGSTOP n3 holding a build past its lease; another node takes it over; SIGCONT.
        stalled: list[Build] = []
        _wait("n3 preparing", lambda: bool(
            (b := farm.held("n3", S.PREPARING)) and stalled.append(b) is None))
        farm.signal("n3", signal.SIGSTOP)
        epoch = farm.epoch(stalled[0].id)
        _wait("the stalled build reclaimed", lambda: farm.epoch(stalled[0].id) > epoch)
        farm.signal("n3", signal.SIGCONT)
        # The database restarts under the running nodes.
        cluster.restart()
        farm.store.close()  # its session ended with the server; the nodes reconnect alone
        farm.store = PostgresJobStore(farm.url, password=PG_PASSWORD)
        for node, proc in farm.procs.items():
            try:
                status = proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                stuck = farm.store.list_builds(state=ACTIVE_STATES)
                raise AssertionError(f"{node} still runs; active: {stuck}; "
                                     f"{farm.events(node)[-5:]}") from None
            assert status == 0, farm.events(node)[-5:]

        builds = farm.store.list_builds()
        assert len(builds) == BUILDS
        assert not [b for b in builds if b.state in ACTIVE_STATES]
        assert {b.state for b in builds} <= {S.FINISHED, S.UNVERIFIED}
        prints = Counter(printed_keys(farm.fleet))
        assert max(prints.values()) == 1  # nothing printed twice
        for build in builds:
            # Finished: printed exactly once. Unverified: a person decides; never resent.
            assert prints[build.job_key] == (1 if build.state is S.FINISHED else
                                             prints[build.job_key])
        assert sum(prints.values()) >= sum(b.state is S.FINISHED for b in builds)
        # The stalled node's late writes changed nothing: no move under its old epoch comes
        # after the takeover in the build's audit trail (its late move was refused, or its
        # frozen session was ended by the server).
        reasons = [t.reason for t in farm.store.build_history(stalled[0].id)]
        epochs = [int(m.group(1)) if (m := re.search(r"epoch (\d+)\]", r)) else 0
                  for r in reasons]
        taken_over = next(i for i, e in enumerate(epochs) if e > epoch)
        assert not [r for r in reasons[taken_over:] if f"[n3 epoch {epoch}]" in r]
