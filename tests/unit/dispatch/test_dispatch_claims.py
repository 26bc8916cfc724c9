"""Dispatch chooses under the claims the hot folder's batches choose under: a printer chosen
elsewhere and not sent to yet is not chosen, one chosen here is not chosen elsewhere until its
send ended, sent or not (a real SQLite store, printer status faked at its protocol)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, SqliteJobStore
from preform_pipeline.verify.targets import PrinterCandidate
from preform_pipeline.verify.tracking import PrinterClaims
from tests.unit.dispatch.test_dispatch_waiting import Printers, Recorder, waiting_build


def _first_free(printers: Printers) -> Callable[[Collection[str]], PrinterCandidate]:
    """A batch's pick: the first printer its status says is free that no one else chose."""

    def pick(taken: Collection[str]) -> PrinterCandidate:
        free = [p for p in printers.printer_candidates()
                if p.busy is None and p.name not in taken]
        assert free, f"no printer free for the batch: {sorted(taken)} chosen elsewhere"
        return free[0]

    return pick


def _events(logs: Sequence[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(e["event"], e["printer"], e["build"], e.get("by")) for e in logs
            if e["event"] in ("printer_claimed", "printer_released")]


class TestAPrinterABatchChose:
    """Its print not sent yet, it still says it is free; dispatch takes the other one."""

    def test_the_waiting_build_goes_to_the_other_printer(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner, printers, claims = PrintOwner(store, clock=clock), Printers("A", "B"), \
            PrinterClaims()
        send = Recorder(owner, printers)
        waiting = waiting_build(store, owner, clock)
        assert claims.choose("PP-BATCH", _first_free(printers)).name == "A"
        with capture_logs() as logs:
            Dispatcher(store, printers, send, clock=clock, claims=claims).dispatch_once()
        assert send.sent == [(waiting.job_key, "B")]
        assert _events(logs) == [("printer_claimed", "B", waiting.job_key, "dispatch"),
                                 ("printer_released", "B", waiting.job_key, None)]
        # The batch's claim stands until its own print was sent.
        assert claims.choose("PP-OTHER", _first_free(Printers("A", "C"))).name == "C"


class TestAPrinterDispatchChose:
    """While its send is under way no batch chooses it; once it ended, sent or not, it is
    free for a choice again."""

    def test_a_batch_choosing_during_the_send_takes_the_other_printer(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner, printers, claims = PrintOwner(store, clock=clock), Printers("A", "B"), \
            PrinterClaims()
        recorder = Recorder(owner, printers)
        batch: list[str] = []

        def send(build: Build, printer: str) -> None:
            # The print is not on the printer yet: its status still says it is free.
            batch.append(claims.choose("PP-BATCH", _first_free(printers)).name)
            recorder(build, printer)

        waiting = waiting_build(store, owner, clock)
        Dispatcher(store, printers, send, clock=clock, claims=claims).dispatch_once()
        assert recorder.sent == [(waiting.job_key, "A")] and batch == ["B"]

    def test_a_send_that_fails_frees_its_printer_at_once(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner, printers, claims = PrintOwner(store, clock=clock), Printers("A", "B"), \
            PrinterClaims()
        recorder = Recorder(owner, printers)
        batch: list[str] = []
        refused, second = waiting_build(store, owner, clock), waiting_build(store, owner, clock)
        recorder.refuse.add(refused.job_key)

        def send(build: Build, printer: str) -> None:
            if build.id == second.id:
                # The refused print is not on A: a batch choosing now may take it.
                batch.append(claims.choose("PP-BATCH", _first_free(printers)).name)
            recorder(build, printer)

        with capture_logs() as logs:
            done = Dispatcher(store, printers, send, clock=clock, claims=claims).dispatch_once()
        assert [(d.printer, d.error is not None) for d in done] == [("A", True), ("B", False)]
        assert batch == ["A"]
        assert _events(logs)[:3] == [
            ("printer_claimed", "A", refused.job_key, "dispatch"),
            ("printer_claimed", "B", second.job_key, "dispatch"),
            ("printer_released", "A", refused.job_key, None),
        ]

    def test_a_send_that_raises_past_its_handling_leaves_no_claim_of_the_pass(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner, printers, claims = PrintOwner(store, clock=clock), Printers("A", "B"), \
            PrinterClaims()

        def send(build: Build, printer: str) -> None:
            raise RuntimeError("a bug in the sender")

        first, second = waiting_build(store, owner, clock), waiting_build(store, owner, clock)
        with capture_logs() as logs, pytest.raises(RuntimeError):
            Dispatcher(store, printers, send, clock=clock, claims=claims).dispatch_once()
        released = {(e[1], e[2]) for e in _events(logs) if e[0] == "printer_released"}
        assert released == {("A", first.job_key), ("B", second.job_key)}
        assert [claims.choose(f"PP-{n}", _first_free(printers)).name
                for n in (1, 2)] == ["A", "B"]


class TestWhatIsNotClaimed:
    """A Fleet Control queue takes any number of jobs: it is not claimed."""

    def test_a_queue_is_sent_to_without_a_claim(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner, printers = PrintOwner(store, clock=clock), Printers("A")
        send = Recorder(owner, printers)
        queued = waiting_build(store, owner, clock, target=PrintTarget(("queue-1",)))
        with capture_logs() as logs:
            Dispatcher(store, printers, send, clock=clock,
                       claims=PrinterClaims()).dispatch_once()
        assert send.sent == [(queued.job_key, "queue-1")]
        assert _events(logs) == []


class TestARunEndingAfterDispatchClaimedItsHeldBuild:
    """A held build approved before its run ended: the dispatch loop claimed a printer for
    it under the same key; the run's end releases only the claims the run made."""

    def test_the_dispatch_loops_claim_stands_and_a_batch_takes_the_other_printer(self) -> None:
        claims = PrinterClaims()
        with claims.choosing() as choice:
            assert choice.claim("PP-HELD", "A", by="dispatch")
        assert claims.choose("PP-RAN", _first_free(Printers("B"))).name == "B"
        with capture_logs() as logs:
            claims.release(["PP-HELD", "PP-RAN"], by="run")
        assert _events(logs) == [("printer_released", "B", "PP-RAN", None)]
        assert claims.choose("PP-NEXT", _first_free(Printers("A", "C"))).name == "C"
        claims.release(["PP-HELD"])  # the dispatch loop's own end: whoever made it
        assert claims.choose("PP-LAST", _first_free(Printers("A"))).name == "A"
