"""The print owner's resolve rules, on a manual clock, a real SQLite store and real processes."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.commands import jobs
from preform_pipeline.errors import PrintLookupError
from preform_pipeline.printing import (
    Evidence,
    FleetFolderLocator,
    PrintOwner,
    SendHolder,
    SendRecord,
    Sighting,
    holder_gone,
)
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.store import Build, JobState, SqliteJobStore

TIMEOUT_S = 30.0
REPORT_S = 2.0


@pytest.fixture
def alive() -> Iterator[SendHolder]:
    """A server process that is still running (it could still deliver the print)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield SendHolder.local("alive-server", child.pid, TIMEOUT_S)
    finally:
        child.kill()
        child.wait(timeout=10)


def _owner(store: SqliteJobStore, fleet: Path, clock: ManualClock) -> PrintOwner:
    return PrintOwner(store, [FleetFolderLocator(fleet, report_delay_s=REPORT_S)], clock=clock)


def _sending(store: SqliteJobStore, holder: SendHolder | None) -> Build:
    job = store.create_job(recipe="r", source_path="m.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    owner = PrintOwner(store)
    return owner.begin(build.id, f"r-{build.job_key}", "Form4-1", holder)


def _land(fleet: Path, build: Build) -> None:
    """The simulator's way of recording an accepted print: one job file in the fleet folder."""
    folder = fleet / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "late.json").write_text(json.dumps(
        {"job_id": "late", "job_name": build.job_name, "printer": "Form4-1"}), encoding="utf-8")


def _dead() -> SendHolder:
    return reaped_holder(request_timeout_s=TIMEOUT_S)


class TestHolder:
    """A holder is gone only when its exact process no longer runs."""

    def test_a_running_process_is_not_gone(self, alive: SendHolder) -> None:
        assert holder_gone(alive) is False

    def test_a_reaped_process_is_gone(self) -> None:
        assert holder_gone(_dead()) is True

    def test_a_reused_pid_counts_as_gone(self) -> None:
        me = SendHolder.local("me", os.getpid(), 1.0)
        assert me.create_time is not None
        older = SendHolder(me.server, 1.0, me.pid, me.create_time - 100.0, me.host,
                           instance=me.instance)
        assert holder_gone(older) is True

    def test_a_remote_server_is_never_proven_gone(self) -> None:
        assert holder_gone(SendHolder("http://10.0.0.5:44388", 1.0, remote=True)) is False

    def test_the_store_keeps_the_holder_of_a_send(self, store: SqliteJobStore) -> None:
        holder = _dead()
        build = _sending(store, holder)
        assert SendRecord.of(store.get_build(build.id)).holder == holder


class TestResolveRules:
    """Absent is a proof; anything less is unknown; a late print is found, never resent."""

    def test_a_late_landing_print_is_found_and_not_resent(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, alive: SendHolder
    ) -> None:
        build = _sending(store, alive)
        owner = _owner(store, fleet, clock)
        first = owner.resolve(build)
        assert first.pending and first.build is not None
        assert first.build.state is JobState.PRINT_SENDING
        clock.advance(3.0)
        _land(fleet, build)
        second = owner.resolve(store.get_build(build.id))
        assert second.evidence is Evidence.FOUND
        assert second.build is not None and second.build.state is JobState.PRINT_SENT
        assert second.build.print_job_id == "late"

    def test_a_server_still_alive_is_unknown(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, alive: SendHolder
    ) -> None:
        build = _sending(store, alive)
        clock.advance(TIMEOUT_S + REPORT_S + 1)
        answer = _owner(store, fleet, clock).examine(SendRecord.of(build))
        assert answer.evidence is Evidence.UNKNOWN and "may still be sending" in answer.reason

    def test_a_dead_server_within_the_grace_period_is_unknown(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, _dead())
        clock.advance(TIMEOUT_S)  # the report delay is still running
        answer = _owner(store, fleet, clock).resolve(build)
        assert answer.evidence is Evidence.UNKNOWN and answer.pending
        assert answer.recheck_in_s is not None and 0 < answer.recheck_in_s <= REPORT_S
        assert store.get_build(build.id).state is JobState.PRINT_SENDING

    def test_a_dead_server_after_the_grace_period_with_nothing_anywhere_is_absent(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, _dead())
        clock.advance(TIMEOUT_S + REPORT_S)
        answer = _owner(store, fleet, clock).resolve(build)
        assert answer.evidence is Evidence.ABSENT
        assert store.get_build(build.id).state is JobState.PREPARED

    def test_a_send_that_cannot_be_settled_becomes_unverified(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock, alive: SendHolder
    ) -> None:
        build = _sending(store, alive)
        owner = _owner(store, fleet, clock)
        clock.advance(TIMEOUT_S + REPORT_S)
        answer = owner.resolve(build)
        assert answer.evidence is Evidence.UNKNOWN and not answer.pending
        settled = store.get_build(build.id)
        assert settled.state is JobState.UNVERIFIED and "jobs resolve" in settled.reason

    def test_an_unrecorded_holder_is_never_proven_absent(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, None)
        clock.advance(3600)
        assert _owner(store, fleet, clock).resolve(build).evidence is Evidence.UNKNOWN
        assert store.get_build(build.id).state is JobState.UNVERIFIED

    def test_a_place_that_cannot_be_asked_is_unknown(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        class Broken:
            name = "a broken feed"
            report_delay_s = 0.0
            recheck_s = 1.0

            def locate(self, send: SendRecord) -> Sighting | None:
                raise PrintLookupError(send.job_key, "unreachable")

        build = _sending(store, _dead())
        clock.advance(TIMEOUT_S + 1)
        answer = PrintOwner(store, [Broken()], clock=clock).resolve(build)
        assert answer.evidence is Evidence.UNKNOWN and "a broken feed" in answer.reason

    def test_waiting_finds_a_print_that_lands_during_the_grace_period(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = _sending(store, _dead())
        owner = _owner(store, fleet, clock)
        original = clock.sleep

        def sleep_then_land(seconds: float) -> None:
            original(seconds)
            _land(fleet, build)

        clock.sleep = sleep_then_land  # type: ignore[method-assign]
        answer = owner.resolve_waiting(build)
        assert answer.evidence is Evidence.FOUND


class TestJobsResolve:
    """A person settles an unverified print with `jobs resolve`, leaving an audit row."""

    def _args(self, store: SqliteJobStore, key: str, printed: bool) -> argparse.Namespace:
        return argparse.Namespace(action="resolve", job=key, printed=printed, format="text",
                                  store=str(store.path), settings=None)

    def _unverified(self, store: SqliteJobStore, fleet: Path, clock: ManualClock) -> Build:
        build = _sending(store, None)
        clock.advance(3600)
        _owner(store, fleet, clock).resolve(build)
        settled = store.get_build(build.id)
        assert settled.state is JobState.UNVERIFIED
        return settled

    def test_printed_records_the_print_as_sent(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = self._unverified(store, fleet, clock)
        out, err = io.StringIO(), io.StringIO()
        assert jobs.run(self._args(store, build.job_key, True), out, err) == 0
        after = store.get_build(build.id)
        assert after.state is JobState.PRINT_SENT
        last = store.build_history(build.id)[-1]
        assert (last.from_state, last.to_state) == (JobState.UNVERIFIED, JobState.PRINT_SENT)
        assert "a person confirmed" in last.reason

    def test_not_printed_fails_the_build_so_it_can_be_retried(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        build = self._unverified(store, fleet, clock)
        (job_id,) = build.job_ids
        out, err = io.StringIO(), io.StringIO()
        assert jobs.run(self._args(store, str(job_id), False), out, err) == 0
        assert store.get_build(build.id).state is JobState.FAILED
        assert store.get_job(job_id).state is JobState.FAILED
        assert "not printed" in store.history(job_id)[-1].reason

    def test_a_print_that_is_not_unverified_is_refused(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        job = store.create_job(recipe="r", source_path="m.stl", state=JobState.PROCESSING)
        build = store.create_build(recipe="r", job_ids=[job.id])
        out, err = io.StringIO(), io.StringIO()
        assert jobs.run(self._args(store, build.job_key, True), out, err) == 1
        assert "only an unverified" in err.getvalue()
