"""A node that stalls while it holds a build waiting for a printer (a real PostgreSQL store, two
nodes' stores, the dispatch queue; printer status faked at its protocol).

The stall is played out step by step, with no wait: node A's lease runs out on the database
while A does nothing (its lease is ended on the database's clock, as time would), node B claims
the build, then A "wakes" and runs what its threads would run first: a dispatch pass read
before the stall, or a lease renewal. A must find the lease lost, send nothing, write nothing;
B sends the build, once.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.hotfolder.nodes import FarmMembership, NodeRole
from preform_pipeline.printing import PrintOwner
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.presence import NodePresence
from preform_pipeline.verify.targets import PrinterCandidate
from tests.pg_cluster import PgCluster
from tests.two_nodes import (
    FORM4,
    GREY,
    lost_events,
    stall_until_taken_over,
    two_nodes,
    waiting_build,
)

S = JobState


class FreePrinter:
    """One free Form 4 (what dispatch reads printer status from)."""

    description = "one free printer"

    def printer_candidates(self) -> Sequence[PrinterCandidate]:
        return [PrinterCandidate("Form4-A", (FORM4,), (GREY,), True, busy=None)]


class Sender:
    """Sends through the print owner, as the real sender does; remembers what went out."""

    def __init__(self, owner: PrintOwner) -> None:
        self.owner = owner
        self.sent: list[int] = []

    def __call__(self, build: Build, printer: str) -> None:
        self.owner.begin(build.id, build.job_key, printer, None)
        self.sent.append(build.id)
        self.owner.sent(build.id, f"job-{build.id}", printer)


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    return pg_cluster.create_database(f"stall_{request.node.name[-30:].lower()}")


@pytest.fixture
def nodes(url: str) -> Iterator[tuple[NodeRole, NodeRole]]:
    yield from two_nodes(url)


def _stall_until_taken_over(url: str, a: NodeRole, b: NodeRole, build: Build) -> None:
    stall_until_taken_over(url, b, build)
    held = b.store.held(build.id)
    assert held is not None and held.epoch == 2
    assert a.store.held(build.id) is not None  # A, frozen, does not know yet


def _found_lost(logs: list[MutableMapping[str, Any]], build: Build) -> bool:
    return bool(lost_events(logs, build))


class TestAStalledNodeWaitingForAPrinter:
    """The node finds its lease lost when it wakes and never sends; the new holder sends once."""

    @pytest.mark.parametrize("first", ["dispatch pass", "lease renewal"])
    def test_whatever_runs_first_after_the_stall_the_build_is_sent_once_by_its_new_holder(
        self, nodes: tuple[NodeRole, NodeRole], url: str, first: str
    ) -> None:
        a, b = nodes
        build = waiting_build(a.store, "m")
        a_sender = Sender(PrintOwner(a.store))
        a_dispatch = Dispatcher(a.store, FreePrinter(), a_sender)
        assert [w.id for w in a_dispatch.waiting()] == [build.id]  # read before the stall
        _stall_until_taken_over(url, a, b, build)
        history = b.store.build_history(build.id)

        with capture_logs() as logs:
            if first == "lease renewal":
                a.store.renew_all()
                assert a.store.held(build.id) is None
                assert a.stops.reason(build.id) is not None
            a_dispatch.dispatch_once()
            a.store.renew_all()
        assert a_sender.sent == []
        assert _found_lost(logs, build)
        assert b.store.build_history(build.id) == history  # A wrote nothing
        assert a.store.held(build.id) is None
        assert a_dispatch.waiting() == []  # nothing of it is A's to send any more

        b_sender = Sender(PrintOwner(b.store))
        Dispatcher(b.store, FreePrinter(), b_sender).dispatch_once()
        assert b_sender.sent == [build.id]
        sent = b.store.get_build(build.id)
        assert sent.state is S.PRINT_SENT
        moves = b.store.build_history(build.id)[len(history):]
        assert [(t.to_state, t.reason.endswith("[pc-b, epoch 2]")) for t in moves] == [
            (S.PRINT_SENDING, True), (S.PRINT_SENT, True)]


def _started_presence(node: NodeRole) -> NodePresence:
    """The node's presence as ``join_farm`` starts it: registered, beating."""
    node_id = node.store.node_id
    presence = NodePresence(node.store, NodeInfo(id=node_id, host=node_id, version="0.1.0"),
                            lease_s=60.0)
    presence.start()
    return presence


class TestAStalledNodeThatStopsBeforeItsNextRenewal:
    """A node woken from a stall may be stopped before its renewal thread's next pass (the
    farm ran out of work meanwhile). Leaving the farm looks at its leases once more: it
    reports the build lost, and its stop gives back none of the new holder's claim."""

    def test_it_reports_the_build_lost_and_the_new_holder_keeps_it(
        self, nodes: tuple[NodeRole, NodeRole], url: str
    ) -> None:
        a, b = nodes
        presence = _started_presence(a)  # registers A anew: before A claims anything
        build = waiting_build(a.store, "m")
        _stall_until_taken_over(url, a, b, build)

        with capture_logs() as logs:
            FarmMembership(a.store, a, presence).close()
        assert _found_lost(logs, build)
        assert [e["node"] for e in logs if e["event"] == "node_stopped"] == ["pc-a"]
        # B's claim stands: B still holds the build and may move it.
        held = {n.info.id: n.held_builds for n in b.store.list_nodes()}
        assert held["pc-a"] == () and held["pc-b"] == (build.id,)
        b.store.transition_build(build.id, S.PRINT_SENDING, "sending")
        assert b.store.get_build(build.id).state is S.PRINT_SENDING

    def test_a_build_it_still_holds_is_given_back_at_its_stop_without_a_loss_reported(
        self, nodes: tuple[NodeRole, NodeRole]
    ) -> None:
        a, b = nodes
        presence = _started_presence(a)  # registers A anew: before A claims anything
        build = waiting_build(a.store, "m")

        with capture_logs() as logs:
            FarmMembership(a.store, a, presence).close()
        assert not _found_lost(logs, build)
        lease = b.store.claim_build("pc-b", lease_s=60.0)  # claimable at once: no lease to wait
        assert lease is not None and lease.build_id == build.id
        assert lease.previous_owner == "pc-a"
