"""An inbox on a network share that goes away (hotfolder/presence.py; the daemon's
``_inboxes_away``): a real folder on another file system (/dev/shm) bind-mounted at the
inbox's path, unmounted, its empty mount point left, and mounted again; real watchdog
observers; a real SQLite store; the daemon's loop driven look by look on a manual clock.

Until session 43 an empty mount point was an emptied inbox: files waiting were forgotten, a
case cut short went on without its rest, the holds of held case folders were forgotten at
the second scan, so the rest of a held case was printed when the share came back, and a
notice said already was said again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import Script, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.caseholds import HOLD_NOTICE
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.files import MAX_NAME_BYTES
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, CaseFolder, JobPlace
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import JobState, SqliteJobStore
from tests.conftest import REPO_ROOT
from tests.share_mount import Share, mounted_share

BAD = os.fsdecode(b"lower\xff.stl")  # (a name the job store cannot record: set aside)
QUIET_S = 5.0
#: Past the daemon's rescan interval: each look is a scan of its own.
SCAN_S = 61.0
#: Bound on the wait for a watcher's event.
EVENT_WAIT_S = 5.0


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    """The share's folder on /dev/shm (another file system, as a share is), mounted at the
    inbox's path."""
    content = Path("/dev/shm") / f"pp-s43-share-{os.getpid()}-{tmp_path.name}"
    try:
        with mounted_share(content, tmp_path / "inbox") as mounted:
            yield mounted
    finally:
        if content.is_dir():
            for path in sorted(content.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
            content.rmdir()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@contextlib.contextmanager
def _started(tmp_path: Path, store: SqliteJobStore,
             clock: ManualClock) -> Iterator[HotFolderDaemon]:
    """The daemon started: its folders made, its real observers watching the inbox."""
    made = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                       write_recipe(tmp_path, printer=None),
                       inbox={"quiet_period_s": QUIET_S}, clock=clock)
    made._prepare_folders()
    made.watcher.start()
    try:
        yield made
    finally:
        made.watcher.stop()


@pytest.fixture
def daemon(tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
           share: Share) -> Iterator[HotFolderDaemon]:
    with _started(tmp_path, store, clock) as started:
        yield started


def _look(daemon: HotFolderDaemon, clock: ManualClock, after_s: float = 0.0) -> None:
    """One look of the daemon's loop, ``after_s`` seconds after the last."""
    clock.advance(after_s)
    daemon._drain_events()
    daemon._rescan()
    daemon._check_units()
    daemon._release_cut_cases()


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def _held_case(case: Path) -> None:
    """Case folder ``case``: upper.stl, and a part whose name holds the case."""
    case.mkdir()
    for seed, name in enumerate(("upper.stl", BAD), start=1):
        (case / name).write_bytes(tetra_stl_bytes(seed))


def _away_for_three_scans(share: Share, daemon: HotFolderDaemon, clock: ManualClock) -> None:
    share.unmount()
    assert names(share.at) == []  # its mount point, empty
    for _ in range(3):
        _look(daemon, clock, after_s=SCAN_S)
    share.mount()


class TestAShareAwayForScans:
    """Away, not emptied: said once, nothing forgotten, and all goes on when it is back."""

    def test_a_held_case_stays_held_when_it_is_back(
        self, share: Share, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        _held_case(share.at / "C-1")
        with capture_logs() as logs:
            _look(daemon, clock)  # its part set aside: the case held, its rest waiting
            assert len(store.notice_keys(HOLD_NOTICE)) == 1
            _away_for_three_scans(share, daemon, clock)
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert {(j.original_name, j.state) for j in store.list_jobs()} == {
            ("upper.stl", JobState.FAILED)}  # held with its case, not printed
        assert names(share.at / "failed") == sorted(
            [f"C-1/{BAD}", f"C-1/{BAD}.error.txt", "C-1/upper.stl", "C-1/upper.stl.error.txt"])
        (away,) = _events(logs, "inbox_unavailable")
        assert (away["inbox"], away["log_level"]) == (str(share.at), "error")
        assert away["reason"].startswith("its share is not mounted")
        (back,) = _events(logs, "inbox_available_again")
        assert back["inbox"] == str(share.at)
        assert [e["root"] for e in _events(logs, "case_holds_forgotten")] == []
        (held,) = _events(logs, "case_held")
        assert held["held"] == ["upper.stl"]

    def test_a_file_waiting_to_be_complete_is_not_said_again(
        self, share: Share, clock: ManualClock, daemon: HotFolderDaemon,
    ) -> None:
        part = REPO_ROOT / "sample_models" / "parts" / "l_bracket.stl"
        cut = share.at / part.name
        cut.write_bytes(part.read_bytes()[:600])  # a copy that died
        lines: list[str] = []
        daemon.notice = lines.append
        with capture_logs() as logs:
            _look(daemon, clock)
            _look(daemon, clock, after_s=QUIET_S + 1)
            assert len(lines) == 1  # said once: it waits for the rest
            _away_for_three_scans(share, daemon, clock)
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert len(lines) == 1 and len(_events(logs, "drop_waiting_incomplete")) == 1

    def test_a_notice_said_is_not_said_again(
        self, share: Share, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        too_long = share.at / ("n" * (MAX_NAME_BYTES + 1 - len(".stl")) + ".stl")
        too_long.write_bytes(tetra_stl_bytes(1))
        lines: list[str] = []
        daemon.notice = lines.append
        with capture_logs() as logs:
            _look(daemon, clock)
            assert len(lines) == 1
            _away_for_three_scans(share, daemon, clock)
            _look(daemon, clock, after_s=1.0)

        assert len(lines) == 1 and _events(logs, "notices_forgotten") == []
        assert store.notice_keys("drop_name_too_long ") == (f"drop_name_too_long {too_long}",)

    def test_a_case_cut_short_waits_for_its_rest(
        self, tmp_path: Path, share: Share, store: SqliteJobStore, clock: ManualClock,
    ) -> None:
        """A crash cut the take of C-5 after a.stl: its job waits in processing/ for the rest
        of its case, and goes on with it as one batch item (a case is never split). The
        share goes as the daemon starts, before any look has met the case folder."""
        case = share.at / "C-5"
        case.mkdir()
        (case / "b.stl").write_bytes(tetra_stl_bytes(6))
        place = JobPlace(share.at, "C-5/a.stl", case=CaseFolder.of(case, share.at))
        job = store.create_job(recipe="hot", source_path=case / "a.stl",
                               state=JobState.PROCESSING,
                               fields={HOTFOLDER_FIELD: place.to_json()})
        taken = share.at / "processing" / job.job_key / "a.stl"
        taken.parent.mkdir(parents=True)
        taken.write_bytes(tetra_stl_bytes(5))
        store.update_job(job.id, source_path=str(taken))
        with capture_logs() as logs, _started(tmp_path, store, clock) as daemon:
            daemon.recover()
            assert len(_events(logs, "case_take_resumes")) == 1
            _away_for_three_scans(share, daemon, clock)
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert _events(logs, "case_take_not_resumed") == []
        (item,) = daemon.batcher.flush()[0].items
        assert len(item.job_ids) == 2 and item.job_ids[0] == job.id  # a.stl with b.stl


    def test_files_put_on_it_meanwhile_are_found_as_it_comes_back(
        self, share: Share, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        """Another machine wrote to the share while this one's mount was away: its files
        are found at the first look that finds the inbox back, not at the next rescan."""
        _look(daemon, clock)
        share.unmount()
        _look(daemon, clock, after_s=SCAN_S)
        (share.content / "new.stl").write_bytes(tetra_stl_bytes(4))
        share.mount()
        clock.advance(1.0)
        daemon._check_units()  # (a look between two rescans)
        assert [j.original_name for j in store.list_jobs()] == ["new.stl"]  # taken


class TestAShareMountedAfterTheStart:
    """The daemon watched the empty mount point; the share mounted over it is the inbox,
    watched anew: a file dropped on it is seen at once, not at the next rescan."""

    def test_a_file_dropped_on_it_is_seen_by_the_watcher(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock, share: Share,
    ) -> None:
        share.unmount()
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path, printer=None), clock=clock)
        daemon._prepare_folders()  # (on the mount point: the share is not there yet)
        daemon.watcher.start()
        try:
            with capture_logs() as logs:
                _look(daemon, clock)
                share.mount()
                _look(daemon, clock, after_s=SCAN_S)
                dropped = share.at / "late.stl"
                dropped.write_bytes(tetra_stl_bytes(3))
                seen = _wait_for_event(daemon, dropped)
        finally:
            daemon.watcher.stop()

        assert seen
        (changed,) = _events(logs, "inbox_changed")
        assert changed["inbox"] == str(share.at)
        assert _events(logs, "inbox_unavailable") == []


def _wait_for_event(daemon: HotFolderDaemon, path: Path) -> bool:
    """Whether the watcher reports ``path`` within :data:`EVENT_WAIT_S`."""
    deadline = time.monotonic() + EVENT_WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            reported, _ = daemon._events.get(timeout=left)
        except queue.Empty:
            return False
        if reported == path:
            return True
    return False


class TestAFolderOfTheSameDiskMountedThere:
    """A folder of the inbox's own disk bind-mounted at its path (a container's volume): one
    device number on both sides, so :func:`os.path.ismount` does not see the mount; unmounted,
    it is away all the same (until session 43's review it was an emptied inbox)."""

    def test_a_held_case_stays_held_when_it_is_back(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
    ) -> None:
        with mounted_share(tmp_path / "volume", tmp_path / "inbox") as share:
            assert os.stat(share.content).st_dev == os.stat(share.at).st_dev
            with _started(tmp_path, store, clock) as daemon:
                _held_case(share.at / "C-1")
                with capture_logs() as logs:
                    _look(daemon, clock)
                    _away_for_three_scans(share, daemon, clock)
                    _look(daemon, clock, after_s=1.0)
                    _look(daemon, clock, after_s=QUIET_S + 1)

        assert {(j.original_name, j.state) for j in store.list_jobs()} == {
            ("upper.stl", JobState.FAILED)}  # held with its case, not printed
        (away,) = _events(logs, "inbox_unavailable")
        assert away["reason"].startswith("its share is not mounted")
        assert _events(logs, "case_holds_forgotten") == []


class TestALocalInboxFolderDeleted:
    """No share: a user deleted the inbox folder. Away (nothing taken, nothing forgotten)
    until it is made again, which is the inbox from then on: no restart needed."""

    def test_it_goes_on_when_made_again(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
    ) -> None:
        inbox = tmp_path / "inbox"
        with _started(tmp_path, store, clock) as daemon, capture_logs() as logs:
            assert not os.path.ismount(inbox)
            made = tmp_path / "made again"  # (made now: it cannot get the old inode back)
            made.mkdir()
            for folder in sorted(inbox.rglob("*"), reverse=True):  # (its outcome folders)
                folder.rmdir()
            inbox.rmdir()
            _look(daemon, clock, after_s=SCAN_S)
            _look(daemon, clock, after_s=SCAN_S)
            made.rename(inbox)
            (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert [(j.original_name, j.state) for j in store.list_jobs()] == [
            ("a.stl", JobState.PROCESSING)]
        (away,) = _events(logs, "inbox_unavailable")
        assert away["inbox"] == str(inbox)
        assert away["reason"].startswith("its folder cannot be looked at")
        assert [e["inbox"] for e in _events(logs, "inbox_changed")] == [str(inbox)]
        assert [e["inbox"] for e in _events(logs, "inbox_available_again")] == [str(inbox)]
