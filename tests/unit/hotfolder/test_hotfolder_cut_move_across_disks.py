"""A move to failed/ on another disk killed between its rename and the source's removal.

Across file systems a settle copies the file from ``processing/<key>/`` to a temporary
beside its target, renames that into place, and only then removes the file in processing/.
A daemon killed between the rename and the removal leaves the file in both places. The next
life finishes that move: the copy in failed/ is whole and the same as the one left in
processing/ (same size, same content hash, the job's own), so the one in processing/ goes
and the user's file is there once. A retry then takes it back into processing/, also when
the user retried before the daemon came back. A copy in processing/ that differs from the
one in failed/ is never removed (session 24: it is set aside in failed/ under a free name).

The kill is real (a child process, SIGKILL, see ``cut_move_child.py``); the next life is a
fresh store connection and intake. POSIX and Linux only: /dev/shm is the other disk.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cut_move_child import NOTE
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs
from test_hotfolder_intake import drop_file

from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import Job, JobState, SqliteJobStore

HERE = Path(__file__).parent
#: How long the child may take to reach its kill (a loaded machine included).
WAIT_S = 60.0
MODEL = tetra_stl_bytes(23)


@dataclass(frozen=True)
class Cut:
    """What the killed life left: its store's file, the inbox, the failed job."""

    database: Path
    inbox: InboxSettings
    job: Job

    @property
    def in_processing(self) -> Path:
        return self.inbox.folder("processing") / self.job.job_key / "bracket.stl"

    @property
    def in_failed(self) -> Path:
        return self.inbox.folder("failed") / "bracket.stl"


@pytest.fixture
def cut(tmp_path: Path, other_disk: Path, python_exe: str) -> Cut:
    """A job taken into processing/, failed, and its settle to failed/ (on the other disk)
    killed after the rename: the file is in both places."""
    inbox = InboxSettings(
        path=tmp_path / "inbox", recipe=tmp_path / "r.yaml",
        folders=OutcomeFolders(done=str(other_disk / "done"), failed=str(other_disk / "failed")),
    )
    for kind in ("processing", "done", "failed"):
        inbox.folder(kind).mkdir(parents=True)
    database = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(database) as store:
        (job,) = Intake(store, [inbox]).take(
            drop_file(inbox, "bracket.stl", MODEL, recipe="hot")).taken
        store.transition(job.id, JobState.FAILED, "preparation failed")
    child = subprocess.run(
        [python_exe, str(HERE / "cut_move_child.py"), str(database), str(inbox.path),
         str(inbox.folder("done")), str(inbox.folder("failed")), str(job.id)],
        timeout=WAIT_S, capture_output=True, text=True, check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with SqliteJobStore(database) as store:
        left = Cut(database, inbox, store.get_job(job.id))
    # The cut this is about: renamed into failed/, not yet removed from processing/.
    assert left.in_failed.read_bytes() == left.in_processing.read_bytes() == MODEL
    return left


class TestTheDaemonsNextStart:
    """What a user sees: the daemon started again leaves nothing in processing/."""

    def test_the_file_is_in_failed_once_and_processing_is_empty(
        self, cut: Cut, tmp_path: Path, script: Script, recipe: Path
    ) -> None:
        folders = cut.inbox.folders
        with SqliteJobStore(cut.database) as store:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": folders}))
            job = store.get_job(cut.job.id)
        assert names(cut.inbox.folder("processing")) == []
        assert names(cut.inbox.folder("failed")) == ["bracket.stl", "bracket.stl.error.txt"]
        assert (job.state, job.source_path) == (JobState.FAILED, cut.in_failed)


    def test_a_retry_made_while_it_was_down_is_printed(
        self, cut: Cut, tmp_path: Path, script: Script, recipe: Path
    ) -> None:
        with SqliteJobStore(cut.database) as store:
            store.transition(cut.job.id, JobState.QUEUED, "retried by a user")
            run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                        inbox={"folders": cut.inbox.folders}))
            job = store.get_job(cut.job.id)
        done = cut.inbox.folder("done")
        assert (job.state, job.source_path) == (JobState.PRINT_SENT, done / "bracket.stl")
        assert names(cut.inbox.folder("processing")) == []
        assert names(done) == ["bracket.stl", "bracket.stl.report.json"]
        assert names(cut.inbox.folder("failed")) == ["bracket.stl.error.txt"]


class TestTheNextLifeFinishesTheMove:
    """The daemon's start settles the job's processing/ folder (``settle_processing_folders``
    calls ``settle``, which finishes the move): the file is in failed/ once."""

    def test_the_copy_left_in_processing_goes_and_the_file_is_in_failed_once(
        self, cut: Cut
    ) -> None:
        with SqliteJobStore(cut.database) as store, capture_logs() as logs:
            Intake(store, [cut.inbox]).settle(store.get_job(cut.job.id), ok=False, note=NOTE)
            job = store.get_job(cut.job.id)
        assert names(cut.inbox.folder("processing")) == []
        assert not (cut.inbox.folder("processing") / cut.job.job_key).exists()
        assert names(cut.inbox.folder("failed")) == ["bracket.stl", "bracket.stl.error.txt"]
        assert cut.in_failed.read_bytes() == MODEL
        assert (job.state, job.source_path) == (JobState.FAILED, cut.in_failed)
        (event,) = [e for e in logs if e["event"] == "cut_short_source_removed"]
        assert (event["job_key"], event["path"], event["target"]) == (
            cut.job.job_key, str(cut.in_processing), str(cut.in_failed))

    def test_a_retry_afterwards_takes_the_file_back_into_processing(self, cut: Cut) -> None:
        with SqliteJobStore(cut.database) as store:
            intake = Intake(store, [cut.inbox])
            intake.settle(store.get_job(cut.job.id), ok=False, note=NOTE)
            store.transition(cut.job.id, JobState.QUEUED, "retried by a user")
            job = intake.requeue(store.get_job(cut.job.id))
        assert (job.state, job.source_path) == (JobState.PROCESSING, cut.in_processing)
        assert names(cut.inbox.folder("processing")) == [f"{cut.job.job_key}/bracket.stl"]
        assert names(cut.inbox.folder("failed")) == ["bracket.stl.error.txt"]
        assert cut.in_processing.read_bytes() == MODEL

    @pytest.mark.parametrize(
        "other",
        [bytes(reversed(MODEL)), MODEL[:-1]],
        ids=["same size, other bytes", "one byte short"],
    )
    def test_a_copy_in_processing_that_differs_from_the_one_in_failed_is_set_aside_there(
        self, cut: Cut, other: bytes
    ) -> None:
        assert other != MODEL
        cut.in_processing.write_bytes(other)
        with SqliteJobStore(cut.database) as store, capture_logs() as logs:
            Intake(store, [cut.inbox]).settle(store.get_job(cut.job.id), ok=False, note=NOTE)
        failed = cut.inbox.folder("failed")
        aside = failed / "bracket (2).stl"
        assert names(cut.inbox.folder("processing")) == []
        assert aside.read_bytes() == other
        assert cut.in_failed.read_bytes() == MODEL
        assert not [e for e in logs if e["event"] == "cut_short_source_removed"]
        (event,) = [e for e in logs if e["event"] == "cut_short_copy_set_aside"]
        assert (event["job_key"], event["path"], event["set_aside"], event["kept"],
                event["log_level"]) == (cut.job.job_key, str(cut.in_processing), str(aside),
                                        str(cut.in_failed), "warning")
        assert event["hint"] == (
            f"the job's file is {cut.in_failed}; {aside} is the copy that differed from it "
            "(the newer one): keep the one that is wanted")

    def test_a_retry_that_meets_a_differing_copy_keeps_both_and_goes_on(
        self, cut: Cut
    ) -> None:
        other = bytes(reversed(MODEL))
        cut.in_processing.write_bytes(other)
        with SqliteJobStore(cut.database) as store, capture_logs() as logs:
            store.transition(cut.job.id, JobState.QUEUED, "retried by a user")
            job = Intake(store, [cut.inbox]).requeue(store.get_job(cut.job.id))
        assert (job.state, job.source_path) == (JobState.PROCESSING, cut.in_processing)
        assert cut.in_processing.read_bytes() == MODEL
        assert (cut.inbox.folder("failed") / "bracket (2).stl").read_bytes() == other
        assert [e["event"] for e in logs if e["event"].startswith("cut_short")] == [
            "cut_short_copy_set_aside"]


class TestAFileThatIsNotACutShortMove:
    """Only a settle's move never recorded as made is finished this way."""

    def test_a_second_drop_beside_a_job_in_processing_is_kept(
        self, tmp_path: Path, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        (job,) = Intake(store, [inbox]).take(drop_file(inbox, "bracket.stl", MODEL)).taken
        again = drop_file(inbox, "bracket.stl", MODEL).root  # the same content, dropped again
        assert Intake(store, [inbox]).finish_move(store.get_job(job.id))
        assert again.read_bytes() == MODEL
        assert job.source_path.read_bytes() == MODEL


class TestARetryBeforeTheNextLife:
    """The user retried (``jobs retry``) while the daemon was down: its start requeues the
    job before it settles processing/ folders, and meets the copy left there."""

    def test_the_retry_proceeds_with_the_file_once_in_processing(self, cut: Cut) -> None:
        with SqliteJobStore(cut.database) as store:
            store.transition(cut.job.id, JobState.QUEUED, "retried by a user")
            job = Intake(store, [cut.inbox]).requeue(store.get_job(cut.job.id))
        assert (job.state, job.source_path) == (JobState.PROCESSING, cut.in_processing)
        assert names(cut.inbox.folder("processing")) == [f"{cut.job.job_key}/bracket.stl"]
        assert names(cut.inbox.folder("failed")) == ["bracket.stl.error.txt"]
        assert cut.in_processing.read_bytes() == MODEL
