"""A take into a processing/ on another disk, cut short by a crash, is finished: no false
duplicate.

Taking a dropped model moves it from the inbox into ``processing/<key>/``; with processing/
configured on another file system the move copies the file to a hidden temporary there,
renames it into place, then removes the inbox file. A kill between the rename and the
removal leaves the file in both places, the store naming the copy in processing/ (the job is
PROCESSING) and the inbox file as its previous place. The inbox file used to be taken again
as a second job, a duplicate of the first, and went to failed/ with a "duplicate" note: a
false failure. Now the copy in processing/ goes on; the inbox file goes when it is the same
file and was not put there since; one that differs, or came later, is a new drop.

The kills are real (``cut_short_child.py`` SIGKILLs itself at the directory flush that
follows the rename); the next life is the real daemon or a fresh intake on the same store
file. POSIX and Linux only: /dev/shm is the other disk.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import pytest
from cut_support import daemon_started_once, inbox_across, killed_mid_move
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder import Drop
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.content import content_hash

MODEL = tetra_stl_bytes(24)


@pytest.fixture
def far_processing(tmp_path: Path, other_disk: Path) -> InboxSettings:
    """done/ and failed/ inside the inbox, processing/ on the other disk."""
    return inbox_across(tmp_path, OutcomeFolders(processing=str(other_disk / "processing")))


def killed_taking(python_exe: str, database: Path, inbox: InboxSettings, **action: str) -> None:
    """Run ``action`` in a child killed after its first rename into a folder of
    processing/ (``processing/<key>/``, whose key the child's life makes)."""
    killed_mid_move(python_exe, database, inbox, kill_in=inbox.folder("processing"),
                    kill_below=True, **action)


@pytest.fixture
def cut(python_exe: str, database: Path, far_processing: InboxSettings) -> Job:
    """``bracket.stl`` dropped and taken in a life killed after its copy was renamed into
    processing/<key>/: the file is in both places, its one job PROCESSING."""
    dropped = far_processing.path / "bracket.stl"
    dropped.write_bytes(MODEL)
    processing = far_processing.folder("processing")
    killed_taking(python_exe, database, far_processing, take="bracket.stl")
    with SqliteJobStore(database) as store:
        (job,) = store.list_jobs()
    assert (job.state, job.source_path) == (
        JobState.PROCESSING, processing / job.job_key / "bracket.stl")
    assert job.source_path.read_bytes() == dropped.read_bytes() == MODEL
    return job


def jobs(database: Path) -> list[tuple[str, JobState, Path]]:
    with SqliteJobStore(database) as store:
        return [(j.original_name, j.state, j.source_path) for j in store.list_jobs()]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def take_again(database: Path, inbox: InboxSettings, **seams: Any) -> tuple[Any, list[Any]]:
    """The inbox file taken again by a fresh intake (as a farm node meets it, or a take
    after a start that could not remove it): the take's result and the events."""
    dropped = inbox.path / "bracket.stl"
    with SqliteJobStore(database) as store, capture_logs() as logs:
        result = Intake(store, [inbox], **seams).take(
            Drop(inbox, dropped, "hot", False, models=(dropped,)))
    return result, logs


class TestTheDaemonsStartAfterTheCut:
    """The daemon started again prints the taken copy once and fails nothing."""

    def test_the_job_prints_from_processing_and_the_inbox_copy_goes(
        self, cut: Job, database: Path, far_processing: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        logs = daemon_started_once(tmp_path, database, script, recipe, far_processing)
        done = far_processing.folder("done")
        assert jobs(database) == [("bracket.stl", JobState.PRINT_SENT, done / "bracket.stl")]
        assert (done / "bracket.stl").read_bytes() == MODEL
        assert names(far_processing.folder("failed")) == []
        assert not (far_processing.path / "bracket.stl").exists()
        assert names(far_processing.folder("processing")) == []
        (event,) = events(logs, "cut_short_source_removed")
        assert (event["job_key"], event["path"], event["target"]) == (
            cut.job_key, str(far_processing.path / "bracket.stl"), str(cut.source_path))

    def test_a_file_changed_in_the_inbox_since_is_printed_as_a_new_drop(
        self, cut: Job, database: Path, far_processing: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        other = tetra_stl_bytes(30)
        (far_processing.path / "bracket.stl").write_bytes(other)
        logs = daemon_started_once(tmp_path, database, script, recipe, far_processing)
        done = far_processing.folder("done")
        assert sorted(jobs(database)) == [
            ("bracket.stl", JobState.PRINT_SENT, done / "bracket (2).stl"),
            ("bracket.stl", JobState.PRINT_SENT, done / "bracket.stl"),
        ]
        assert sorted((done / n).read_bytes() for n in ("bracket.stl", "bracket (2).stl")) == (
            sorted([MODEL, other]))
        assert names(far_processing.folder("failed")) == []
        (event,) = events(logs, "cut_short_source_changed")
        assert (event["job_key"], event["path"], event["reason"]) == (
            cut.job_key, str(far_processing.path / "bracket.stl"),
            "put into the inbox after the copy was made, so it is taken as a new drop")
        assert not events(logs, "cut_short_source_removed")

    def test_the_same_content_dropped_again_since_is_a_true_duplicate(
        self, cut: Job, database: Path, far_processing: InboxSettings, tmp_path: Path,
        script: Script, recipe: Path,
    ) -> None:
        dropped = far_processing.path / "bracket.stl"
        dropped.unlink()
        dropped.write_bytes(MODEL)  # the user's second drop, after the copy was made
        with SqliteJobStore(database) as store:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": far_processing.folders}))
        done, failed = far_processing.folder("done"), far_processing.folder("failed")
        assert jobs(database) == [
            ("bracket.stl", JobState.PRINT_SENT, done / "bracket.stl"),
            ("bracket.stl", JobState.DUPLICATE_SKIPPED, failed / "bracket.stl"),
        ]
        assert names(failed) == ["bracket.stl", "bracket.stl.error.txt"]


class TestTheInboxCopyTakenAgain:
    """Taken again before the job's start finished it (a farm node's scan), the inbox copy
    makes no second job."""

    def test_the_same_file_goes_and_the_job_goes_on_from_processing(
        self, cut: Job, database: Path, far_processing: InboxSettings
    ) -> None:
        result, logs = take_again(database, far_processing)
        assert (result.taken, result.rejected) == ((), ())
        assert not (far_processing.path / "bracket.stl").exists()
        assert jobs(database) == [("bracket.stl", JobState.PROCESSING, cut.source_path)]
        assert cut.source_path.read_bytes() == MODEL
        assert names(far_processing.folder("failed")) == []
        (event,) = events(logs, "cut_short_move_finished")
        assert (event["job_key"], event["path"], event["target"], event["state"]) == (
            cut.job_key, str(far_processing.path / "bracket.stl"), str(cut.source_path),
            "processing")

    def test_a_copy_the_disk_will_not_remove_stays_and_is_not_a_duplicate(
        self, cut: Job, database: Path, far_processing: InboxSettings
    ) -> None:
        def read_only(path: Path) -> None:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        result, logs = take_again(database, far_processing, remove=read_only)
        dropped = far_processing.path / "bracket.stl"
        assert (result.taken, result.rejected) == ((), ())
        assert dropped.read_bytes() == MODEL
        assert jobs(database) == [("bracket.stl", JobState.PROCESSING, cut.source_path)]
        assert names(far_processing.folder("failed")) == []
        (event,) = events(logs, "cut_short_source_not_removed")
        assert (event["job_key"], event["path"], event["target"]) == (
            cut.job_key, str(dropped), str(cut.source_path))
        assert not events(logs, "cut_short_move_finished")

    def test_the_same_content_dropped_again_since_is_a_true_duplicate(
        self, cut: Job, database: Path, far_processing: InboxSettings
    ) -> None:
        dropped = far_processing.path / "bracket.stl"
        dropped.unlink()
        dropped.write_bytes(MODEL)  # the user's second drop, after the copy was made
        result, logs = take_again(database, far_processing)
        failed = far_processing.folder("failed")
        (skipped,) = result.rejected
        assert (skipped.state, skipped.source_path) == (JobState.DUPLICATE_SKIPPED,
                                                        failed / "bracket.stl")
        assert cut.source_path.read_bytes() == MODEL
        (event,) = events(logs, "cut_short_source_changed")
        assert event["reason"] == (
            "put into the inbox after the copy was made, so it is taken as a new drop")

    def test_it_is_found_behind_a_newer_job_of_the_same_content(
        self, cut: Job, database: Path, far_processing: InboxSettings
    ) -> None:
        copy = far_processing.path / "copy.stl"
        copy.write_bytes(MODEL)  # the same content under another name, taken meanwhile
        with SqliteJobStore(database) as store:
            (skipped,) = Intake(store, [far_processing]).take(
                Drop(far_processing, copy, "hot", False, models=(copy,))).rejected
        assert skipped.state is JobState.DUPLICATE_SKIPPED
        result, _ = take_again(database, far_processing)
        assert (result.taken, result.rejected) == ((), ())
        assert not (far_processing.path / "bracket.stl").exists()
        assert [(name, state) for name, state, _ in jobs(database)] == [
            ("bracket.stl", JobState.PROCESSING), ("copy.stl", JobState.DUPLICATE_SKIPPED)]

    def test_a_file_that_differs_is_a_new_drop(
        self, cut: Job, database: Path, far_processing: InboxSettings
    ) -> None:
        other = tetra_stl_bytes(30)
        (far_processing.path / "bracket.stl").write_bytes(other)
        result, _ = take_again(database, far_processing)
        (second,) = result.taken
        assert second.id != cut.id
        assert second.source_path.read_bytes() == other
        assert cut.source_path.read_bytes() == MODEL


def cut_on_its_first_file(python_exe: str, database: Path, inbox: InboxSettings) -> Path:
    """Case folder C-7 (``a.stl``, ``b.stl``) whose take a life killed after ``a.stl``'s
    copy was renamed into processing/: ``a.stl`` is in both places."""
    case = inbox.path / "C-7"
    case.mkdir()
    (case / "a.stl").write_bytes(MODEL)
    (case / "b.stl").write_bytes(tetra_stl_bytes(30))
    killed_taking(python_exe, database, inbox, case="C-7")
    return case


class TestACaseCutOnItsFirstFile:
    """A case folder whose take was cut after its first file's rename, taken again (a farm
    node's scan): that file's copy goes, and the case's other files are taken."""

    def test_the_other_files_of_the_case_are_taken(
        self, python_exe: str, database: Path, far_processing: InboxSettings
    ) -> None:
        case = cut_on_its_first_file(python_exe, database, far_processing)
        with SqliteJobStore(database) as store:
            (first,) = store.list_jobs()
            result = Intake(store, [far_processing]).take(Drop(
                far_processing, case, "hot", True, models=(case / "a.stl", case / "b.stl")))
        (taken,) = result.taken
        assert (taken.original_name, taken.case_id) == ("b.stl", "C-7")
        assert result.rejected == ()  # (the inbox copy is not a "duplicate" of its own job)
        assert (first.original_name, first.source_path.read_bytes()) == ("a.stl", MODEL)
        assert not case.exists()


class TestACaseCutOnItsFirstFileThenHeld:
    """The rest of a case cut so is found bad (session 41): the file in both places goes to
    failed/ once, with the case. Its inbox copy used to stay in the case folder, and the
    next look took it as a new job, which printed without its case."""

    def test_its_inbox_copy_goes_and_nothing_of_the_case_is_left_to_take(
        self, python_exe: str, database: Path, far_processing: InboxSettings
    ) -> None:
        case = cut_on_its_first_file(python_exe, database, far_processing)
        (case / "c.step").write_bytes(b"ISO-10303-21;")  # a part that cannot be prepared
        with SqliteJobStore(database) as store:
            result = Intake(store, [far_processing]).take(Drop(
                far_processing, case, "hot", True, models=(case / "a.stl", case / "b.stl"),
                others=(case / "c.step",)), earlier=store.list_jobs())
        assert result.held and result.taken == ()
        assert not case.exists()
        assert names(far_processing.folder("processing")) == []
        assert names(far_processing.folder("failed")) == sorted(
            f"C-7/{n}{s}" for n in ("a.stl", "b.stl", "c.step") for s in ("", ".error.txt"))
        assert {(name, state) for name, state, _ in jobs(database)} == {
            ("a.stl", JobState.FAILED), ("b.stl", JobState.FAILED), ("c.step", JobState.FAILED)}


class TestARunsJobOfTheSameContent:
    """A ``run``'s job (no place in the hot folder) for the same content does not stop a
    take: the file is a new drop."""

    def test_the_file_is_taken(self, store: SqliteJobStore, inbox: InboxSettings) -> None:
        dropped = inbox.path / "bracket.stl"
        dropped.write_bytes(MODEL)
        run_job = store.create_job(recipe="hot", source_path=dropped, state=JobState.QUEUED,
                                   content_hash=content_hash(dropped), reason="a run's")
        store.transition(run_job.id, JobState.FAILED, "the run failed")
        (taken,) = Intake(store, [inbox]).take(
            Drop(inbox, dropped, "hot", False, models=(dropped,))).taken
        assert taken.id != run_job.id
        assert taken.source_path.read_bytes() == MODEL


class TestOnOneDisk:
    """With processing/ on the inbox's disk a take is a rename, which never leaves the file
    in both places: a file in the inbox beside a job in processing/ is the user's."""

    def test_an_older_copy_of_the_same_content_in_the_inbox_is_kept(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        dropped = inbox.path / "bracket.stl"
        dropped.write_bytes(MODEL)

        def copy_only(source: Path, target: Path) -> None:
            # The state a cut across disks leaves (the copy made after the source's last
            # change), on one disk: reached only by a user's drop, never by a move.
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

        (job,) = Intake(store, [inbox], move=copy_only).take(
            Drop(inbox, dropped, "hot", False, models=(dropped,))).taken
        with capture_logs() as logs:
            assert Intake(store, [inbox]).finish_move(store.get_job(job.id))
        assert dropped.read_bytes() == job.source_path.read_bytes() == MODEL
        assert not events(logs, "cut_short_source_removed")
