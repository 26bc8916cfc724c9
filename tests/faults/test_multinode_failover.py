"""Failover of real ``preform-pipeline watch`` daemons on one real PostgreSQL.

Three daemons (subprocesses, each with its own simulated servers) share one inbox of tiny
models, one simulated fleet and one store. One is SIGKILLed while it prepares and another
while it sends (each is started again, as a PC would be); a third is SIGSTOPped past its lease
until another node has taken its build over, then SIGCONTed; PostgreSQL is restarted under
them. At the end every file is in done/ or failed/ exactly once, every model was printed
exactly once (the fleet's print records), nothing is stuck, and no move of a build was made
under an epoch older than one already seen for it (the stalled node's late writes changed
nothing).

``FAILOVER_FILES`` sets the inbox's size: 150 by default, to stay within the suite's time;
``FAILOVER_FILES=300`` is the issue's full size (about 100 s on a loaded 2-core machine).
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.store import JobState
from preform_pipeline.store.leases import CLAIMABLE_STATES
from tests.multinode_farm import DaemonFarm, printed_models, wait_until
from tests.pg_cluster import PgCluster, require_postgres

FILES = int(os.environ.get("FAILOVER_FILES", "150"))
#: Each wait's limit; the test's own limit leaves room for the assertions after a late one.
TIMEOUT_S = 90.0
S = JobState
NODES = ("node-1", "node-2", "node-3")
_EPOCH = re.compile(r"\[(node-\d), epoch (\d+)\]")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A cluster of its own: this test restarts it, which would cut other tests' sessions."""
    require_postgres()
    made = PgCluster.create()
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def farm(cluster: PgCluster, tmp_path: Path) -> Iterator[DaemonFarm]:
    made = DaemonFarm(tmp_path, cluster.create_database("failover"))
    try:
        yield made
    finally:
        made.close()


def _held_in(farm: DaemonFarm, node: str, state: JobState, found: list[int]) -> bool:
    builds = farm.owned_in(node, state)
    if builds:
        found.append(builds[0].id)
    return bool(builds)


def _epoch(farm: DaemonFarm, build_id: int) -> int:
    with farm.store._transaction("test look", write=False) as conn:
        row = conn.execute("SELECT epoch FROM builds WHERE id = ?", (build_id,)).fetchone()
    return int(row["epoch"])


class TestDaemonFailover:
    """Killed, stalled and cut-off daemons lose no file and print no model twice."""

    @pytest.mark.slow
    @pytest.mark.timeout(TIMEOUT_S * 4)
    def test_kills_a_stall_and_a_database_restart(
        self, farm: DaemonFarm, cluster: PgCluster
    ) -> None:
        names = farm.drop(FILES)
        farm.start(*NODES)
        # SIGKILL node-1 while it prepares; start it again (a restarted PC).
        preparing: list[int] = []
        wait_until("node-1 preparing", lambda: _held_in(farm, "node-1", S.PREPARING,
                                                        preparing), TIMEOUT_S)
        farm.signal("node-1", signal.SIGKILL)
        farm.start("node-1")
        # SIGKILL node-2 while it sends.
        sending: list[int] = []
        wait_until("node-2 sending", lambda: _held_in(farm, "node-2", S.PRINT_SENDING,
                                                      sending), TIMEOUT_S)
        farm.signal("node-2", signal.SIGKILL)
        farm.start("node-2")
        # SIGSTOP node-3 holding a build past its lease, until another node has it; SIGCONT.
        stalled: list[int] = []
        wait_until("node-3 holding a build", lambda: any(
            _held_in(farm, "node-3", state, stalled)
            for state in (S.PREPARING, S.WAITING_FOR_PRINTER)), TIMEOUT_S)
        farm.signal("node-3", signal.SIGSTOP)
        epoch = _epoch(farm, stalled[0])
        wait_until("the stalled build taken over",
                   lambda: _epoch(farm, stalled[0]) > epoch, TIMEOUT_S)
        farm.signal("node-3", signal.SIGCONT)
        # PostgreSQL restarts under the running daemons; they reconnect on their own.
        cluster.restart()
        farm.reconnect()

        # Most of the inbox is worked through in this last wait: twice a moment's limit, for a
        # machine whose cores the suite's other workers (and other jobs) share.
        wait_until("the farm idle (no file left, no build to work on)",
                   lambda: not farm.left_in() and not farm.builds(*CLAIMABLE_STATES),
                   2 * TIMEOUT_S)
        codes = farm.stop_all()
        assert codes == dict.fromkeys(NODES, 0), codes

        settled = farm.settled()
        assert settled == Counter(dict.fromkeys(names, 1))
        assert not farm.left_in()
        printed = printed_models(farm)
        failed = {p.name for p in (farm.inbox / "failed").glob("*.stl")}
        assert max(printed.values()) == 1  # no model printed twice
        assert set(printed) == set(names) - failed
        # An unknown print is left for a person (UNVERIFIED in failed/), never resent.
        for job in farm.store.list_jobs():
            if job.original_name in failed:
                assert job.state is S.UNVERIFIED, job
        assert not [j for j in farm.store.list_jobs() if j.state in CLAIMABLE_STATES
                    or j.state in (S.DISCOVERED, S.QUEUED)]
        # The recoveries happened, and each followed the print owner's rules.
        recovered = {(e["build_id"], e["state"]) for e in farm.events("build_recovered")}
        assert (preparing[0], S.PREPARING.value) in recovered
        assert (sending[0], S.PRINT_SENDING.value) in recovered
        assert stalled[0] in {b for b, _ in recovered}
        # No build moved under an epoch older than one it had already moved under: the
        # stalled node's late writes were refused (and it noticed).
        for build in farm.builds():
            epochs = [int(m.group(2)) for t in farm.store.build_history(build.id)
                      if (m := _EPOCH.search(t.reason))]
            assert epochs == sorted(epochs), (build.job_key, epochs)
        late = [e for e in farm.events("lease_lost", "build_lease_lost")
                if e.get("node") == "node-3"]
        assert late, "the stalled node never found its lease lost"
