"""Two farm nodes on one PostgreSQL store choose printers under the store's claims: a printer
one node chose and has not sent to yet (so its status still says it is free) is not chosen by
the other node (a real PostgreSQL store, two nodes' stores, printer status faked at its
protocol, the sends through the real print owner)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.printing import PrintOwner
from preform_pipeline.store import Build
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.verify.targets import PrinterCandidate
from preform_pipeline.verify.tracking import PrinterClaims
from tests.pg_cluster import PgCluster
from tests.two_nodes import two_nodes, waiting_build
from tests.unit.dispatch.test_dispatch_waiting import FORM4, GREY, Printers, Recorder


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    return pg_cluster.create_database(f"node_claims_{request.node.name[-24:].lower()}")


@pytest.fixture
def nodes(url: str) -> Iterator[tuple[NodeRole, NodeRole]]:
    yield from two_nodes(url)


class _ClaimSeam:
    """A node's store (the real one) that runs ``before`` once, just before the node's first
    printer claim: the moment between its reading of the claims and its own claim."""

    def __init__(self, inner: NodeJobStore, before: Callable[[], None]) -> None:
        self.inner = inner
        self.before: Callable[[], None] | None = before

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def claim_printer(self, printer: str, **kwargs: Any) -> bool:
        if self.before is not None:
            before, self.before = self.before, None
            before()
        return self.inner.claim_printer(printer, **kwargs)


class TestTwoNodesDispatchingAtOnce:
    """Node A's send is under way (its print not on the printer yet) when node B's dispatch
    pass reads the same printers' status: B takes the other printer."""

    def test_each_node_sends_its_build_to_a_printer_of_its_own(
        self, nodes: tuple[NodeRole, NodeRole]
    ) -> None:
        a, b = nodes
        printers = Printers("Form4-A", "Form4-B")
        build_a, build_b = waiting_build(a.store, "model-a"), waiting_build(b.store, "model-b")
        sent_by_b = Recorder(PrintOwner(b.store), printers)
        node_b = Dispatcher(b.store, printers, sent_by_b, only=lambda w: w.id == build_b.id)
        sent_by_a = Recorder(PrintOwner(a.store), printers)

        def send_from_a(build: Build, printer: str) -> None:
            # A chose, its print is not sent yet: B's pass runs now, on the same status.
            node_b.dispatch_once()
            sent_by_a(build, printer)

        node_a = Dispatcher(a.store, printers, send_from_a, only=lambda w: w.id == build_a.id)
        with capture_logs() as logs:
            node_a.dispatch_once()
        on = dict(sent_by_a.sent + sent_by_b.sent)
        assert on == {build_a.job_key: "Form4-A", build_b.job_key: "Form4-B"}
        # B saw A's claim in the store when it read the claims: it never tried Form4-A.
        assert [(e["event"], e["printer"], e["build"]) for e in logs
                if str(e["event"]).startswith("printer_")] == [
            ("printer_claimed", "Form4-A", build_a.job_key),
            ("printer_claimed", "Form4-B", build_b.job_key),
            ("printer_released", "Form4-B", build_b.job_key),
            ("printer_released", "Form4-A", build_a.job_key),
        ]

    def test_a_printer_the_other_node_claimed_after_the_reading_is_chosen_again(
        self, nodes: tuple[NodeRole, NodeRole]
    ) -> None:
        a, b = nodes
        printers = Printers("Form4-A", "Form4-B")
        build_b = waiting_build(b.store, "model-b")
        # Node A's batch claims Form4-A after B read the claims, before B's own claim.
        a_claims = PrinterClaims(a.store)
        seam = _ClaimSeam(b.store, lambda: a_claims.choose(
            "PP-NODEABATCH", lambda taken: PrinterCandidate("Form4-A", (FORM4,), (GREY,), True)))
        sent_by_b = Recorder(PrintOwner(b.store), printers)
        with capture_logs() as logs:
            Dispatcher(seam, printers, sent_by_b).dispatch_once()  # type: ignore[arg-type]
        assert sent_by_b.sent == [(build_b.job_key, "Form4-B")]
        assert [(e["event"], e["printer"], e["build"]) for e in logs
                if e["event"] in ("printer_claimed", "printer_claimed_elsewhere")] == [
            ("printer_claimed", "Form4-A", "PP-NODEABATCH"),
            ("printer_claimed_elsewhere", "Form4-A", build_b.job_key),
            ("printer_claimed", "Form4-B", build_b.job_key),
        ]
