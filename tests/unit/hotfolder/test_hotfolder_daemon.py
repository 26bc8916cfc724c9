"""The daemon with a scripted runner: store before acting, outcomes, restarts, stopping."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from daemon_support import Script, drop, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_recipe,
)
from preform_pipeline.printing import FleetFolderLocator, SendHolder
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.settings.hotfolder import BatchingSettings
from preform_pipeline.store import JobState, SqliteJobStore


class TestOnce:
    """--once takes what is there, prepares it, settles every file, and returns."""

    def test_files_are_printed_once_and_settled_beside_reports(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        for i in range(3):
            drop(tmp_path, f"p{i}.stl", tetra_stl_bytes(i))
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        inbox = tmp_path / "inbox"
        assert names(inbox / "done") == sorted(
            [f"p{i}.stl" for i in range(3)] + [f"p{i}.stl.report.json" for i in range(3)])
        assert names(inbox / "processing") == []
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert {j.state for j in store.list_jobs()} == {JobState.PRINT_SENT}

    def test_print_sending_is_durable_before_the_print(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        ((build_name, state, job_name),) = script.seen_states
        assert state == "print_sending"
        assert job_name is not None and build_name in job_name
        (build,) = store.list_builds()
        assert build.job_key == build_name
        assert build.state is JobState.PRINT_SENT and build.print_job_id

    def test_a_corrupt_stl_fails_while_its_batch_mates_print(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        drop(tmp_path, "good.stl", tetra_stl_bytes(1))
        # Complete by the rule (it ends its solid) but not an STL anyone can read.
        drop(tmp_path, "bad.stl", b"solid x\nfacet normal a b c\nendsolid x\n")
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        inbox = tmp_path / "inbox"
        assert "good.stl" in names(inbox / "done")
        assert names(inbox / "failed") == ["bad.stl", "bad.stl.error.txt"]
        note = (inbox / "failed" / "bad.stl.error.txt").read_text(encoding="utf-8")
        assert "What failed:" in note and "What to do:" in note
        assert len(fleet_jobs(script.fleet_dir)) == 1

    def test_a_failed_build_sends_its_files_to_failed_with_the_reason(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        script.fail = lambda build: "label refused: LABEL_FAILED: too long"
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        note = (tmp_path / "inbox" / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert "LABEL_FAILED" in note and "preparing build PP-" in note
        assert fleet_jobs(script.fleet_dir) == []

    def test_a_build_cut_off_by_the_job_store_going_away_is_prepared_again(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        failures = ["cannot reach the PostgreSQL job store while reading build 1"]
        script.fail = lambda build: failures.pop() if failures else None
        script.fail_store_outage = True
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert names(tmp_path / "inbox" / "failed") == []
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]
        assert [b.state for b in store.list_builds()] == [JobState.CANCELLED,
                                                         JobState.PRINT_SENT]
        assert len(fleet_jobs(script.fleet_dir)) == 1

    def test_a_split_build_gets_one_store_build_per_half(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        script.split_first = True
        for i in range(4):
            drop(tmp_path, f"p{i}.stl", tetra_stl_bytes(i))
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        states = sorted(b.state.value for b in store.list_builds())
        assert states == ["cancelled", "print_sent", "print_sent"]
        assert len(fleet_jobs(script.fleet_dir)) == 2
        assert len(names(tmp_path / "inbox" / "done")) == 8

    def test_a_subfolder_named_after_a_recipe_routes_to_it(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        other = write_recipe(tmp_path, name="other", printer=None)
        drop(tmp_path, "other/C-1/a.stl", tetra_stl_bytes(1))
        drop(tmp_path, "b.stl", tetra_stl_bytes(2))
        run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                    inbox={"routes": (other,)}))
        recipes = {j.original_name: (j.recipe, j.case_id, j.state) for j in store.list_jobs()}
        assert recipes == {"a.stl": ("other", "C-1", JobState.DONE),
                           "b.stl": ("hot", None, JobState.PRINT_SENT)}
        assert (tmp_path / "inbox" / "done" / "other" / "C-1" / "a.stl").exists()


class TestRestart:
    """Work a crash interrupted resumes from what the store says."""

    def sending_build(
        self, tmp_path: Path, store: SqliteJobStore, holder: SendHolder | None = None
    ) -> int:
        """A job in processing/ whose build was caught in PRINT_SENDING (held by ``holder``)."""
        inbox = tmp_path / "inbox"
        job = store.create_job(
            recipe="hot", source_path=inbox / "p.stl", state=JobState.PROCESSING,
            fields={HOTFOLDER_FIELD: JobPlace(inbox, "p.stl").to_json()},
        )
        path = inbox / "processing" / job.job_key / "p.stl"
        path.parent.mkdir(parents=True)
        path.write_bytes(tetra_stl_bytes())
        store.update_job(job.id, source_path=str(path))
        build = store.create_build(recipe="hot", job_ids=[job.id])
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build.id, state, "test")
        store.transition_build(build.id, JobState.PRINT_SENDING, "test",
                               job_name=f"hot-{build.job_key}", printer="SimulatedForm4-1",
                               send_holder=holder.to_json() if holder is not None else None)
        return build.id

    def test_a_print_that_went_out_is_found_not_resent(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        build_id = self.sending_build(tmp_path, store)
        key = store.get_build(build_id).job_key
        (script.fleet_dir / "jobs").mkdir(parents=True)
        (script.fleet_dir / "jobs" / "j1.json").write_text(
            f'{{"job_id": "j1", "job_name": "hot-{key}", "printer": "SimulatedForm4-1"}}',
            encoding="utf-8")
        run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                    lookup=FleetFolderLocator(script.fleet_dir)))
        build = store.get_build(build_id)
        assert build.state is JobState.PRINT_SENT and build.print_job_id == "j1"
        assert script.runs == []
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]

    def test_a_print_proven_unsent_is_prepared_and_sent_once(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        build_id = self.sending_build(tmp_path, store, reaped_holder())
        locator = FleetFolderLocator(script.fleet_dir, report_delay_s=0.0)
        run_daemon_once(make_daemon(tmp_path, store, script, recipe, lookup=locator))
        assert store.get_build(build_id).state is JobState.CANCELLED
        assert len(script.runs) == 1
        assert len(fleet_jobs(script.fleet_dir)) == 1
        (job,) = store.list_jobs()
        assert job.state is JobState.PRINT_SENT

    def test_without_a_lookup_the_build_is_unverified_with_instructions(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        build_id = self.sending_build(tmp_path, store)
        run_daemon_once(make_daemon(tmp_path, store, script, recipe, lookup=None))
        assert store.get_build(build_id).state is JobState.UNVERIFIED
        note = (tmp_path / "inbox" / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert "SimulatedForm4-1" in note and "jobs retry" in note
        assert script.runs == []

    def test_a_build_caught_preparing_is_prepared_again(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        build_id = self.sending_build(tmp_path, store)
        # Rewind the scene: the crash came while it was still being prepared.
        store.transition_build(build_id, JobState.PREPARED, "not sent",
                               expect=JobState.PRINT_SENDING)
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert store.get_build(build_id).state is JobState.CANCELLED
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]

    def test_a_file_in_processing_without_a_job_goes_to_failed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        stray = tmp_path / "inbox" / "processing" / "PP-0000000000" / "lost.stl"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        failed = tmp_path / "inbox" / "failed"
        assert names(failed) == ["lost.stl", "lost.stl.error.txt"]
        assert "has no job for it" in (failed / "lost.stl.error.txt").read_text(encoding="utf-8")


class TestMinFill:
    """An under-filled build waits for more models, and goes after max_hold_s."""

    def test_a_lonely_model_waits_then_goes(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        daemon = make_daemon(
            tmp_path, store, script, recipe,
            batching=BatchingSettings(window_s=0.05, min_fill=0.5, max_hold_s=0.6),
        )
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        thread = threading.Thread(target=daemon.run)
        started = datetime.now(timezone.utc)
        thread.start()
        try:
            wait_for(lambda: bool(fleet_jobs(script.fleet_dir)), 10, what="the held print")
        finally:
            daemon.stop()
            thread.join(10)
        (build,) = store.list_builds()
        assert build.created_at - started >= timedelta(seconds=0.5)


class TestStop:
    """stop() ends the loop; a batch past the deadline is cancelled and resumed later."""

    def test_a_stuck_batch_is_cancelled_at_the_deadline(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        script.block = threading.Event()
        daemon = make_daemon(tmp_path, store, script, recipe, stop_deadline_s=0.3)
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(daemon.run()))
        thread.start()
        wait_for(lambda: bool(script.runs), 10, what="the batch to start")
        daemon.stop()
        thread.join(10)
        assert result == [0]
        assert script.cancelled.is_set()
        (job,) = store.list_jobs()
        assert job.state is JobState.PROCESSING and job.build_id is None
        assert job.source_path.exists()
        # The next start prepares it.
        script.block, script.cancelled = None, threading.Event()
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert store.get_job(job.id).state is JobState.PRINT_SENT


def test_duplicate_drops_are_skipped(
    tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
) -> None:
    drop(tmp_path, "a.stl", tetra_stl_bytes(7))
    run_daemon_once(make_daemon(tmp_path, store, script, recipe))
    drop(tmp_path, "a.stl", tetra_stl_bytes(7))
    run_daemon_once(make_daemon(tmp_path, store, script, recipe))
    assert len(fleet_jobs(script.fleet_dir)) == 1
    assert names(tmp_path / "inbox" / "failed") == ["a.stl", "a.stl.error.txt"]
