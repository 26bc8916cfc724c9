"""A simulated node for failover tests and the multi-node bench: real claims, real fences.

``python -m preform_pipeline.store.testing URL NODE_ID FLEET_DIR [--lease S] [--work S]
[--send S]`` joins the shared store as ``NODE_ID`` and works builds until none is left
active: it claims one (``SKIP LOCKED``), moves it through the fenced steps, "prepares" for
``--work`` seconds, and "prints" by creating a file named after the build's job key in
``FLEET_DIR`` (``--send`` seconds after the fenced move to print_sending: the request in
flight). A build it recovers follows the print owner's rules: cut off preparing, it is
prepared again; cut off sending, it is looked up in the fleet folder: found, recorded as sent;
not found, UNVERIFIED (another PC cannot prove the first sender gone, so it never resends).

The password comes from the environment as for every store. Each step is logged (``--log FILE``: as
JSON lines). This is test equipment: the real daemon does its own work.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from preform_pipeline.errors import LeaseLostError, StoreError
from preform_pipeline.logging import configure_logging, get_logger
from preform_pipeline.store.leases import CLAIMABLE_STATES, Lease, NodeInfo
from preform_pipeline.store.model import ACTIVE_STATES, Build, JobState
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.presence import NodePresence

__all__ = ["SimNode", "main", "printed_keys"]

log = get_logger(__name__)

S = JobState
_IDLE_WAIT_S: Final = 0.05
_RETRY_WAIT_S: Final = 0.2
#: The real daemon leaves sent prints to the poller; the simulated node finishes them itself.
_SIM_CLAIMABLE: Final = CLAIMABLE_STATES | {JobState.PRINT_SENT}


def printed_keys(fleet: Path) -> list[str]:
    """The job key of every print in the fleet folder, once per print (repeats are twice)."""
    return sorted(p.name.split("--")[0] for p in fleet.iterdir() if p.name.startswith("PP-"))


class SimNode:
    """One node's loop over the shared store."""

    def __init__(self, store: PostgresJobStore, node_id: str, fleet: Path, *, lease_s: float,
                 work_s: float, send_s: float) -> None:
        self.store = store
        self.node_id = node_id
        self.fleet = fleet
        self.lease_s = lease_s
        self.work_s = work_s
        self.send_s = send_s
        self.stop = threading.Event()

    def run(self) -> int:
        """Work until nothing active is left; returns how many builds this node finished."""
        finished = 0
        while not self.stop.is_set():
            try:
                lease = self.store.claim_build(self.node_id, lease_s=self.lease_s,
                                               states=_SIM_CLAIMABLE)
                if lease is None:
                    if not self._work_left():
                        return finished
                    self.stop.wait(_IDLE_WAIT_S)
                    continue
                finished += self._work(lease)
            except LeaseLostError:
                continue  # stop that build at once; the node that holds it carries on
            except StoreError as exc:
                log.warning("sim_node_store_error", node=self.node_id, error=str(exc))
                self.stop.wait(_RETRY_WAIT_S)
        return finished

    def _work_left(self) -> bool:
        return bool(self.store.list_builds(state=ACTIVE_STATES))

    def _found(self, key: str) -> bool:
        return any(p.name.startswith(key) for p in self.fleet.iterdir())

    def _work(self, lease: Lease) -> int:
        store = self.store

        def move(lease: Lease, to: JobState, reason: str, min_left_s: float = 0.0) -> Build:
            # Who moved it, under which epoch: the audit trail shows late writes (none).
            return store.transition_build_fenced(
                lease, to, f"{reason} [{self.node_id} epoch {lease.epoch}]",
                min_left_s=min_left_s)

        build = store.get_build(lease.build_id)
        state = build.state
        if state is S.PRINT_SENDING:  # recovered mid-send: look, never resend blindly
            if self._found(build.job_key):
                state = move(lease, S.PRINT_SENT, "recovered: found on the printer").state
            else:
                move(lease, S.UNVERIFIED, "recovered: not found, the sender cannot be proven "
                     "gone: a person checks")
                store.release(lease)
                return 1
        if state is S.PREPARING:  # recovered mid-prepare: the scene died with its node
            state = move(lease, S.PROCESSING, "recovered: prepare again").state
        if state is S.PROCESSING:
            move(lease, S.PREPARING, f"preparing on {self.node_id}")
            time.sleep(self.work_s)  # the server's work
            state = move(lease, S.PREPARED, "prepared").state
        if state is S.PREPARED:
            lease = store.renew(lease, lease_s=self.lease_s)  # the work renews its own lease
            move(lease, S.PRINT_SENDING, "sending", min_left_s=self.send_s * 2)
            time.sleep(self.send_s)  # the request in flight
            (self.fleet / f"{build.job_key}--{self.node_id}--{lease.epoch}").touch()
            state = move(lease, S.PRINT_SENT, "the printer accepted it").state
        if state is S.PRINT_SENT:
            move(lease, S.FINISHED, "the print finished")
        store.release(lease)
        log.info("sim_node_finished", node=self.node_id, build_id=lease.build_id)
        return 1


def _open_when_up(url: str, stall_s: float, timeout_s: float = 60.0) -> PostgresJobStore:
    """The store, once the database answers (a node may start while it restarts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return PostgresJobStore(url, stall_timeout_s=stall_s)
        except StoreError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("sim_node_store_error", error=str(exc))
            time.sleep(_RETRY_WAIT_S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preform_pipeline.store.testing")
    parser.add_argument("url")
    parser.add_argument("node_id")
    parser.add_argument("fleet", type=Path)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--work", type=float, default=0.05)
    parser.add_argument("--send", type=float, default=0.05)
    parser.add_argument("--log", type=Path, help="JSON-lines log of every event")
    args = parser.parse_args(argv)
    configure_logging(level="INFO", json_file=args.log, console=sys.stderr)
    with _open_when_up(args.url, stall_s=args.lease) as store:
        node = NodeInfo(id=args.node_id, host="sim", version="sim", pid=os.getpid())
        with NodePresence(store, node, lease_s=args.lease):
            finished = SimNode(store, args.node_id, args.fleet, lease_s=args.lease,
                               work_s=args.work, send_s=args.send).run()
    print(f"node {args.node_id} finished {finished} builds", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
