"""Printer claims shared through the job store: a ``run`` beside a ``watch`` (two processes,
one SQLite file, each its own claims) never choose one printer for two builds while its
status still says it is free; a claim taken elsewhere between the reading and the claim makes
the choice again; a claim never released by a holder that may still run (here a claims
object of this very process) ends with its lease (real SQLite files)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import PrinterSelectionError
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.targets import PrinterCandidate
from preform_pipeline.verify.tracking import (
    PRINTER_CLAIM_LEASE_S,
    PrinterClaims,
    PrintTracking,
)
from tests.unit.dispatch.test_dispatch_waiting import FORM4, GREY
from tests.unit.verify import test_verify_tracking_run as tracking_run
from tests.unit.verify.test_verify_targets import local_devices_client
from tests.unit.verify.test_verify_tracking_run import _outcome, _recipe, _result


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def two_openers(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[SqliteJobStore, ...]]:
    """One store file opened twice, as a ``run`` and a ``watch`` open it."""
    path = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(path, clock=clock) as run, SqliteJobStore(path, clock=clock) as watch:
        yield run, watch


def _first_free(*names: str) -> Callable[[Collection[str]], PrinterCandidate]:
    """A pick over printers whose status all say free: the first nobody claimed."""

    def pick(taken: Collection[str]) -> PrinterCandidate:
        free = [n for n in names if n not in taken]
        assert free, f"no printer free: {sorted(taken)} claimed"
        return PrinterCandidate(free[0], (FORM4,), (GREY,), True)

    return pick


def _events(logs: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(e["event"], e.get("printer"), e.get("build"), e.get("by")) for e in logs
            if e["event"] in ("printer_claimed", "printer_claimed_elsewhere",
                              "printer_released")]


class TestARunBesideAWatch:
    """Each has its own claims; the store's tell each what the other chose."""

    def test_the_second_chooser_takes_the_other_printer(
        self, tmp_path: Path, two_openers: tuple[SqliteJobStore, ...]
    ) -> None:
        run_store, watch_store = two_openers
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        run, watch = PrintTracking(store=run_store), PrintTracking(store=watch_store)
        with capture_logs() as logs, local_devices_client(
                tracking_run.TestBatchesChoosingAtOnce._two_free_printers()) as local:
            # Neither print is sent: both printers still say they are free.
            assert run.choose_printer("build-1", recipe, local) == "Form4-A"
            assert watch.choose_printer("PP-WATCHBUILD", recipe, local) == "Form4-B"
            with pytest.raises(PrinterSelectionError) as refused:
                watch.choose_printer("PP-WATCHTHIRD", recipe, local)
            assert ("Form4-A: already chosen for another build, its print not sent yet"
                    in str(refused.value))
            # The run's build ended (here without its print): its printer is free again.
            run.after_run(_result(_outcome("build-1", None)), threading.Event())
            assert watch.choose_printer("PP-WATCHOTHER", recipe, local) == "Form4-A"
        # The watch read the run's claim before choosing: it never tried Form4-A meanwhile.
        assert _events(logs) == [
            ("printer_claimed", "Form4-A", "build-1", "run"),
            ("printer_claimed", "Form4-B", "PP-WATCHBUILD", "run"),
            ("printer_released", "Form4-A", "build-1", None),
            ("printer_claimed", "Form4-A", "PP-WATCHOTHER", "run"),
        ]


class TestAClaimTakenBetweenTheReadingAndTheClaim:
    def test_the_choice_is_made_again_without_that_printer(
        self, two_openers: tuple[SqliteJobStore, ...]
    ) -> None:
        run, watch = (PrinterClaims(store) for store in two_openers)
        pick = _first_free("Form4-A", "Form4-B")

        def watch_picks(taken: Collection[str]) -> PrinterCandidate:
            if not taken:  # the run claims Form4-A after the watch read the claims
                run.choose("build-1", pick)
            return pick(taken)

        with capture_logs() as logs:
            assert watch.choose("PP-WATCHBUILD", watch_picks).name == "Form4-B"
        assert _events(logs) == [
            ("printer_claimed", "Form4-A", "build-1", "run"),
            ("printer_claimed_elsewhere", "Form4-A", "PP-WATCHBUILD", "run"),
            ("printer_claimed", "Form4-B", "PP-WATCHBUILD", "run"),
        ]


class TestAHolderThatDied:
    """Its claim was never released: the printer is the others' once the lease ran out."""

    def test_the_printer_is_free_again_after_the_lease(
        self, two_openers: tuple[SqliteJobStore, ...], clock: ManualClock
    ) -> None:
        died, watch = (PrinterClaims(store) for store in two_openers)
        pick = _first_free("Form4-A", "Form4-B")
        assert died.choose("build-1", pick).name == "Form4-A"
        clock.advance(PRINTER_CLAIM_LEASE_S - 1)
        assert watch.choose("PP-WATCHBUILD", pick).name == "Form4-B"
        clock.advance(1)
        assert watch.choose("PP-WATCHOTHER", _first_free("Form4-A")).name == "Form4-A"


class TestAStoreThatFails:
    """The process keeps its own claims and says the store's are not shared."""

    def test_claims_stay_in_memory_with_a_warning(self, tmp_path: Path) -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        claims = PrinterClaims(store)
        store.close()
        pick = _first_free("Form4-A", "Form4-B")
        with capture_logs() as logs:
            assert claims.choose("build-1", pick).name == "Form4-A"
            assert claims.choose("build-2", pick).name == "Form4-B"
            claims.release(["build-1"])
            claims.release(["build-9"])  # it claimed nothing: the store is not asked
        closed = f"{tmp_path / 'jobs.sqlite3'}: the job store is closed"
        assert [(e["action"], e["error"]) for e in logs
                if e["event"] == "printer_claims_unshared"] == [
            ("read", closed), ("claim", closed), ("read", closed), ("claim", closed),
            ("release", closed)]
        assert claims.choose("build-3", pick).name == "Form4-A"
