"""Both stores (SQLite, PostgreSQL): printers claimed for a build whose print is not sent yet,
one holder at a time, each claim ending when released, when its lease runs out on the
store's clock (PostgreSQL's: the database's), or at once when its holder is a process of this
host that is gone."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.liveness import ProcessIdentity, this_instance
from preform_pipeline.store import JobStore, SqliteJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from tests.instances import other_instance
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import CLOCK_START

LEASE_S = 900.0
RUN, WATCH = "pc-1:100:aaaa", "pc-1:200:bbbb"


def _claim(store: JobStore, holder: str, build: str, printer: str = "Form4-A") -> bool:
    return store.claim_printer(printer, holder=holder, build=build, lease_s=LEASE_S)


def _node_store(url: str, clock: ManualClock) -> PostgresJobStore:
    """Another node's store on the same database, going by its own ``clock``."""
    return PostgresJobStore(url, clock=clock, password=PG_PASSWORD)


def _ended_process() -> ProcessIdentity:
    """A process of this host that ran and ended (its identity read while it ran)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        running = ProcessIdentity.of_running(child.pid)
        assert running is not None
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
    return running


def _holder(process: ProcessIdentity, tag: str) -> str:
    """A holder as PrinterClaims names one: its process, then a tag of its own."""
    return f"{process.label()}:{tag}"


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

    def test_a_claim_nobody_released_ends_with_its_lease_on_this_machines_clock(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        # SQLite: every process of the store runs on this machine, by this one clock.
        with SqliteJobStore(store_path, clock=clock) as store:
            assert _claim(store, RUN, "build-1")
            clock.advance(LEASE_S - 1)
            assert not _claim(store, WATCH, "PP-WATCH")
            clock.advance(1)
            assert store.printers_claimed(other_than=WATCH) == frozenset()
            assert _claim(store, WATCH, "PP-WATCH")
            assert store.printers_claimed(other_than=RUN) == {"Form4-A"}

    def test_a_renewal_by_its_holder_lasts_a_lease_from_then(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        with SqliteJobStore(store_path, clock=clock) as store:
            assert _claim(store, RUN, "build-1")
            clock.advance(LEASE_S - 1)
            assert _claim(store, RUN, "build-1")
            clock.advance(LEASE_S - 1)
            assert not _claim(store, WATCH, "PP-WATCH")
            clock.advance(1)
            assert _claim(store, WATCH, "PP-WATCH")


class TestTheDatabasesClock:
    """On PostgreSQL a claim lasts by the database's clock, as the build leases do: nodes
    whose clocks differ by far more than a lease still agree on whose a printer is."""

    def test_a_claim_of_a_node_whose_clock_is_behind_holds_for_a_node_whose_clock_is_ahead(
        self, pg_url: str, pg_store: PostgresJobStore
    ) -> None:
        behind = ManualClock(wall=CLOCK_START - timedelta(hours=1))
        with _node_store(pg_url, behind) as slow, \
                _node_store(pg_url, ManualClock(wall=CLOCK_START + timedelta(hours=1))) as fast:
            assert _claim(slow, RUN, "build-1")
            assert fast.printers_claimed(other_than=WATCH) == {"Form4-A"}
            assert not _claim(fast, WATCH, "PP-WATCH")

    def test_a_claim_ends_by_the_databases_clock_whatever_the_nodes_say(
        self, pg_url: str, pg_store: PostgresJobStore
    ) -> None:
        ahead = ManualClock(wall=CLOCK_START + timedelta(hours=1))
        with _node_store(pg_url, ahead) as fast, \
                _node_store(pg_url, ManualClock(wall=CLOCK_START)) as slow:
            # A lease of no time has ended by the next transaction, on the database's clock.
            assert fast.claim_printer("Form4-A", holder=RUN, build="build-1", lease_s=0.0)
            assert slow.printers_claimed(other_than=WATCH) == frozenset()
            assert _claim(slow, WATCH, "PP-WATCH")


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


class TestAHolderThatDied:
    """A claim whose holder is a process of this host that is gone (killed between its claim
    and its send) is taken over at once, and said; one that may still run is not."""

    def test_a_claim_of_an_ended_process_of_this_host_is_taken_over_at_once(
        self, store: JobStore
    ) -> None:
        dead = _holder(_ended_process(), "deadbeef")
        assert store.claim_printer("Form4-A", holder=dead, build="PP-DEAD", lease_s=LEASE_S)
        assert store.printers_claimed(other_than=WATCH) == frozenset()
        with capture_logs() as logs:
            assert _claim(store, WATCH, "PP-WATCH")
        assert [e for e in logs if e["event"] == "printer_claim_taken_over"] == [{
            "event": "printer_claim_taken_over", "log_level": "warning", "printer": "Form4-A",
            "build": "PP-WATCH", "holder": WATCH, "dead_holder": dead, "dead_build": "PP-DEAD",
        }]
        assert store.printers_claimed(other_than=RUN) == {"Form4-A"}
        assert store.release_printers(holder=dead, builds=["PP-DEAD"]) == 0

    def test_a_claim_of_a_pid_now_run_by_another_process_is_taken_over(
        self, store: JobStore
    ) -> None:
        me = ProcessIdentity.current()
        earlier = ProcessIdentity(me.pid, me.create_time - 100.0, me.host, me.instance)
        assert store.claim_printer("Form4-A", holder=_holder(earlier, "old"), build="PP-OLD",
                                   lease_s=LEASE_S)
        assert _claim(store, WATCH, "PP-WATCH")

    def test_a_claim_of_a_running_process_holds(self, store: JobStore) -> None:
        running = _holder(ProcessIdentity.current(), "alive")
        assert store.claim_printer("Form4-A", holder=running, build="PP-LIVE", lease_s=LEASE_S)
        assert store.printers_claimed(other_than=WATCH) == {"Form4-A"}
        assert not _claim(store, WATCH, "PP-WATCH")

    def test_a_claim_of_another_hosts_process_holds_until_its_lease_ends(
        self, store: JobStore
    ) -> None:
        ended = _ended_process()
        elsewhere = ProcessIdentity(ended.pid, ended.create_time, f"not-{ended.host}")
        holder = _holder(elsewhere, "far")
        assert store.claim_printer("Form4-A", holder=holder, build="PP-FAR", lease_s=LEASE_S)
        assert store.printers_claimed(other_than=WATCH) == {"Form4-A"}
        assert not _claim(store, WATCH, "PP-WATCH")


class TestAHolderOfAnotherInstance:
    """Another container of the same host name, or this machine before a restart, numbers its
    processes apart: a pid of its holder says nothing here, so only its lease ends its claim.
    A holder of an earlier version (no instance) is judged the same way."""

    def test_a_claim_naming_a_live_pid_of_ours_in_another_pid_namespace_holds(
        self, store: JobStore
    ) -> None:
        me = ProcessIdentity.current()
        # Our pid there is another process, started at another time: here it looks recycled.
        there = ProcessIdentity(me.pid, me.create_time - 100.0, me.host, other_instance())
        assert store.claim_printer("Form4-A", holder=_holder(there, "there"), build="PP-THERE",
                                   lease_s=LEASE_S)
        with capture_logs() as logs:
            assert store.printers_claimed(other_than=WATCH) == {"Form4-A"}
            assert not _claim(store, WATCH, "PP-WATCH")
        assert logs == []

    def test_a_claim_naming_a_pid_ended_here_in_another_boot_holds_until_its_lease_ends(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        ended = _ended_process()
        before = ProcessIdentity(ended.pid, ended.create_time, ended.host, other_instance(True))
        with SqliteJobStore(store_path, clock=clock) as store:
            assert store.claim_printer("Form4-A", holder=_holder(before, "boot"),
                                       build="PP-BOOT", lease_s=LEASE_S)
            assert not _claim(store, WATCH, "PP-WATCH")
            clock.advance(LEASE_S)
            with capture_logs() as logs:
                assert _claim(store, WATCH, "PP-WATCH")
        assert logs == []  # run out, not taken over

    def test_a_claim_naming_an_ended_pid_of_this_instance_is_taken_over(
        self, store: JobStore
    ) -> None:
        ended = _ended_process()
        here = ProcessIdentity(ended.pid, ended.create_time, ended.host, this_instance())
        assert store.claim_printer("Form4-A", holder=_holder(here, "here"), build="PP-HERE",
                                   lease_s=LEASE_S)
        with capture_logs() as logs:
            assert _claim(store, WATCH, "PP-WATCH")
        assert [e["dead_build"] for e in logs
                if e["event"] == "printer_claim_taken_over"] == ["PP-HERE"]

    def test_a_claim_of_an_earlier_version_naming_an_ended_pid_holds(
        self, store: JobStore
    ) -> None:
        ended = _ended_process()
        earlier = f"{ended.host}:{ended.pid}:{ended.create_time:.3f}:0ld7a9e5"
        assert store.claim_printer("Form4-A", holder=earlier, build="PP-EARLIER",
                                   lease_s=LEASE_S)
        assert store.printers_claimed(other_than=WATCH) == {"Form4-A"}
        assert not _claim(store, WATCH, "PP-WATCH")
