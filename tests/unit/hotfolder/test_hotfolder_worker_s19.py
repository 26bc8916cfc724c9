"""The hot folder's worker under mutation (session 19): what a user reads in failed/ notes,
in the store's history and in the events, for batches the daemon's other tests leave out."""

from __future__ import annotations

import threading
from pathlib import Path

from daemon_support import (
    RunnerLosingSent,
    Script,
    drop,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, wait_for, write_recipe
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.settings.hotfolder import BatchingSettings
from preform_pipeline.store import JobState, SqliteJobStore

WAIT_S = 10.0


def _note(tmp_path: Path, name: str) -> str:
    return (tmp_path / "inbox" / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")


class TestAFileNoReaderCanRead:
    """A file the planner rejects is failed with where it failed and what to do about it."""

    def test_its_note_says_to_open_it_in_preform_and_where_it_failed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "good.stl", tetra_stl_bytes(1))
        drop(tmp_path, "bad.stl", b"solid x\nfacet normal a b c\nendsolid x\n")
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        note = _note(tmp_path, "bad.stl")
        assert ("check the file (open it in PreForm); fix or re-export it and drop it again"
                in note)
        assert "reading and planning the model" in note


class TestACaseThatCannotBeDone:
    """A case the feasibility check refuses is failed before batching, named by its case."""

    def test_its_note_names_the_case_not_the_file(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        case = tmp_path / "inbox" / "C-7"
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(tetra_stl_bytes(2))
        # A 4 mm drain hole cannot be cut into a part 2 mm thin (the tetrahedron).
        recipe = write_recipe(tmp_path, extra_steps=(
            "hollow: {wall_thickness_mm: 1.0}",
            "add_drain_holes: {diameter_mm: 4.0, placement: {face: back, count: 1}}",
        ))
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        note = _note(tmp_path, "C-7/upper.stl")
        assert "checking case C-7 before batching" in note
        assert fleet_jobs(script.fleet_dir) == []
        assert [(e["case_id"], e["step"], e["jobs"]) for e in logs
                if e["event"] == "case_infeasible"] == [("C-7", "add_drain_holes", 1)]


class TestAnUnderfilledBuild:
    """An under-filled build is held back, and the hold is logged as its own event."""

    def test_the_hold_is_logged_with_the_fill_asked_for(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                         batching=BatchingSettings(window_s=0.05, min_fill=0.5, max_hold_s=0.6))
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        thread = threading.Thread(target=daemon.run)
        with capture_logs() as logs:
            thread.start()
            try:
                wait_for(lambda: bool(fleet_jobs(script.fleet_dir)), WAIT_S,
                         what="the held print")
            finally:
                daemon.stop()
                thread.join(WAIT_S)
        held = [e for e in logs if e["event"] == "builds_held_for_fill"]
        assert held and {(e["recipe"], e["held_items"], e["min_fill"]) for e in held} == {
            ("hot", 1, 0.5)
        }


class TestARecipeThatDoesNotPrint:
    """A build of a recipe without a print step ends done, and its history says prepared."""

    def test_the_jobs_history_ends_in_done_prepared(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer=None)))
        (job,) = store.list_jobs()
        last = store.history(job.id)[-1]
        assert (job.state, last.to_state, last.reason) == (JobState.DONE, JobState.DONE,
                                                            "prepared")
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]


class TestASidecarPrintTarget:
    """A sidecar's ``printer:`` is checked against the known printers before batching."""

    KNOWN = KnownPrinters((KnownPrinter("Form4-A", ("FORM-4-0",)),), "the test's fleet")

    def test_an_unknown_target_fails_its_case_with_the_reason_and_a_known_one_prints(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        for case, target in (("C-1", "Form4-A"), ("C-2", "Form4-Z")):
            folder = tmp_path / "inbox" / case
            folder.mkdir(parents=True)
            (folder / "upper.stl").write_bytes(tetra_stl_bytes(int(case[-1])))
            (folder / "upper.yaml").write_text(f"printer: {target}\n", encoding="utf-8")
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                known_printers=self.KNOWN))
        note = _note(tmp_path, "C-2/upper.stl")
        assert "sidecar printer:" in note and "Form4-Z" in note
        assert [j["printer"] for j in fleet_jobs(script.fleet_dir)] == ["Form4-A"]
        jobs = {j.case_id: j.state for j in store.list_jobs()}
        assert jobs == {"C-1": JobState.PRINT_SENT, "C-2": JobState.FAILED}


class TestASidecarPrintTargetUnchecked:
    """Without a list of known printers, a sidecar's ``printer:`` is sent as it is."""

    def test_the_case_prints_to_the_sidecars_printer(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        (tmp_path / "inbox" / "p.yaml").write_text("printer: Form4-Z\n", encoding="utf-8")
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        assert [j["printer"] for j in fleet_jobs(script.fleet_dir)] == ["Form4-Z"]


class TestLocalCopies:
    """With local copies on, a batch is prepared from its copies and settles as usual."""

    def test_the_file_prints_once_and_settles_in_done(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                hot={"local_copies": True,
                                     "local_copy_dir": tmp_path / "copies"}))
        (job,) = store.list_jobs()
        assert job.state is JobState.PRINT_SENT
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert "p.stl" in names(tmp_path / "inbox" / "done")


class TestASentPrintTheStoreMissed:
    """A print the runner sent whose ``sent`` write was lost is recorded sent at the end."""

    def test_the_build_ends_print_sent_with_its_print_job_and_the_file_in_done(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                runner=RunnerLosingSent))
        [printed] = fleet_jobs(script.fleet_dir)
        (build,) = store.list_builds()
        assert (build.state, build.print_job_id) == (JobState.PRINT_SENT, printed["job_id"])
        assert "p.stl" in names(tmp_path / "inbox" / "done")
