"""A retry's lease on the run's clock: a lease timeout is spent the instant the clock reaches
it, and from then on the retry takes the server at hand."""

from __future__ import annotations

import threading
from pathlib import Path

from executor_support import WAIT_S, FakeLease
from test_executor_runner_rules import RECIPE, _Pool

from preform_pipeline.clock import ManualClock
from preform_pipeline.executor import Runner, RunOptions
from preform_pipeline.plan.builds import Plan
from preform_pipeline.servers.pool import ServerState


def _waiting_retry(tmp_path: Path) -> tuple[_Pool, FakeLease, ManualClock, threading.Thread,
                                            list[FakeLease]]:
    """A retry of a build that server-2 failed, waiting (lease timeout 1 s on a manual clock)
    while another build holds server-1: the pool, that build's lease, the clock, the
    retry's thread and where its lease goes."""
    pool = _Pool(2)
    busy = pool.lease(WAIT_S)  # server-1: another build holds it
    clock = ManualClock()
    runner = Runner(Plan(recipe=RECIPE, builds=()), pool,
                    options=RunOptions(output_root=tmp_path, lease_timeout_s=1.0), clock=clock)
    got: list[FakeLease] = []
    thread = threading.Thread(target=lambda: got.append(runner.lease_avoiding({"server-2"})))
    thread.start()
    # server-2 was handed out and given back untouched: the retry waits for another server.
    pool.wait_for(lambda statuses: "server-2" in pool.leases and {
        s.name: s.state for s in statuses}["server-2"] is ServerState.IDLE, WAIT_S)
    return pool, busy, clock, thread, got


class TestLeaseDeadlineOnTheRunsClock:
    """While a retry waits for another server, the run's clock reaching the lease timeout
    ends the wait: the failed server is taken back."""

    def test_the_wait_ends_when_the_clock_reaches_the_timeout_exactly(
        self, tmp_path: Path
    ) -> None:
        pool, busy, clock, thread, got = _waiting_retry(tmp_path)
        assert thread.is_alive()
        clock.advance(1.0)  # the run's clock now reads the lease deadline, to the instant
        thread.join(WAIT_S / 2)
        waited_out = not thread.is_alive()
        busy.release()  # lets a retry that is still waiting finish
        thread.join(WAIT_S)
        assert waited_out, "the retry kept waiting with its lease timeout spent"
        assert got[0].server.name == "server-2"
        assert pool.leases == ["server-1", "server-2", "server-2"]

    def test_before_the_timeout_the_retry_keeps_waiting_for_another_server(
        self, tmp_path: Path
    ) -> None:
        pool, busy, clock, thread, got = _waiting_retry(tmp_path)
        clock.advance(0.999)
        busy.release()  # server-1 is free before the timeout: the retry goes there
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert got[0].server.name == "server-1" == pool.leases[-1]
