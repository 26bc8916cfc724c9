"""Both stores (SQLite, PostgreSQL): printers claimed for a build whose print is not sent yet,
one holder at a time, each claim ending when released or when its lease runs out on the
store's clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobStore, SqliteJobStore

LEASE_S = 900.0
RUN, WATCH = "pc-1:100:aaaa", "pc-1:200:bbbb"


def _claim(store: JobStore, holder: str, build: str, printer: str = "Form4-A") -> bool:
    return store.claim_printer(printer, holder=holder, build=build, lease_s=LEASE_S)


class TestOneHolderAtATime:
    """A printer claimed by one holder is not another's until the claim ends."""

    def test_a_printer_claimed_by_one_holder_is_refused_to_another(self, store: JobStore) -> None:
        assert _claim(store, RUN, "build-1")
        assert not _claim(store, WATCH, "PP-WATCH")
        assert store.printers_claimed(other_than=WATCH) == {"Form4-A"}
        assert store.printers_claimed(other_than=RUN) == frozenset()

    def test_a_holder_may_claim_its_own_printer_again_for_another_build(
        self, store: JobStore
    ) -> None:
        assert _claim(store, RUN, "build-1")
        assert _claim(store, RUN, "build-2")
        # The claim is build-2's now: releasing build-1 leaves it.
        assert store.release_printers(holder=RUN, builds=["build-1"]) == 0
        assert not _claim(store, WATCH, "PP-WATCH")

    def test_other_printers_stay_free(self, store: JobStore) -> None:
        assert _claim(store, RUN, "build-1", "Form4-A")
        assert _claim(store, WATCH, "PP-WATCH", "Form4-B")
        assert store.printers_claimed(other_than=RUN) == {"Form4-B"}


class TestTheEndOfAClaim:
    """Released by its holder (sent, or ended without), or run out when its holder died."""

    def test_a_released_claim_frees_the_printer_at_once(self, store: JobStore) -> None:
        assert _claim(store, RUN, "build-1")
        assert store.release_printers(holder=RUN, builds=["build-1", "build-9"]) == 1
        assert store.printers_claimed(other_than=WATCH) == frozenset()
        assert _claim(store, WATCH, "PP-WATCH")

    def test_another_holder_cannot_release_a_claim(self, store: JobStore) -> None:
        assert _claim(store, RUN, "build-1")
        assert store.release_printers(holder=WATCH, builds=["build-1"]) == 0
        assert not _claim(store, WATCH, "PP-WATCH")

    def test_a_claim_nobody_released_ends_with_its_lease(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        assert _claim(store, RUN, "build-1")
        clock.advance(LEASE_S - 1)
        assert not _claim(store, WATCH, "PP-WATCH")
        clock.advance(1)
        assert store.printers_claimed(other_than=WATCH) == frozenset()
        assert _claim(store, WATCH, "PP-WATCH")
        assert store.printers_claimed(other_than=RUN) == {"Form4-A"}


class TestTwoProcessesOnOneFile:
    """A ``run`` and a ``watch`` open one SQLite file: the claims are the file's."""

    def test_the_second_opener_sees_the_first_ones_claim(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        with SqliteJobStore(store_path, clock=clock) as run, \
                SqliteJobStore(store_path, clock=clock) as watch:
            assert _claim(run, RUN, "build-1")
            assert watch.printers_claimed(other_than=WATCH) == {"Form4-A"}
            assert not _claim(watch, WATCH, "PP-WATCH")


class TestADamagedStore:
    """The error says what the store was doing when it failed."""

    @pytest.mark.parametrize(("action", "call"), [
        ("claiming a printer", lambda store: _claim(store, RUN, "build-1")),
        ("reading the printers claimed", lambda store: store.printers_claimed(other_than=RUN)),
        ("releasing printers",
         lambda store: store.release_printers(holder=RUN, builds=["build-1"])),
    ])
    def test_the_error_names_what_was_being_done(
        self, store_path: Path, action: str, call: Callable[[JobStore], object]
    ) -> None:
        with SqliteJobStore(store_path) as store:
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("DROP TABLE printer_claims")
            other.close()
            with pytest.raises(StoreError) as raised:
                call(store)
            assert raised.value.message.startswith(
                f"{store_path}: the job store failed while {action}: no such table: "
                "printer_claims")
