"""A build whose files wait in processing/ for room: no write is tried on its disk while that
disk looks full (bytes or files), which is looked at once a second on the daemon's clock
however often the loop passes; a try refused on a disk that looks to have room (a quota, or
a write larger than the room left) is followed by a doubling wait, not by a try on every
pass; the loop sleeps no longer than until the next look or try. The inbox is on a real
small tmpfs; the loop's call is made by the test, on a manual clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names, processing_job
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.diskspace import ROOM_LOOK_EVERY_S, ROOM_RETRY_MAX_S
from preform_pipeline.errors import StoreError
from preform_pipeline.executor import BuildOutcome, BuildStatus
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.store import Build, JobState, SqliteJobStore
from tests.small_disk import SmallDisk


def _prepared(store: SqliteJobStore, inbox: Path, **fields: str) -> Build:
    """A build of one job (``p.stl`` in ``inbox``'s processing/), prepared: its files owed
    done/."""
    job_id = processing_job(store, inbox, "p.stl", sidecar=dict(fields))
    build = store.create_build(recipe="hot", job_ids=[job_id])
    for state in (JobState.PREPARING, JobState.PREPARED, JobState.DONE):
        build = store.transition_build(build.id, state, "test")
    return build


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def daemon(tmp_path: Path, small_disk: SmallDisk, store: SqliteJobStore, script: Script,
           recipe: Path, clock: ManualClock) -> HotFolderDaemon:
    """A daemon (not started) whose inbox is on the small disk, on the manual clock."""
    return make_daemon(small_disk.root, store, script, recipe, clock=clock,
                       hot={"output_root": tmp_path / "out"})


@pytest.fixture
def outcomes(daemon: HotFolderDaemon) -> OutcomeFolders:
    return daemon.outcomes


def _tries(logs: list[dict[str, object]]) -> list[object]:
    """The wait each refused retry set before the next (``retry_in_s``), in order."""
    return [e["retry_in_s"] for e in logs if e["event"] == "build_files_still_unsettled"]


def _looks(logs: list[dict[str, object]]) -> list[object]:
    """The wait each look that found the disk full set before the next, in order."""
    return [e["retry_in_s"] for e in logs if e["event"] == "build_files_wait_for_room"]


def _waiting_on_a_full_disk(store: SqliteJobStore, small_disk: SmallDisk,
                            outcomes: OutcomeFolders) -> Build:
    """A prepared build whose settle the filled disk refused: its files wait for room."""
    build = _prepared(store, small_disk.root / "inbox")
    small_disk.fill()
    with pytest.raises(OSError):
        outcomes.settle_build(build, None)
    assert outcomes.room_due_in() == 0.0  # looked at on the loop's next pass
    return build


class TestNoWriteOnADiskThatLooksFull:
    """While the inbox's disk is full, however long the wait, its files are only looked at."""

    def test_the_files_wait_untried_and_settle_once_freed(
        self, small_disk: SmallDisk, store: SqliteJobStore, outcomes: OutcomeFolders,
        clock: ManualClock,
    ) -> None:
        inbox = small_disk.root / "inbox"
        build = _waiting_on_a_full_disk(store, small_disk, outcomes)

        with capture_logs() as logs:
            for _ in range(3):  # each pass long after any wait a refusal would set
                clock.advance(ROOM_RETRY_MAX_S * 2)
                outcomes.settle_where_room()
            assert _tries(logs) == []  # no write tried, so none refused
            assert _looks(logs) == [ROOM_LOOK_EVERY_S] * 3
            assert names(inbox / "done") == []
            small_disk.free()
            clock.advance(ROOM_LOOK_EVERY_S)
            outcomes.settle_where_room()

        assert names(inbox / "done") == ["p.stl", "p.stl.report.json"]
        assert [e["build_id"] for e in logs if e["event"] == "build_files_settled"] == [
            build.id]
        assert outcomes.room_due_in() is None


class TestARefusalTheLookCannotSee:
    """A disk with room the write needs more than: tried, refused, and tried again after
    2, 4, 8 ... seconds, at most a minute; settled at the first try after room is made."""

    def test_the_retries_back_off_and_settle_once_there_is_room(
        self, small_disk: SmallDisk, store: SqliteJobStore, outcomes: OutcomeFolders,
        clock: ManualClock,
    ) -> None:
        inbox = small_disk.root / "inbox"
        # A sidecar's long text goes into the report: 300 KB, on a disk left ~200 KiB.
        build = _prepared(store, inbox, notes="x" * 300_000)
        small_disk.filler.write_bytes(b"\0" * (small_disk.free_bytes() - 200 * 1024))
        with pytest.raises(OSError):
            outcomes.settle_build(build, None)

        with capture_logs() as logs:
            outcomes.settle_where_room()  # the disk looks to have room: tried at once
            assert _tries(logs) == [2.0]
            for wait in (2.0, 4.0, 8.0, 16.0, 32.0, 60.0):
                clock.advance(wait - 0.01)
                outcomes.settle_where_room()  # not yet
                clock.advance(0.01)
                outcomes.settle_where_room()
            assert _tries(logs) == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
            small_disk.free()
            clock.advance(ROOM_RETRY_MAX_S)
            outcomes.settle_where_room()

        assert names(inbox / "done") == ["p.stl", "p.stl.report.json"]
        assert outcomes.room_due_in() is None


class TestTheLooksAtAFullDiskArePrompt:
    """A disk that stays full is looked at once a second however often the loop passes, and
    never less often: freed after minutes, the files move within a second."""

    def test_looked_at_once_a_second_and_settled_within_a_second_of_freeing(
        self, small_disk: SmallDisk, store: SqliteJobStore, outcomes: OutcomeFolders,
        clock: ManualClock,
    ) -> None:
        inbox = small_disk.root / "inbox"
        _waiting_on_a_full_disk(store, small_disk, outcomes)

        with capture_logs() as logs:
            for _ in range(180 * 4 + 1):  # a loop passing four times a second, 3 minutes
                outcomes.settle_where_room()
                clock.advance(0.25)
            # Looked at 0, 1, 2 ... 180 s in: 181 looks in 721 passes, none further apart.
            assert _looks(logs) == [ROOM_LOOK_EVERY_S] * 181
            small_disk.free()  # a quarter of a second after the last look
            clock.advance(0.5)
            outcomes.settle_where_room()
            assert names(inbox / "done") == []  # the next look not due: not made
            assert outcomes.room_due_in() == 0.25
            clock.advance(0.25)
            outcomes.settle_where_room()  # the look at 181 s: a second after the last

        assert names(inbox / "done") == ["p.stl", "p.stl.report.json"]
        assert outcomes.room_due_in() is None


class TestTheLoopSleepsUntilTheNextLook:
    """The daemon's wait ends when a waiting build's next look is due: the timeout it hands
    its wake event, on the manual clock (no real time measured)."""

    def test_the_wait_ends_at_the_next_look(
        self, small_disk: SmallDisk, store: SqliteJobStore, daemon: HotFolderDaemon,
        clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        _waiting_on_a_full_disk(store, small_disk, daemon.outcomes)
        daemon.outcomes.settle_where_room()  # looked at: full, the next look a second on
        clock.advance(0.75)
        timeouts: list[float] = []
        monkeypatch.setattr(daemon._wake, "wait", timeouts.append)

        daemon._wait(next_rescan=clock.monotonic() + 3600.0)

        # The loop's own longest wait is 1 s: a wait that ignored the look would last it.
        assert timeouts == [0.25]


class TestAStoreAwayDuringARetry:
    """The store away when a waiting build is tried: tried again a second later (its next
    look), so the loop, which sleeps until the next try, does not spin while the store is
    away."""

    def test_tried_again_a_second_later(
        self, small_disk: SmallDisk, store: SqliteJobStore, outcomes: OutcomeFolders,
        clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        inbox = small_disk.root / "inbox"
        _waiting_on_a_full_disk(store, small_disk, outcomes)
        small_disk.free()
        read = store.get_build

        def away(build_id: int) -> Build:
            monkeypatch.setattr(store, "get_build", read)  # back for the next read
            raise StoreError("the job store is away", hint="it comes back")

        monkeypatch.setattr(store, "get_build", away)

        with capture_logs() as logs:
            outcomes.settle_where_room()
            assert _tries(logs) == [ROOM_LOOK_EVERY_S]
            assert outcomes.room_due_in() == ROOM_LOOK_EVERY_S
            clock.advance(ROOM_LOOK_EVERY_S)
            outcomes.settle_where_room()

        assert names(inbox / "done") == ["p.stl", "p.stl.report.json"]


class TestTheSweepLeavesAWaitingBuildToItsLook:
    """The periodic sweep of processing/ leaves the files of a build waiting for room to
    that build's next look, whose report keeps the run's outcome (the sweep has none)."""

    def test_the_report_written_after_room_is_made_keeps_the_runs_outcome(
        self, small_disk: SmallDisk, store: SqliteJobStore, outcomes: OutcomeFolders,
    ) -> None:
        inbox = small_disk.root / "inbox"
        build = _prepared(store, inbox)
        outcome = BuildOutcome(name=build.job_key, index=1, status=BuildStatus.SUCCEEDED,
                               models=("p",), source_files=("p.stl",))
        small_disk.fill()
        with pytest.raises(OSError):
            outcomes.settle_build(build, outcome)
        small_disk.free()

        outcomes.settle_processing_folders()  # a rescan's sweep between two looks
        assert names(inbox / "done") == []
        outcomes.settle_where_room()  # the look

        report = json.loads((inbox / "done" / "p.stl.report.json").read_text("utf-8"))
        assert report["outcome"]["status"] == "succeeded"
