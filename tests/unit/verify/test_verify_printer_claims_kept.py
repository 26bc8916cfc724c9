"""A run's printer claim is renewed by a thread of its own until its build is released, so a
print request longer than the lease keeps the printer; a renewal that finds the claim taken
says so and leaves it to its new holder (real SQLite files on the system clock, claims with a
lease of a fraction of a second: the time that passes is the point of these tests)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.tracking import PrinterClaims
from tests.unit.verify.test_verify_printer_claims_shared import _first_free

#: Short enough to pass many times within a test, long enough for a renewal (a third of it)
#: to reach the store in time on a loaded machine.
LEASE_S = 0.6
#: Another process's holder (it names no process: only its lease ends it).
OTHER = "pc-9:other"
#: The ending child's lease: far longer than its life and the check after it, however loaded
#: the machine (a claim run out would be free without being taken over).
CHILD_LEASE_S = 30.0
#: A process that chooses a printer for a run's build and ends without sending or releasing.
CLAIM_AND_END = f"""
import sys
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.targets import PrinterCandidate
from preform_pipeline.verify.tracking import PrinterClaims
claims = PrinterClaims(SqliteJobStore(sys.argv[1]), lease_s={CHILD_LEASE_S})
claims.choose("PP-KEPT-ENDED", lambda taken: PrinterCandidate("Form4-A", (), (), True))
print(claims.holder)
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    """A real SQLite store on the system clock: the renewal thread waits in real time."""
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as opened:
        yield opened


def _other_claims(store: SqliteJobStore) -> bool:
    return store.claim_printer("Form4-A", holder=OTHER, build="PP-OTHER", lease_s=60.0)


def _renewing(build: str) -> bool:
    """A thread renewing ``build``'s claims runs in this process (one per build in flight).
    It never keeps the process from ending (a daemon thread; the process-level check is
    :class:`TestAProcessEndingWithARunsClaim`, whose child mutmut's coverage does not see)."""
    threads = [t for t in threading.enumerate() if t.name == f"printer-claim-{build}"]
    assert all(t.daemon for t in threads), threads
    return bool(threads)


def _leases_pass(count: int = 4) -> None:
    time.sleep(count * LEASE_S)  # nothing to wait for: unrenewed, a claim runs out


class TestARunsClaim:
    """Chosen by a run's build, it lasts while the build has not sent its print."""

    def test_is_kept_past_its_lease_until_its_build_is_released(
        self, store: SqliteJobStore
    ) -> None:
        claims = PrinterClaims(store, lease_s=LEASE_S)
        claims.choose("PP-KEPT-SLOW", _first_free("Form4-A"))
        _leases_pass()
        assert not _other_claims(store)
        claims.release(["PP-KEPT-SLOW"])
        assert _other_claims(store)

    def test_is_not_renewed_once_released(self, store: SqliteJobStore) -> None:
        claims = PrinterClaims(store, lease_s=LEASE_S)
        claims.choose("PP-KEPT-SENT", _first_free("Form4-A"))
        assert _renewing("PP-KEPT-SENT")
        claims.release(["PP-KEPT-SENT"])
        wait_for(lambda: not _renewing("PP-KEPT-SENT"), 10, interval=0.01,
                 what="the renewal thread ended")  # at once, not at its next renewal
        assert store.claim_printer("Form4-A", holder=OTHER, build="PP-OTHER", lease_s=LEASE_S)
        _leases_pass()  # the other holder's short claim ran out; nothing renewed ours
        assert store.printers_claimed(other_than=OTHER) == frozenset()

    def test_is_not_renewed_for_claims_no_one_holds_any_more(
        self, store: SqliteJobStore
    ) -> None:
        claims = PrinterClaims(store, lease_s=LEASE_S)
        claims.choose("PP-KEPT-GONE", _first_free("Form4-A"))
        del claims
        gc.collect()
        _leases_pass()
        assert _other_claims(store)


    def test_without_a_store_nothing_is_renewed(self) -> None:
        claims = PrinterClaims(lease_s=LEASE_S)  # a run without a job store: its own claims
        claims.choose("PP-KEPT-NOSTORE", _first_free("Form4-A"))
        assert not _renewing("PP-KEPT-NOSTORE")
        claims.release(["PP-KEPT-NOSTORE"])


def _taken_by_another(
    store: SqliteJobStore, claims: PrinterClaims, build: str, logs: Sequence[Mapping[str, Any]]
) -> None:
    """Another process takes ``build``'s printer: our row ended (as by a store that judged its
    holder gone) and the printer claimed by someone else; waits until the renewal says so."""
    store.release_printers(holder=claims.holder, builds=[build])
    assert _other_claims(store)
    wait_for(lambda: any(e["event"] == "printer_claim_lost" for e in logs),
             30 * LEASE_S, interval=0.05, what="the lost claim said")


class TestALostRunClaim:
    """Taken by another holder in the store since the last renewal: said once, left to it."""

    def test_the_renewal_says_it_is_lost_and_leaves_the_new_holders_claim(
        self, store: SqliteJobStore
    ) -> None:
        claims = PrinterClaims(store, lease_s=LEASE_S)
        claims.choose("PP-KEPT-MINE", _first_free("Form4-A"))
        with capture_logs() as logs:
            _taken_by_another(store, claims, "PP-KEPT-MINE", logs)
            _leases_pass()
        lost = [(e["printer"], e["build"]) for e in logs if e["event"] == "printer_claim_lost"]
        assert lost == [("Form4-A", "PP-KEPT-MINE")]
        assert store.printers_claimed(other_than=claims.holder) == {"Form4-A"}
        assert not _renewing("PP-KEPT-MINE")  # the renewals ended with the loss
        claims.release(["PP-KEPT-MINE"])  # nothing of it left to release: the other's stays
        assert store.printers_claimed(other_than=claims.holder) == {"Form4-A"}

    def test_a_build_that_chooses_again_after_a_loss_keeps_its_new_claim(
        self, store: SqliteJobStore
    ) -> None:
        claims = PrinterClaims(store, lease_s=LEASE_S)
        claims.choose("PP-KEPT-AGAIN", _first_free("Form4-A"))
        with capture_logs() as logs:
            _taken_by_another(store, claims, "PP-KEPT-AGAIN", logs)
        # A retried print step chooses again: the printer it gets now is kept as the first was.
        assert claims.choose("PP-KEPT-AGAIN", _first_free("Form4-A", "Form4-B")).name == "Form4-B"
        _leases_pass()
        assert not store.claim_printer("Form4-B", holder=OTHER, build="PP-OTHER", lease_s=60.0)
        claims.release(["PP-KEPT-AGAIN"])


class TestAProcessEndingWithARunsClaim:
    """It ends at once (the renewals do not keep it alive), and its claim is taken over."""

    def test_exits_at_once_and_its_claim_is_taken_over(self, store: SqliteJobStore) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
        child = subprocess.run([sys.executable, "-c", CLAIM_AND_END, str(store.path)],
                               capture_output=True, text=True, timeout=CHILD_LEASE_S / 2, env=env,
                               check=False)
        assert child.returncode == 0, child.stderr
        with capture_logs() as logs:
            assert _other_claims(store)
        assert [(e["event"], e["dead_holder"]) for e in logs] == [
            ("printer_claim_taken_over", child.stdout.strip())]
