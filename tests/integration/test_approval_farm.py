"""An approved build on a farm's PostgreSQL store goes out on the dispatch loop's next pass,
not at the node's next maintenance pass: a real ``watch`` daemon on a real PostgreSQL store
whose maintenance (``rescan_interval_s``) is ten minutes away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.printing.approval import approve
from preform_pipeline.store import JobState, extract_key
from tests.multinode_farm import DaemonFarm, FarmTiming, wait_until
from tests.pg_cluster import PgCluster

TIMEOUT_S = 90.0
#: How often the node's dispatch loop reads the store: two of its passes (the one that sees
#: the build held, the one after the approval) are most of this test's wait at the default 5 s.
DISPATCH_POLL_S = 0.3
#: Well within the maintenance pass (600 s), many dispatch passes and the send on a loaded
#: machine (the time a node without the claim waits before this test fails).
SENT_S = 15.0


@pytest.fixture
def farm(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[DaemonFarm]:
    # The simulator at a hundredth of its realistic prices: what is tested is who claims the
    # approved build and when, not how long preparing and sending take.
    timing = FarmTiming(lease_s=10.0, request_timeout_s=4.0, time_scale=0.01, per_build=1,
                        window_s=0.3, rescan_interval_s=600.0, dispatch_poll_s=DISPATCH_POLL_S)
    with DaemonFarm(tmp_path, pg_cluster.create_database("approval_farm"), timing,
                    approval=True) as made:
        yield made


class TestAnApprovedBuildOnAFarm:
    def test_goes_out_on_the_dispatch_pass_after_the_approval(self, farm: DaemonFarm) -> None:
        farm.start("node-1")
        farm.drop(1)
        wait_until("the build held for approval",
                   lambda: len(farm.builds(JobState.AWAITING_APPROVAL)) == 1, TIMEOUT_S)
        (held,) = farm.builds(JobState.AWAITING_APPROVAL)
        wait_until("the node's dispatch loop saw it held", lambda: any(
            held.id in e["builds"] for e in farm.events("approvals_awaited")), TIMEOUT_S)
        approve(farm.store, held.id, "olivia (web)")
        # Nobody's lease covers it now: the node claims it at once and sends it.
        wait_until("the approved build printed", lambda: [
            extract_key(p["job_name"]) for p in farm.prints()] == [held.job_key], SENT_S)
        (claim,) = [e for e in farm.events("build_claimed") if e["build_id"] == held.id
                    and e["state"] == "waiting_for_printer"]
        assert claim["node"] == "node-1"
