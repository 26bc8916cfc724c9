"""A build whose files wait in processing/ for room: no write is tried on its disk while that
disk looks full (bytes or files), and a try refused on a disk that looks to have room (a
quota, or a write larger than the room left) is followed by a doubling wait on the daemon's
clock, not by a try on every pass. The inbox is on a real small tmpfs; the loop's call is
made by the test, on a manual clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names, processing_job
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.outcomes import ROOM_RETRY_MAX_S, OutcomeFolders
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
def outcomes(tmp_path: Path, small_disk: SmallDisk, store: SqliteJobStore, script: Script,
             recipe: Path, clock: ManualClock) -> OutcomeFolders:
    """The outcome folders of a daemon (not started) whose inbox is on the small disk, on
    the manual clock."""
    daemon = make_daemon(small_disk.root, store, script, recipe, clock=clock,
                         hot={"output_root": tmp_path / "out"})
    return daemon.outcomes


def _tries(logs: list[dict[str, object]]) -> list[object]:
    """The wait each refused retry set before the next (``retry_in_s``), in order."""
    return [e["retry_in_s"] for e in logs if e["event"] == "build_files_still_unsettled"]


class TestNoWriteOnADiskThatLooksFull:
    """While the inbox's disk is full, however long the wait, its files are only looked at."""

    def test_the_files_wait_untried_and_settle_once_freed(
        self, small_disk: SmallDisk, store: SqliteJobStore, outcomes: OutcomeFolders,
        clock: ManualClock,
    ) -> None:
        inbox = small_disk.root / "inbox"
        build = _prepared(store, inbox)
        small_disk.fill()
        with pytest.raises(OSError):
            outcomes.settle_build(build, None)
        assert outcomes.waiting_for_room()

        with capture_logs() as logs:
            for _ in range(3):  # each pass long after any wait a refusal would set
                clock.advance(ROOM_RETRY_MAX_S * 2)
                outcomes.settle_where_room()
            assert _tries(logs) == []  # no write tried, so none refused
            assert names(inbox / "done") == []
            small_disk.free()
            outcomes.settle_where_room()

        assert names(inbox / "done") == ["p.stl", "p.stl.report.json"]
        assert [e["build_id"] for e in logs if e["event"] == "build_files_settled"] == [
            build.id]
        assert not outcomes.waiting_for_room()


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
        assert not outcomes.waiting_for_room()
