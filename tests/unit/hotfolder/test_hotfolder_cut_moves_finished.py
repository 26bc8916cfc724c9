"""Every move to another disk cut short by a crash is finished on the next start.

A move to another file system copies the file to a hidden temporary beside its target,
renames that into place, then removes the source; a kill between the rename and the removal
leaves the file in both places. Session 23's start finished that for a model's settle out of
processing/ when the two copies are equal. Here: a copy that differs (the newer one is set
aside under a free name, and the start or retry goes on), a refused file's move out of the
inbox (also when its place in failed/ got a "(2)" name), a sidecar's move, and a model that
is a symbolic link. And a file whose job was decided but whose move never began, found in the
inbox again by a take (one rule, in the intake).

The kills are real (a child process SIGKILLs itself at the directory flush that follows the
rename: ``cut_short_child.py``); the next life is a fresh store connection and intake, or the
real daemon. POSIX and Linux only: /dev/shm is the other disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from cut_short_child import NOTE
from cut_support import daemon_started_once, inbox_across, killed_mid_move
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder import Drop
from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import Job, JobState, SqliteJobStore

MODEL = tetra_stl_bytes(24)
NOTES = b"not a model\n"


@pytest.fixture
def far_inbox(tmp_path: Path, other_disk: Path) -> InboxSettings:
    """processing/ beside the inbox, done/ and failed/ on the other disk."""
    return inbox_across(tmp_path, OutcomeFolders(done=str(other_disk / "done"),
                                                 failed=str(other_disk / "failed")))


def failed_job(database: Path, inbox: InboxSettings, name: str,
               sidecar: bytes | None = None, model: Path | None = None) -> Job:
    """A model taken into processing/ (with its sidecar ``<stem>.json``; ``model``: the
    dropped file is a link to it), then failed."""
    path = inbox.path / name
    if model is not None:
        path.symlink_to(model)
    else:
        path.write_bytes(MODEL)
    if sidecar is not None:
        path.with_suffix(".json").write_bytes(sidecar)
    with SqliteJobStore(database) as store:
        (job,) = Intake(store, [inbox]).take(
            Drop(inbox, path, "hot", False, models=(path,))).taken
        return store.transition(job.id, JobState.FAILED, "preparation failed")


def settle_cut(python_exe: str, database: Path, inbox: InboxSettings) -> Job:
    """A failed job's settle to failed/ killed after the rename: ``bracket.stl`` in both
    processing/<key>/ and failed/."""
    job = failed_job(database, inbox, "bracket.stl")
    killed_mid_move(python_exe, database, inbox, settle=job.id)
    in_failed = inbox.folder("failed") / "bracket.stl"
    stale = inbox.folder("processing") / job.job_key / "bracket.stl"
    assert in_failed.read_bytes() == stale.read_bytes() == MODEL
    return job


def jobs_named(database: Path, name: str) -> list[tuple[JobState, Path]]:
    with SqliteJobStore(database) as store:
        return [(j.state, j.source_path) for j in store.list_jobs() if j.original_name == name]


def jobs_of(database: Path, name: str) -> list[Job]:
    with SqliteJobStore(database) as store:
        return [j for j in store.list_jobs() if j.original_name == name]


def entries(folder: Path) -> list[str]:
    """Everything below ``folder`` that is not a folder (links too, dangling or not)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_symlink() or not p.is_dir())


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


class TestARetryThatMeetsADifferingCopy:
    """A retry that meets, at the job's place in processing/, a copy a cut left that is not
    the job's file any more keeps both files, sets the newer aside, and goes on."""

    @pytest.fixture
    def cut(self, python_exe: str, database: Path, far_inbox: InboxSettings) -> Job:
        return settle_cut(python_exe, database, far_inbox)

    def test_the_daemons_start_prints_the_job_and_keeps_the_changed_copy_in_failed(
        self, cut: Job, database: Path, far_inbox: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        changed = bytes(reversed(MODEL))
        (far_inbox.folder("processing") / cut.job_key / "bracket.stl").write_bytes(changed)
        with SqliteJobStore(database) as store, capture_logs() as logs:
            store.transition(cut.id, JobState.QUEUED, "retried by a user")
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": far_inbox.folders}))
            job = store.get_job(cut.id)
        done, failed = far_inbox.folder("done"), far_inbox.folder("failed")
        assert (job.state, job.source_path) == (JobState.PRINT_SENT, done / "bracket.stl")
        assert (done / "bracket.stl").read_bytes() == MODEL
        assert names(far_inbox.folder("processing")) == []
        assert names(failed) == ["bracket (2).stl", "bracket.stl.error.txt"]
        assert (failed / "bracket (2).stl").read_bytes() == changed
        (event,) = events(logs, "cut_short_copy_set_aside")
        stale = far_inbox.folder("processing") / cut.job_key / "bracket.stl"
        assert (event["job_key"], event["path"], event["set_aside"], event["kept"],
                event["log_level"]) == (cut.job_key, str(stale), str(failed / "bracket (2).stl"),
                                        str(stale), "warning")

    def test_a_copy_in_failed_changed_since_is_set_aside_and_the_retry_goes_on(
        self, cut: Job, database: Path, far_inbox: InboxSettings
    ) -> None:
        failed = far_inbox.folder("failed")
        changed = MODEL[:-1]
        (failed / "bracket.stl").write_bytes(changed)
        with SqliteJobStore(database) as store, capture_logs() as logs:
            store.transition(cut.id, JobState.QUEUED, "retried by a user")
            job = Intake(store, [far_inbox]).requeue(store.get_job(cut.id))
        in_processing = far_inbox.folder("processing") / cut.job_key / "bracket.stl"
        assert (job.state, job.source_path) == (JobState.PROCESSING, in_processing)
        assert in_processing.read_bytes() == MODEL
        assert names(failed) == ["bracket (2).stl", "bracket.stl.error.txt"]
        assert (failed / "bracket (2).stl").read_bytes() == changed
        (event,) = events(logs, "cut_short_copy_set_aside")
        assert (event["path"], event["set_aside"], event["kept"]) == (
            str(failed / "bracket.stl"), str(failed / "bracket (2).stl"), str(in_processing))


    def test_with_one_modification_time_the_file_the_retry_moves_stays_the_jobs(
        self, cut: Job, database: Path, far_inbox: InboxSettings
    ) -> None:
        stale = far_inbox.folder("processing") / cut.job_key / "bracket.stl"
        in_failed = far_inbox.folder("failed") / "bracket.stl"
        changed = bytes(reversed(MODEL))
        stale.write_bytes(changed)
        mtime = in_failed.stat().st_mtime_ns
        os.utime(stale, ns=(mtime, mtime))  # changed without its time changing
        with SqliteJobStore(database) as store:
            store.transition(cut.id, JobState.QUEUED, "retried by a user")
            Intake(store, [far_inbox]).requeue(store.get_job(cut.id))
        assert stale.read_bytes() == MODEL
        assert (far_inbox.folder("failed") / "bracket (2).stl").read_bytes() == changed

    def test_a_set_aside_the_disk_refuses_keeps_both_and_the_retry_goes_on(
        self, cut: Job, database: Path, far_inbox: InboxSettings
    ) -> None:
        stale = far_inbox.folder("processing") / cut.job_key / "bracket.stl"
        changed = bytes(reversed(MODEL))
        stale.write_bytes(changed)
        failed = far_inbox.folder("failed")

        def full_disk(source: Path, target: Path) -> None:
            if target.name == "bracket (2).stl":
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
            move_file(source, target)

        with SqliteJobStore(database) as store, capture_logs() as logs:
            store.transition(cut.id, JobState.QUEUED, "retried by a user")
            job = Intake(store, [far_inbox], move=full_disk).requeue(store.get_job(cut.id))
        assert (job.state, job.source_path) == (JobState.PROCESSING, stale)
        assert stale.read_bytes() == changed
        assert (failed / "bracket.stl").read_bytes() == MODEL
        assert names(failed) == ["bracket.stl", "bracket.stl.error.txt"]
        (event,) = events(logs, "cut_short_copy_not_set_aside")
        assert (event["job_key"], event["path"], event["target"], event["log_level"]) == (
            cut.job_key, str(stale), str(failed / "bracket (2).stl"), "warning")
        assert event["error"] == (
            f"[Errno {errno.ENOSPC}] No space left on device: '{failed / 'bracket (2).stl'}'")
        assert event["hint"] == (
            f"the job goes on with {stale}; compare it with {failed / 'bracket.stl'} and "
            "remove the one that is not wanted")
        assert not events(logs, "cut_short_copy_set_aside")


class TestARetryCutOnItsWayBackIntoProcessing:
    """A retried job's file moving back from failed/ (another disk) into processing/, cut
    after the rename: the next start removes the copy left in failed/ and prints the job."""

    def test_the_daemons_start_prints_it_and_leaves_only_the_note_in_failed(
        self, python_exe: str, database: Path, far_inbox: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        job = settle_cut(python_exe, database, far_inbox)
        failed = far_inbox.folder("failed")
        with SqliteJobStore(database) as store:
            Intake(store, [far_inbox]).settle(store.get_job(job.id), ok=False, note=NOTE)
            store.transition(job.id, JobState.QUEUED, "retried by a user")
        in_processing = far_inbox.folder("processing") / job.job_key
        killed_mid_move(python_exe, database, far_inbox, requeue=job.id, kill_in=in_processing)
        assert (in_processing / "bracket.stl").read_bytes() == MODEL
        assert (failed / "bracket.stl").read_bytes() == MODEL
        with SqliteJobStore(database) as store, capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": far_inbox.folders}))
            settled = store.get_job(job.id)
        done = far_inbox.folder("done")
        assert (settled.state, settled.source_path) == (JobState.PRINT_SENT,
                                                        done / "bracket.stl")
        assert names(failed) == ["bracket.stl.error.txt"]
        assert names(done) == ["bracket.stl", "bracket.stl.report.json"]
        assert [e["path"] for e in events(logs, "cut_short_source_removed")] == [
            str(failed / "bracket.stl")]


class TestACutShortSourceTheDiskWillNotRemove:
    """The copy left in processing/ is whole but cannot be removed (a folder turned
    read-only; as root a test makes that through the intake's ``remove`` seam): both stay, a
    warning names them, and nothing stops."""

    @pytest.fixture
    def cut(self, python_exe: str, database: Path, far_inbox: InboxSettings) -> Job:
        return settle_cut(python_exe, database, far_inbox)

    def test_both_stay_and_a_warning_names_them(
        self, cut: Job, database: Path, far_inbox: InboxSettings
    ) -> None:
        stale = far_inbox.folder("processing") / cut.job_key / "bracket.stl"
        in_failed = far_inbox.folder("failed") / "bracket.stl"

        def read_only(path: Path) -> None:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        with SqliteJobStore(database) as store, capture_logs() as logs:
            job = Intake(store, [far_inbox], remove=read_only).settle(
                store.get_job(cut.id), ok=False, note=NOTE)
        assert (job.state, job.source_path) == (JobState.FAILED, in_failed)
        assert stale.read_bytes() == in_failed.read_bytes() == MODEL
        (event,) = events(logs, "cut_short_source_not_removed")
        assert (event["job_key"], event["path"], event["target"], event["error"],
                event["log_level"]) == (cut.job_key, str(stale), str(in_failed),
                                        f"[Errno {errno.EACCES}] Permission denied: '{stale}'",
                                        "warning")
        assert not events(logs, "cut_short_source_removed")

    def test_a_source_gone_meanwhile_counts_as_removed(
        self, cut: Job, database: Path, far_inbox: InboxSettings
    ) -> None:
        stale = far_inbox.folder("processing") / cut.job_key / "bracket.stl"

        def gone_first(path: Path) -> None:
            path.unlink()  # someone else's removal came first
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))

        with SqliteJobStore(database) as store, capture_logs() as logs:
            Intake(store, [far_inbox], remove=gone_first).settle(
                store.get_job(cut.id), ok=False, note=NOTE)
        assert entries(far_inbox.folder("processing")) == []
        assert [e["path"] for e in events(logs, "cut_short_source_removed")] == [str(stale)]
        assert not events(logs, "cut_short_source_not_removed")


class TestARefusedFileCutOnItsWayToFailed:
    """A file refused at intake, its move to failed/ on another disk cut after the rename,
    is in failed/ once on the next start, under its one job."""

    @pytest.fixture
    def cut(self, python_exe: str, database: Path, far_inbox: InboxSettings) -> Path:
        (far_inbox.path / "notes.txt").write_bytes(NOTES)
        killed_mid_move(python_exe, database, far_inbox, refuse="notes.txt")
        assert (far_inbox.folder("failed") / "notes.txt").read_bytes() == NOTES
        assert (far_inbox.path / "notes.txt").read_bytes() == NOTES
        return far_inbox.path / "notes.txt"

    def test_the_daemons_start_leaves_it_in_failed_once(
        self, cut: Path, database: Path, far_inbox: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        with SqliteJobStore(database) as store:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": far_inbox.folders}))
        failed = far_inbox.folder("failed")
        assert not cut.exists()
        assert names(failed) == ["notes.txt", "notes.txt.error.txt"]
        assert jobs_named(database, "notes.txt") == [(JobState.FAILED, failed / "notes.txt")]

    def test_taking_it_again_finishes_the_move_without_a_second_job(
        self, cut: Path, database: Path, far_inbox: InboxSettings
    ) -> None:
        with SqliteJobStore(database) as store, capture_logs() as logs:
            result = Intake(store, [far_inbox]).take(
                Drop(far_inbox, cut, "hot", False, others=(cut,)))
        failed = far_inbox.folder("failed")
        assert [j.source_path for j in result.rejected] == [failed / "notes.txt"]
        assert not cut.exists()
        assert names(failed) == ["notes.txt", "notes.txt.error.txt"]
        assert jobs_named(database, "notes.txt") == [(JobState.FAILED, failed / "notes.txt")]
        (job,) = result.rejected
        (event,) = events(logs, "cut_short_source_removed")
        assert (event["job_key"], event["path"], event["target"]) == (
            job.job_key, str(cut), str(failed / "notes.txt"))
        (event,) = events(logs, "cut_short_move_finished")
        assert (event["job_key"], event["path"], event["target"], event["state"]) == (
            job.job_key, str(cut), str(failed / "notes.txt"), "failed")

    def test_a_file_changed_in_the_inbox_since_is_a_new_drop(
        self, cut: Path, database: Path, far_inbox: InboxSettings
    ) -> None:
        cut.write_bytes(b"other notes\n")
        with SqliteJobStore(database) as store, capture_logs() as logs:
            Intake(store, [far_inbox]).take(Drop(far_inbox, cut, "hot", False, others=(cut,)))
        failed = far_inbox.folder("failed")
        assert names(failed) == ["notes (2).txt", "notes (2).txt.error.txt",
                                 "notes.txt", "notes.txt.error.txt"]
        assert (failed / "notes.txt").read_bytes() == NOTES
        assert (failed / "notes (2).txt").read_bytes() == b"other notes\n"
        assert jobs_named(database, "notes.txt") == [(JobState.FAILED, failed / "notes.txt"),
                                                     (JobState.FAILED, failed / "notes (2).txt")]
        (first, _) = jobs_of(database, "notes.txt")
        (event,) = events(logs, "cut_short_source_changed")
        assert (event["job_key"], event["path"], event["target"], event["reason"]) == (
            first.job_key, str(cut), str(failed / "notes.txt"),
            "put into the inbox after the copy was made, so it is taken as a new drop")
        assert not events(logs, "cut_short_move_finished")


    def test_a_copy_in_failed_changed_since_leaves_the_file_to_be_taken_as_a_new_drop(
        self, cut: Path, database: Path, far_inbox: InboxSettings
    ) -> None:
        failed = far_inbox.folder("failed")
        (failed / "notes.txt").write_bytes(b"notes edited in failed/\n")
        with SqliteJobStore(database) as store, capture_logs() as logs:
            Intake(store, [far_inbox]).take(Drop(far_inbox, cut, "hot", False, others=(cut,)))
        assert not cut.exists()
        assert (failed / "notes.txt").read_bytes() == b"notes edited in failed/\n"
        assert (failed / "notes (2).txt").read_bytes() == NOTES
        assert len(jobs_named(database, "notes.txt")) == 2
        (first, _) = jobs_of(database, "notes.txt")
        (event,) = events(logs, "cut_short_source_changed")
        assert (event["job_key"], event["path"], event["target"], event["reason"]) == (
            first.job_key, str(cut), str(failed / "notes.txt"),
            "it differs from the whole copy already moved, so it is taken as a new drop")


class TestARefusedFileWhoseNameInFailedWasTaken:
    """The same cut, for a file whose place in failed/ got a "(2)" name (a refused file of
    the same name is there already): found and finished all the same."""

    @pytest.fixture
    def cut(self, python_exe: str, database: Path, far_inbox: InboxSettings) -> Path:
        path = far_inbox.path / "notes.txt"
        path.write_bytes(b"the first notes\n")
        with SqliteJobStore(database) as store:
            Intake(store, [far_inbox]).take(Drop(far_inbox, path, "hot", False, others=(path,)))
        path.write_bytes(NOTES)
        killed_mid_move(python_exe, database, far_inbox, refuse="notes.txt")
        assert (far_inbox.folder("failed") / "notes (2).txt").read_bytes() == NOTES
        return path

    def test_the_daemons_start_leaves_it_in_failed_once(
        self, cut: Path, database: Path, far_inbox: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        with SqliteJobStore(database) as store:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": far_inbox.folders}))
        failed = far_inbox.folder("failed")
        assert not cut.exists()
        assert names(failed) == ["notes (2).txt", "notes (2).txt.error.txt",
                                 "notes.txt", "notes.txt.error.txt"]
        assert len(jobs_named(database, "notes.txt")) == 2

    def test_taking_it_again_finishes_the_move_without_a_third_job(
        self, cut: Path, database: Path, far_inbox: InboxSettings
    ) -> None:
        with SqliteJobStore(database) as store:
            Intake(store, [far_inbox]).take(Drop(far_inbox, cut, "hot", False, others=(cut,)))
        failed = far_inbox.folder("failed")
        assert not cut.exists()
        assert names(failed) == ["notes (2).txt", "notes (2).txt.error.txt",
                                 "notes.txt", "notes.txt.error.txt"]
        assert jobs_named(database, "notes.txt") == [(JobState.FAILED, failed / "notes.txt"),
                                                     (JobState.FAILED, failed / "notes (2).txt")]


class TestASidecarCutOnItsWayToFailed:
    """A model's sidecar, its move to failed/ cut after the rename (the model went whole
    before it), leaves nothing in processing/ after the next start."""

    @pytest.fixture
    def cut(self, python_exe: str, database: Path, far_inbox: InboxSettings) -> Job:
        job = failed_job(database, far_inbox, "bracket.stl", sidecar=b'{"priority": 2}')
        killed_mid_move(python_exe, database, far_inbox, settle=job.id, kill_at=2)
        left = far_inbox.folder("processing") / job.job_key
        assert entries(left) == ["bracket.json"]
        assert (far_inbox.folder("failed") / "bracket.json").read_bytes() == b'{"priority": 2}'
        return job

    def test_the_daemons_start_leaves_processing_empty(
        self, cut: Job, database: Path, far_inbox: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        logs = daemon_started_once(tmp_path, database, script, recipe, far_inbox)
        failed = far_inbox.folder("failed")
        assert entries(far_inbox.folder("processing")) == []
        assert not (far_inbox.folder("processing") / cut.job_key).exists()
        assert names(failed) == ["bracket.json", "bracket.stl", "bracket.stl.error.txt"]
        (event,) = events(logs, "cut_short_source_removed")
        assert event["target"] == str(failed / "bracket.json")

    def test_a_sidecar_changed_since_is_set_aside_in_failed(
        self, cut: Job, database: Path, far_inbox: InboxSettings
    ) -> None:
        left = far_inbox.folder("processing") / cut.job_key / "bracket.json"
        left.write_bytes(b'{"priority": 3}')
        with SqliteJobStore(database) as store, capture_logs() as logs:
            Intake(store, [far_inbox]).settle(store.get_job(cut.id), ok=False, note=NOTE)
        failed = far_inbox.folder("failed")
        assert entries(far_inbox.folder("processing")) == []
        assert names(failed) == ["bracket (2).json", "bracket.json", "bracket.stl",
                                 "bracket.stl.error.txt"]
        assert (failed / "bracket.json").read_bytes() == b'{"priority": 2}'
        assert (failed / "bracket (2).json").read_bytes() == b'{"priority": 3}'
        (event,) = events(logs, "cut_short_copy_set_aside")
        assert (event["path"], event["set_aside"], event["kept"]) == (
            str(left), str(failed / "bracket (2).json"), str(failed / "bracket.json"))


class TestAModelThatIsALinkCutOnItsWayToFailed:
    """A model dropped as a symbolic link (``follow_symlinks``) crosses disks as a link; the
    stale link a cut leaves in processing/ goes on the next start, the one in failed/ stays."""

    @pytest.fixture
    def cut(self, python_exe: str, database: Path, far_inbox: InboxSettings,
            tmp_path: Path) -> Job:
        model = tmp_path / "library" / "bracket.stl"
        model.parent.mkdir()
        model.write_bytes(MODEL)
        job = failed_job(database, far_inbox, "bracket.stl", model=model)
        killed_mid_move(python_exe, database, far_inbox, settle=job.id)
        assert os.readlink(far_inbox.folder("failed") / "bracket.stl") == str(model)
        assert os.readlink(far_inbox.folder("processing") / job.job_key / "bracket.stl") == (
            str(model))
        return job

    def test_the_daemons_start_leaves_the_link_in_failed_once(
        self, cut: Job, database: Path, far_inbox: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        logs = daemon_started_once(tmp_path, database, script, recipe, far_inbox)
        failed = far_inbox.folder("failed")
        assert entries(far_inbox.folder("processing")) == []
        assert entries(failed) == ["bracket.stl", "bracket.stl.error.txt"]
        assert os.readlink(failed / "bracket.stl") == str(tmp_path / "library" / "bracket.stl")
        assert (tmp_path / "library" / "bracket.stl").read_bytes() == MODEL
        assert not events(logs, "cut_short_copy_set_aside")
        assert [e["path"] for e in events(logs, "cut_short_source_removed")] == [
            str(far_inbox.folder("processing") / cut.job_key / "bracket.stl")]

    def test_a_link_in_processing_that_points_elsewhere_is_set_aside(
        self, cut: Job, database: Path, far_inbox: InboxSettings, tmp_path: Path
    ) -> None:
        stale = far_inbox.folder("processing") / cut.job_key / "bracket.stl"
        stale.unlink()
        stale.symlink_to(tmp_path / "library" / "other.stl")
        with SqliteJobStore(database) as store:
            Intake(store, [far_inbox]).settle(store.get_job(cut.id), ok=False, note=NOTE)
        failed = far_inbox.folder("failed")
        assert entries(far_inbox.folder("processing")) == []
        assert entries(failed) == ["bracket (2).stl", "bracket.stl", "bracket.stl.error.txt"]
        assert os.readlink(failed / "bracket (2).stl") == str(tmp_path / "library" / "other.stl")


class Killed(BaseException):
    """The process died here: nothing after this point of the intake runs."""


class DiesBeforeItsNote(Intake):
    """The intake, killed right after a file was decided (refused, or a skipped copy): the
    store still names its place in the inbox, no note is written."""

    def settle(self, job: Job, *, ok: bool, note: str | None = None,
               report: str | None = None) -> Job:
        raise Killed(job.job_key)


class TestAFileDecidedWhoseMoveNeverBegan:
    """A file decided at intake whose move never began (no note, its place still the inbox)
    is settled under that job when it is taken again: no second job."""

    def test_a_refused_file_goes_to_failed_under_its_one_job(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = inbox.path / "notes.txt"
        path.write_bytes(NOTES)
        drop = Drop(inbox, path, "hot", False, others=(path,))
        with contextlib.suppress(Killed):
            DiesBeforeItsNote(store, [inbox]).take(drop)
        (decided,) = store.list_jobs()
        assert (decided.state, decided.source_path) == (JobState.FAILED, path)
        with capture_logs() as logs:
            Intake(store, [inbox]).take(drop)
        failed = inbox.folder("failed")
        assert names(failed) == ["notes.txt", "notes.txt.error.txt"]
        assert [(j.id, j.state, j.source_path) for j in store.list_jobs()] == [
            (decided.id, JobState.FAILED, failed / "notes.txt")]
        assert (failed / "notes.txt.error.txt").read_text() == (
            "What failed: .txt is not a model file (preform-pipeline prepares .stl, .obj "
            "and .3mf)\n"
            "Where: taking the file from the inbox\n"
            f"File: {path}\n"
            f"Job: {decided.job_key} (see: preform-pipeline jobs show {decided.job_key})\n"
            "What to do: fix the cause, then drop it into the inbox again\n")
        (event,) = events(logs, "decided_file_settled")
        assert (event["job_key"], event["path"], event["target"], event["state"]) == (
            decided.job_key, str(path), str(failed / "notes.txt"), "failed")

    def test_a_skipped_copy_goes_to_failed_under_its_one_job(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        first, copy = inbox.path / "bracket.stl", inbox.path / "copy.stl"
        first.write_bytes(MODEL)
        Intake(store, [inbox]).take(Drop(inbox, first, "hot", False, models=(first,)))
        copy.write_bytes(MODEL)
        drop = Drop(inbox, copy, "hot", False, models=(copy,))
        with contextlib.suppress(Killed):
            DiesBeforeItsNote(store, [inbox]).take(drop)
        Intake(store, [inbox]).take(drop)
        failed = inbox.folder("failed")
        assert names(failed) == ["copy.stl", "copy.stl.error.txt"]
        copies = [j for j in store.list_jobs() if j.original_name == "copy.stl"]
        assert [(j.state, j.source_path) for j in copies] == [
            (JobState.DUPLICATE_SKIPPED, failed / "copy.stl")]
        key = copies[0].job_key
        note = (failed / "copy.stl.error.txt").read_text()
        assert note.startswith(f"What failed: same content as job {store.list_jobs()[0].job_key}")
        assert note.endswith(f"Job: {key} (see: preform-pipeline jobs show {key})\n"
                             "What to do: nothing, if it was dropped twice by mistake; to "
                             f"print it: preform-pipeline jobs retry {key}\n")

    def test_the_note_of_a_skipped_copy_names_the_stores_jobs_command(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        jobs = "preform-pipeline jobs --store /srv/pp/jobs.sqlite3"
        first, copy = inbox.path / "bracket.stl", inbox.path / "copy.stl"
        first.write_bytes(MODEL)
        Intake(store, [inbox], jobs=jobs).take(Drop(inbox, first, "hot", False, models=(first,)))
        copy.write_bytes(MODEL)
        drop = Drop(inbox, copy, "hot", False, models=(copy,))
        with contextlib.suppress(Killed):
            DiesBeforeItsNote(store, [inbox], jobs=jobs).take(drop)
        Intake(store, [inbox], jobs=jobs).take(drop)
        (key,) = [j.job_key for j in store.list_jobs() if j.original_name == "copy.stl"]
        note = (inbox.folder("failed") / "copy.stl.error.txt").read_text()
        assert note.endswith(f"Job: {key} (see: {jobs} show {key})\n"
                             "What to do: nothing, if it was dropped twice by mistake; to "
                             f"print it: {jobs} retry {key}\n")

    def test_a_runs_decided_job_for_the_same_path_is_not_the_hot_folders(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = inbox.path / "notes.txt"
        path.write_bytes(NOTES)
        # ``run`` shares the store and places no job in the hot folder: its failed job for
        # this very path decides nothing here.
        run_job = store.create_job(recipe="hot", source_path=path, state=JobState.QUEUED,
                                   reason="claimed by a run")
        store.transition(run_job.id, JobState.FAILED, "the run failed")
        result = Intake(store, [inbox]).take(Drop(inbox, path, "hot", False, others=(path,)))
        failed = inbox.folder("failed")
        assert not path.exists()
        assert names(failed) == ["notes.txt", "notes.txt.error.txt"]
        assert [j.id for j in result.rejected] != [run_job.id]
        assert store.get_job(run_job.id).source_path == path
