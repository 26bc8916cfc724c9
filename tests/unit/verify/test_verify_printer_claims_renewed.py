"""A printer claim renewed before each phase of its build's send lasts through the phase, on
the store's clock; a claim found taken by another holder after it ran out is lost, said, and
left to its new holder (real SQLite files, a manual clock)."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.tracking import (
    PRINTER_CLAIM_LEASE_S,
    PRINTER_CLAIM_PHASE_MARGIN_S,
    PrinterClaims,
)
from tests.unit.verify.test_verify_printer_claims_shared import _first_free

#: Another process's holder (it names no process: only its lease ends it).
OTHER = "pc-9:other"
#: A phase's bound (``servers.request_timeout_s``'s default), inside the lease.
PHASE_S = 610.0


def _other_claims(store: SqliteJobStore, printer: str = "Form4-A") -> bool:
    return store.claim_printer(printer, holder=OTHER, build="PP-OTHER",
                               lease_s=PRINTER_CLAIM_LEASE_S)


class TestARenewal:
    """The claim lasts a lease from the renewal, or the phase and a margin when longer."""

    def test_a_renewed_claim_lasts_a_lease_from_the_renewal(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        claims = PrinterClaims(store)
        assert claims.choose("PP-SENT", _first_free("Form4-A")).name == "Form4-A"
        clock.advance(PRINTER_CLAIM_LEASE_S - 1)
        assert claims.renew("PP-SENT", phase_s=PHASE_S)
        clock.advance(PRINTER_CLAIM_LEASE_S - 1)
        assert not _other_claims(store)
        clock.advance(1)
        assert _other_claims(store)

    def test_a_phase_longer_than_the_lease_is_covered_with_a_margin(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        claims = PrinterClaims(store)
        claims.choose("PP-SLOW", _first_free("Form4-A"))
        assert claims.renew("PP-SLOW", phase_s=1800.0)
        clock.advance(1800.0 + PRINTER_CLAIM_PHASE_MARGIN_S - 1)
        assert not _other_claims(store)
        clock.advance(1)
        assert _other_claims(store)

    def test_only_the_builds_own_claim_is_renewed(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        claims = PrinterClaims(store)
        claims.choose("PP-ONE", _first_free("Form4-A", "Form4-B"))
        claims.choose("PP-TWO", _first_free("Form4-B"))
        clock.advance(PRINTER_CLAIM_LEASE_S - 1)
        assert claims.renew("PP-ONE", phase_s=PHASE_S)
        clock.advance(1)
        assert store.printers_claimed(other_than=OTHER) == {"Form4-A"}

    def test_a_build_that_claimed_nothing_here_goes_on(self, store: SqliteJobStore) -> None:
        with capture_logs() as logs:
            assert PrinterClaims(store).renew("PP-QUEUE", phase_s=PHASE_S)  # never claimed
            assert PrinterClaims().renew("PP-NOSTORE", phase_s=PHASE_S)
        assert logs == []


class TestALostClaim:
    """Run out and taken by another holder since: the send must not go on."""

    def test_the_renewal_says_it_is_lost_and_leaves_the_new_holders_claim(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        claims = PrinterClaims(store)
        claims.choose("PP-LATE", _first_free("Form4-A"))
        clock.advance(PRINTER_CLAIM_LEASE_S)
        assert _other_claims(store)
        with capture_logs() as logs:
            assert not claims.renew("PP-LATE", phase_s=PHASE_S)
            claims.release(["PP-LATE"])
        assert [(e["event"], e.get("printer"), e.get("build")) for e in logs] == [
            ("printer_claim_lost", "Form4-A", "PP-LATE")]
        assert store.printers_claimed(other_than=claims.holder) == {"Form4-A"}
        # Not this process's any more: the next choice here leaves it out.
        assert claims.choose("PP-NEXT", _first_free("Form4-A", "Form4-B")).name == "Form4-B"

    def test_a_claim_that_ran_out_with_nobody_taking_it_is_taken_again(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        claims = PrinterClaims(store)
        claims.choose("PP-LATE", _first_free("Form4-A"))
        clock.advance(PRINTER_CLAIM_LEASE_S + 1)
        assert claims.renew("PP-LATE", phase_s=PHASE_S)
        assert not _other_claims(store)


class TestAStoreThatFails:
    """The send goes on with the process's own claim, and the warning says why."""

    def test_a_renewal_the_store_cannot_write_goes_on_with_a_warning_per_claim(
        self, tmp_path: Path
    ) -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        claims = PrinterClaims(store)
        # A build chose twice (a retried print step): each of its claims is renewed.
        claims.choose("PP-SENDING", _first_free("Form4-A"))
        claims.choose("PP-SENDING", _first_free("Form4-B"))
        store.close()
        with capture_logs() as logs:
            assert claims.renew("PP-SENDING", phase_s=PHASE_S)
        closed = f"{tmp_path / 'jobs.sqlite3'}: the job store is closed"
        assert [(e["event"], e["action"], e["error"]) for e in logs] == [
            ("printer_claims_unshared", "renew", closed)] * 2
