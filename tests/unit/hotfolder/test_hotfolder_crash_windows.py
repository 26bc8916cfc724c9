"""Crashes inside the intake's moves: the next start finishes what the crash cut short.

Each test stops the intake at one exact moment, between two of its steps, as SIGKILL would:
the intake below dies when it reaches a named step (the seam), so nothing after it runs.
Session 12's failure was one of them: every file of a case taken (the store names its place
in processing/, the file is there), the daemon dead before it removed the emptied folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (
    Script,
    claimed_by_a_run,
    drop,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.followup import FollowUp
from preform_pipeline.hotfolder.intake import (
    DEFAULT_RECENT_TAKES,
    Attachment,
    Drop,
    Intake,
    JobPlace,
    place_of,
)
from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
)
from preform_pipeline.printing import FleetFolderFeed
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Build, Job, JobState, SqliteJobStore


class Killed(BaseException):
    """The process died here: nothing after this point of the intake runs."""


class DiesBeforeRemovingTheFolder(Intake):
    """The intake, killed between a case's last move and the removal of its folder."""

    def remove_case_folder(self, root: Path) -> tuple[Path, ...]:
        raise Killed(root)


class DiesBeforeMovingSidecars(Intake):
    """The intake, killed between moving a model and moving its sidecars."""

    def _move_attachments(self, job: Job, attachments: Sequence[Attachment]) -> None:
        raise Killed(job.job_key)


class DiesBeforeLeavingProcessing(Intake):
    """The intake, killed between settling a file and removing its processing/ folder."""

    def _leave_processing(self, place: JobPlace, previous: Path) -> None:
        raise Killed(previous)


def drop_case(tmp_path: Path, name: str = "case8", *, sidecar: str | None = None) -> Path:
    case = tmp_path / "inbox" / name
    case.mkdir(parents=True)
    (case / "m8a.stl").write_bytes(tetra_stl_bytes(8))
    (case / "m8b.stl").write_bytes(tetra_stl_bytes(9))
    if sidecar is not None:
        (case / f"{name}.yaml").write_text(sidecar, encoding="utf-8")
    return case


def killed_while_taking(tmp_path: Path, store: SqliteJobStore, recipe: Path, case: Path) -> None:
    """Take ``case`` as the daemon would, and die right before removing its folder."""
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
    intake = DiesBeforeRemovingTheFolder(store, [inbox])
    models = tuple(sorted(case.glob("*.stl")))
    with pytest.raises(Killed):
        intake.take(Drop(inbox, case, "hot", True, models=models))
    # The moment of the failure: the folder is there, empty, and the store is ahead of it.
    assert case.is_dir() and list(case.iterdir()) == []


class TestAnEmptiedCaseFolder:
    """The restarted daemon removes the folder it emptied and finishes the case."""

    def test_after_taking_the_folder_is_removed_and_the_case_prints_once(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        assert {j.state for j in store.list_jobs()} == {JobState.PROCESSING}
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert not case.exists()
        inbox = tmp_path / "inbox"
        assert sorted(p.name for p in inbox.iterdir()) == ["done", "failed", "processing"]
        assert names(inbox / "done") == ["case8/m8a.stl", "case8/m8a.stl.report.json",
                                         "case8/m8b.stl", "case8/m8b.stl.report.json"]
        assert len(fleet_jobs(script.fleet_dir)) == 1
        jobs = store.list_jobs()
        assert {j.state for j in jobs} == {JobState.PRINT_SENT}
        assert len({j.build_id for j in jobs}) == 1  # still one case, on one build
        removed = [e for e in logs if e["event"] == "case_folder_removed"]
        assert [e["root"] for e in removed] == [str(case)]

    def test_after_rejecting_the_case_the_folder_is_removed_too(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path, sidecar="priorty: 5\n")  # a bad sidecar rejects it all
        killed_while_taking(tmp_path, store, recipe, case)
        assert {j.state for j in store.list_jobs()} == {JobState.FAILED}
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert not case.exists()
        assert names(tmp_path / "inbox" / "failed") == [
            "case8/case8.yaml", "case8/m8a.stl", "case8/m8a.stl.error.txt", "case8/m8b.stl",
            "case8/m8b.stl.error.txt"]
        assert fleet_jobs(script.fleet_dir) == []

    def test_its_empty_subfolders_go_with_it(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        (case / "upper").mkdir()
        (case / "m8a.stl").rename(case / "upper" / "m8a.stl")
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        models = (case / "m8b.stl", case / "upper" / "m8a.stl")
        with pytest.raises(Killed):
            DiesBeforeRemovingTheFolder(store, [inbox]).take(
                Drop(inbox, case, "hot", True, models=models))
        assert [p.name for p in case.iterdir()] == ["upper"]
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert not case.exists()
        assert "case8/upper/m8a.stl" in names(tmp_path / "inbox" / "done")


    def test_it_stays_while_its_quiet_period_runs(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        daemon = make_daemon(tmp_path, store, script, recipe,
                             inbox={"quiet_period_s": 60.0, "incomplete_timeout_s": 60.0})
        with running_daemon(daemon):
            # Printed and settled: the start-up look at the folder was long before.
            wait_for(lambda: len(names(tmp_path / "inbox" / "done")) == 4, 20,
                     what="the case settled")
            assert case.is_dir()

    def test_a_store_away_at_the_first_look_only_delays_it(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        with StoreAwayOnce(tmp_path / "jobs.sqlite3") as away, capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, away, script, recipe))
        assert not case.exists()
        assert "drop_check_failed" in [e["event"] for e in logs]


class StoreAwayOnce(SqliteJobStore):
    """The store, unreachable the first time the newest jobs are read (a database restart):
    the store seam."""

    failed = False

    def list_jobs(self, **filters: Any) -> tuple[Job, ...]:
        if filters == {"limit": DEFAULT_RECENT_TAKES} and not self.failed:
            self.failed = True
            raise StoreError("the job store is away", hint="it comes back")
        return super().list_jobs(**filters)


class TestFoldersThatStay:
    """An empty folder is removed only when it is the very case folder the daemon emptied."""

    def test_a_folder_the_user_made_stays(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        made = tmp_path / "inbox" / "C-2000" / "upper"
        made.mkdir(parents=True)
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert made.is_dir()

    def test_a_folder_of_the_same_name_made_since_the_crash_stays(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        # The user removes the emptied folder and makes a new one of the same name (made
        # first, so it cannot get the old one's inode back), about to copy into it.
        fresh = tmp_path / "inbox" / "case8-new"
        fresh.mkdir()
        case.rmdir()
        fresh.rename(case)
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert case.is_dir()
        assert len(names(tmp_path / "inbox" / "done")) == 4  # the case itself was finished

    def test_an_emptied_folder_a_copy_is_writing_into_stays_with_its_file(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        # A copy tool writes under a temporary name, and has made the folder it copies next.
        partial = case / "m8c.stl.part"
        partial.write_bytes(tetra_stl_bytes(10)[:100])
        (case / "lower").mkdir()
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert partial.is_file() and (case / "lower").is_dir()

    def test_the_case_of_a_job_records_its_folder(
        self, tmp_path: Path, store: SqliteJobStore, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        killed_while_taking(tmp_path, store, recipe, case)
        places = [place_of(j) for j in store.list_jobs()]
        assert {p.case.rel for p in places if p is not None and p.case is not None} == {
            "case8"}
        intake = Intake(store, [InboxSettings(path=tmp_path / "inbox", recipe=recipe)])
        assert intake.emptied_case(case)
        assert not intake.emptied_case(tmp_path / "inbox")
        assert not intake.emptied_case(tmp_path / "inbox" / "processing")


class DiesAfterTheFirstFile(Intake):
    """The intake, killed right after a drop's first file went into processing/."""

    def _into_processing(self, job: Job, *, duplicate_of: Job | None = None) -> Job:
        taken = super()._into_processing(job, duplicate_of=duplicate_of)
        raise Killed(taken.job_key)


class TestACaseCutBetweenItsFiles:
    """A case whose take died between two of its files goes on as one, after the restart
    (with a batching window shorter than the quiet period it used to go in two builds)."""

    def test_the_file_taken_before_waits_for_the_rest(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        case = drop_case(tmp_path)
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        with pytest.raises(Killed):
            DiesAfterTheFirstFile(store, [inbox]).take(
                Drop(inbox, case, "hot", True, models=tuple(sorted(case.glob("*.stl")))))
        assert [p.name for p in case.iterdir()] == ["m8b.stl"]
        daemon = make_daemon(tmp_path, store, script, recipe, inbox={"quiet_period_s": 0.5})
        with capture_logs() as logs, running_daemon(daemon):
            wait_for(lambda: len(list((tmp_path / "inbox" / "done").rglob("*.stl"))) == 2,
                     30, what="the case in done/")
        jobs = store.list_jobs()
        assert len(jobs) == 2 and len({j.build_id for j in jobs}) == 1
        (waited,) = [e for e in logs if e["event"] == "case_take_resumes"]
        assert waited["root"] == str(case) and len(waited["jobs"]) == 1
        assert not case.exists()

    def test_a_lone_file_and_a_folder_made_since_are_not_waited_for(
        self, tmp_path: Path, store: SqliteJobStore, recipe: Path
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        case = drop_case(tmp_path)
        with pytest.raises(Killed):
            DiesAfterTheFirstFile(store, [inbox]).take(
                Drop(inbox, case, "hot", True, models=tuple(sorted(case.glob("*.stl")))))
        intake = Intake(store, [inbox])
        (cut,) = store.list_jobs(state=JobState.PROCESSING)
        assert intake.case_left_in_inbox(cut) == case
        (case / "m8b.stl").rename(tmp_path / "m8b.stl")
        (case / ".m8b.stl.tmp").write_bytes(b"half")  # a copy tool's: not a file of the case
        assert intake.case_left_in_inbox(cut) is None  # nothing left to take
        case.rename(tmp_path / "gone")
        case.mkdir()
        (case / "m8c.stl").write_bytes(tetra_stl_bytes(3))
        assert intake.case_left_in_inbox(cut) is None  # another folder of the same name
        lone = drop(tmp_path, "lone.stl", tetra_stl_bytes(4))
        (taken,) = intake.take(Drop(inbox, lone, "hot", False, models=(lone,))).taken
        assert intake.case_left_in_inbox(taken) is None
        model = tmp_path / "models" / "part.stl"  # a `run`'s job: no place in a hot folder
        model.parent.mkdir()
        model.write_bytes(tetra_stl_bytes(5))
        assert intake.case_left_in_inbox(claimed_by_a_run(store, model)) is None


def drop_with_sidecar(tmp_path: Path) -> tuple[InboxSettings, Drop]:
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "hot.yaml")
    model = inbox.path / "p.stl"
    inbox.path.mkdir(parents=True)
    (inbox.path / "p.yaml").write_text("operator: Ann\n", encoding="utf-8")
    model.write_bytes(tetra_stl_bytes(3))
    return inbox, Drop(inbox, model, "hot", False, models=(model,))


def taken_then_cancelled(store: SqliteJobStore, inbox: InboxSettings, drop: Drop) -> Job:
    """The drop's job, taken into processing/ and cancelled: its file is to go to failed/."""
    (taken,) = Intake(store, [inbox]).take(drop).taken
    return store.transition(taken.id, JobState.CANCELLED, "cancelled by a user")


def entries(folder: Path) -> list[str]:
    """Everything below ``folder``, folders too."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


class TestCutShortMoves:
    """A sidecar follows its model and processing/ is left empty, whatever moment a crash
    came between the model's move and the rest."""

    def test_a_sidecar_left_in_the_inbox_at_taking_follows_its_model(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        inbox, dropped = drop_with_sidecar(tmp_path)
        with pytest.raises(Killed):
            DiesBeforeMovingSidecars(store, [inbox]).take(dropped)
        assert (inbox.path / "p.yaml").is_file()  # the crash's state: the model went alone
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert names(inbox.path / "done") == ["p.stl", "p.stl.report.json", "p.yaml"]
        assert entries(inbox.path / "failed") == []
        assert entries(inbox.path / "processing") == []
        assert sorted(p.name for p in inbox.path.iterdir()) == ["done", "failed", "processing"]
        assert len(fleet_jobs(script.fleet_dir)) == 1

    def test_a_sidecar_left_in_processing_at_settling_follows_its_model(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        inbox, dropped = drop_with_sidecar(tmp_path)
        job = taken_then_cancelled(store, inbox, dropped)
        with pytest.raises(Killed):
            DiesBeforeMovingSidecars(store, [inbox]).settle(job, ok=False, note="cancelled\n")
        assert [p.name for p in (inbox.path / "processing").rglob("*.yaml")] == ["p.yaml"]
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert names(inbox.path / "failed") == ["p.stl", "p.stl.error.txt", "p.yaml"]
        assert entries(inbox.path / "processing") == []
        assert fleet_jobs(script.fleet_dir) == []

    def test_a_processing_folder_left_empty_at_settling_is_removed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        inbox, dropped = drop_with_sidecar(tmp_path)
        job = taken_then_cancelled(store, inbox, dropped)
        with pytest.raises(Killed):
            DiesBeforeLeavingProcessing(store, [inbox]).settle(job, ok=False, note="x\n")
        assert entries(inbox.path / "processing") == [job.job_key]
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert entries(inbox.path / "processing") == []
        assert names(inbox.path / "failed") == ["p.stl", "p.stl.error.txt", "p.yaml"]


def printed_then_finished(
    tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
) -> Path:
    """A file printed and settled in done/, then its print's end written to the store as
    verification writes it; the crash comes before the report is rewritten. Its report."""
    drop(tmp_path, "p.stl", tetra_stl_bytes(4))
    run_daemon_once(make_daemon(tmp_path, store, script, recipe))
    report = tmp_path / "inbox" / "done" / "p.stl.report.json"
    assert json.loads(report.read_text(encoding="utf-8"))["state"] == "print_sent"
    (build,) = store.list_builds()
    store.transition_build(build.id, JobState.FINISHED, "the print finished",
                           verified_status="FINISHED", verified_message="done")
    return report


class TestAReportBehindItsPrint:
    """A report a crash left saying "sent" for a print the store knows ended is rewritten."""

    def test_the_next_start_writes_the_end_into_the_report(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        report = printed_then_finished(tmp_path, store, script, recipe)
        followup = FollowUp(store, client=FleetFolderFeed(script.fleet_dir))
        followup.start()
        followup.stop()
        data = json.loads(report.read_text(encoding="utf-8"))
        assert data["state"] == "finished" and data["build"]["state"] == "finished"
        assert data["verification"]["status"] == "FINISHED"

    def test_reports_that_are_up_to_date_are_left_as_they_are(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        printed_then_finished(tmp_path, store, script, recipe)
        followup = FollowUp(store, client=FleetFolderFeed(script.fleet_dir))
        assert followup.refresh_stale_reports() == 1
        assert followup.refresh_stale_reports() == 0

    def test_a_store_away_at_start_is_logged_not_fatal(self, tmp_path: Path) -> None:
        with StoreAwayForBuilds(tmp_path / "jobs.sqlite3") as away:
            followup = FollowUp(away, client=FleetFolderFeed(tmp_path / "fleet"))
            with capture_logs() as logs:
                followup.start()
                followup.stop()
        assert "hotfolder_verify_failed" in [e["event"] for e in logs]


class StoreAwayForBuilds(SqliteJobStore):
    """The store, unreachable when the ended builds are listed (the store seam)."""

    def list_builds(self, **filters: Any) -> tuple[Build, ...]:
        raise StoreError("the job store is away", hint="it comes back")
