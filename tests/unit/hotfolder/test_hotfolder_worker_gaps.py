"""The hot folder's worker, the gaps seed 34 left open (session 19): a print whose answer
never came, a local copy that cannot be made, the batch's run id, and a job that failed
before its batch ran. Each is read where a user reads it: the outcome folders, the notes,
the store's records and the structured events."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from daemon_support import (
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    names,
    processing_job,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.executor import BuildOutcome, BuildStatus, Reporter, RunOptions
from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.batchrest import MIN_REST_S, Try
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import BuildPlan, Plan
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.store import Build, JobState, SqliteJobStore

#: What the runner says of a send that got no answer (the executor's wording differs).
UNANSWERED = "the printer gave no answer within 30 s"


class _UnansweredHooks:
    """A build's print hooks used as the executor uses them for a send without an answer:
    the printer resolved through the hooks before the send, then ``unconfirmed`` where an
    answered send would say ``sent``."""

    def __init__(self, inner: Any, recipe: Recipe) -> None:
        self.inner = inner
        self.recipe = recipe

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def before_send(self, job_name: str, printer: str, **kwargs: Any) -> str | None:
        # The scripted runner needs no client: a single named printer is not looked up.
        resolved = self.inner.resolve_printer(printer, self.recipe, None)
        return self.inner.before_send(job_name, resolved, **kwargs)  # type: ignore[no-any-return]

    def sent(self, job_id: str | None, printer: str) -> None:
        self.inner.unconfirmed(UNANSWERED)


class _UnansweredPrintHooks:
    def __init__(self, inner: Any, recipe: Recipe) -> None:
        self.inner = inner
        self.recipe = recipe

    def for_build(self, build: BuildPlan) -> _UnansweredHooks:
        return _UnansweredHooks(self.inner.for_build(build), self.recipe)

    def after_run(self, result: Any, stop: threading.Event) -> Any:
        return self.inner.after_run(result, stop)


class _RunnerUnanswered(ScriptedRunner):
    """The scripted runner whose every print reaches the fleet folder but whose answer is
    lost: the build ends ``print_unconfirmed``, without a job id."""

    def __init__(self, script: Script, plan: Plan, options: RunOptions,
                 reporter: Reporter) -> None:
        hooks = _UnansweredPrintHooks(options.print_tracking, plan.recipe)
        super().__init__(script, plan, replace(options, print_tracking=hooks), reporter)

    def _print(self, build: BuildPlan) -> str | None:
        super()._print(build)
        return None  # the printer's answer (its job id) never came back

    def _outcome(self, build: BuildPlan, status: BuildStatus, reason: str | None = None,
                 job_id: str | None = None, children: tuple[str, ...] = ()) -> BuildOutcome:
        if status is BuildStatus.SUCCEEDED:
            status, reason = BuildStatus.PRINT_UNCONFIRMED, UNANSWERED
        return super()._outcome(build, status, reason, job_id, children)


def _note(tmp_path: Path, name: str) -> str:
    return (tmp_path / "inbox" / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")


class TestAPrintWithoutAnAnswer:
    """A print sent without an answer is looked up at the end of its batch, found in the
    fleet and recorded sent, never sent again."""

    def test_it_is_found_recorded_sent_with_its_job_and_settled_in_done(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                         lookup=FleetFolderLocator(script.fleet_dir),
                         runner=_RunnerUnanswered)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        [printed] = fleet_jobs(script.fleet_dir)
        (build,) = store.list_builds()
        assert (build.state, build.print_job_id) == (JobState.PRINT_SENT, printed["job_id"])
        assert "p.stl" in names(tmp_path / "inbox" / "done")
        assert [e["reason"] for e in logs if e["event"] == "print_left_sending"] == [UNANSWERED]
        settled = [e for e in logs if e["event"] == "interrupted_print_settled"]
        assert [(e["build_id"], e["state"]) for e in settled] == [(build.id, "print_sent")]
        assert settled[0]["after_restart"] is False


class TestALocalCopyThatCannotBeMade:
    """A file whose local copy cannot be made fails alone, with what to check."""

    def test_its_note_says_to_check_the_shared_drive_and_the_cache_folder(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        # The cache folder's path is taken by a file: no copy can be written below it.
        (tmp_path / "copies").write_text("not a folder\n", encoding="utf-8")
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                    hot={"local_copies": True,
                                         "local_copy_dir": tmp_path / "copies"}))
        note = _note(tmp_path, "p.stl")
        assert "check the shared drive and the free space of the node's cache folder" in note
        assert "copying the file to this node" in note
        assert fleet_jobs(script.fleet_dir) == []
        (job,) = store.list_jobs()
        assert job.state is JobState.FAILED
        assert [e["job_key"] for e in logs if e["event"] == "local_copy_failed"] == [job.job_key]


class TestTheBatchsRun:
    """A batch runs under a run id of its own: its run report is named by it, and the
    build's history says which run prepared it."""

    def test_the_history_names_the_run_whose_report_was_written(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        [report] = (tmp_path / "out").rglob("reports/*.json")
        run_id = report.stem
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_id)
        (job,) = store.list_jobs()
        reasons = [entry.reason for entry in store.history(job.id)]
        assert f"sent to the server pool (run {run_id})" in reasons


class TestAJobThatFailedBeforeItsBatchRan:
    """A job of a released batch that failed meanwhile (``jobs cancel``) is not prepared;
    its file leaves processing/ for failed/."""

    def test_its_file_goes_to_failed_and_nothing_is_printed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        job_id = processing_job(store, inbox, "p.stl")
        path = Path(store.get_job(job_id).source_path)
        store.transition(job_id, JobState.CANCELLED, "cancelled by the operator",
                         expect=JobState.PROCESSING)
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
        batch = Batch("hot", (BatchItem(f"job:{job_id}", "hot", (job_id,), 0.0),), "flush")
        daemon.worker.run_batch(batch)
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        assert not path.exists()
        assert script.runs == [] and fleet_jobs(script.fleet_dir) == []


class AdoptedWhileBatching(SqliteJobStore):
    """The store shared with another node that adopts the batch's jobs into a build of its
    own just before this node makes its first build (the store seam)."""

    adopted: Build | None = None

    def create_build(self, **kwargs: Any) -> Build:
        if self.adopted is None:
            self.adopted = super().create_build(**{**kwargs, "reason": "another node"})
        return super().create_build(**kwargs)


class TestABatchAdoptedByAnotherNode:
    """A batch whose jobs another node took meanwhile is abandoned, and those jobs are not
    batched again here: they are the other node's to print. That is said as what it is,
    not as the store being away: nothing rests, and a later outage is still said first."""

    def test_nothing_is_printed_and_no_second_batch_runs(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        with AdoptedWhileBatching(tmp_path / "jobs.sqlite3") as store, capture_logs() as logs:
            daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
            run_daemon_once(daemon)
            (job,) = store.list_jobs()
            adopted = store.adopted
        assert adopted is not None
        assert (job.state, job.build_id) == (JobState.PROCESSING, adopted.id)
        assert fleet_jobs(script.fleet_dir) == [] and script.runs == []
        assert [(e["log_level"], e["job_id"], e["build_id"], e["builds"]) for e in logs
                if e["event"] == "batch_taken_elsewhere"] == [("info", job.id, adopted.id, 0)]
        assert [e for e in logs if e["event"].startswith("batch_abandoned")] == []
        assert [e["batches"] for e in logs if e["event"] == "hotfolder_stopped"] == [1]
        # No outage was counted: the next one is the first of its kind, said as a warning
        # after the shortest rest.
        assert daemon.worker.rest.abandoned("hot", [], []) == Try(
            max(daemon.hot.batching.window_s, MIN_REST_S), first=True)
