"""The hot folder's worker run whole, group w3 (session 19): how ``run_batch`` splits a batch
by print target and what it does with a batch whose recipe is gone. Each is read where a user
reads it: the printed jobs in the fleet folder, the failed/ notes, the store's records, the
node's copies folder and structured events; ``_run_jobs``'s case whose file cannot be copied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon_support import (
    DummyPool,
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.executor import Reporter, RunOptions
from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import Plan
from preform_pipeline.settings import HotFolderSettings, Settings
from preform_pipeline.settings.hotfolder import BatchingSettings, InboxSettings
from preform_pipeline.store import JobState, SqliteJobStore


class TestABatchWithASidecarPrinterAndWithout:
    """A batch holding files for the recipe's printer and for a sidecar's prints each file
    once, on its own printer."""

    def test_each_file_is_printed_once_on_the_printer_it_asked_for(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        # "a" comes first in the batch: the recipe's own target is handled before the other.
        drop(tmp_path, "a.stl", tetra_stl_bytes(0))
        drop(tmp_path, "b.stl", tetra_stl_bytes(1))
        (tmp_path / "inbox" / "b.yaml").write_text("printer: SimulatedForm4-2\n",
                                                   encoding="utf-8")
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        printed = sorted(job["printer"] for job in fleet_jobs(script.fleet_dir))
        assert printed == ["SimulatedForm4-1", "SimulatedForm4-2"]
        assert {"a.stl", "b.stl"} <= set(names(tmp_path / "inbox" / "done"))
        assert {j.state for j in store.list_jobs()} == {JobState.PRINT_SENT}


class TestABatchWhoseRecipeIsGone:
    """A batch whose recipe was removed from the settings fails its files with a note that
    says what to do; nothing runs."""

    def test_the_note_names_the_recipe_and_says_to_add_it_back(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        inbox = tmp_path / "inbox"
        job = store.create_job(
            recipe="gone", source_path=inbox / "p.stl", state=JobState.PROCESSING,
            fields={HOTFOLDER_FIELD: JobPlace(inbox, "p.stl").to_json()},
        )
        path = inbox / "processing" / job.job_key / "p.stl"
        path.parent.mkdir(parents=True)
        path.write_bytes(tetra_stl_bytes())
        store.update_job(job.id, source_path=str(path))
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
        daemon.worker.run_batch(
            Batch("gone", (BatchItem(f"job:{job.id}", "gone", (job.id,), 0.0),), "flush"))
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        note = (inbox / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert "recipe 'gone' is no longer configured" in note
        assert "add the recipe back to an inbox and retry the job" in note
        assert store.get_job(job.id).state is JobState.FAILED
        assert script.runs == [] and fleet_jobs(script.fleet_dir) == []


def _processing_job(store: SqliteJobStore, inbox: Path, name: str, n: int,
                    **kwargs: Any) -> int:
    """A job the intake took (its file in processing/<key>/), as the batcher hands it on."""
    job = store.create_job(recipe="hot", source_path=inbox / name, state=JobState.PROCESSING,
                           fields={HOTFOLDER_FIELD: JobPlace(inbox, name).to_json()},
                           **kwargs)
    path = inbox / "processing" / job.job_key / name
    path.parent.mkdir(parents=True)
    path.write_bytes(tetra_stl_bytes(n))
    store.update_job(job.id, source_path=str(path))
    return job.id


class TestACaseWhoseFileCannotBeCopied:
    """A case one of whose files cannot be copied to the node fails whole, each file with a
    note; the batch's other files are printed, and no copy is left behind."""

    def test_the_case_fails_with_notes_and_the_other_file_is_printed(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        inbox = tmp_path / "inbox"
        # Claimed with another content than the file has: its copy is refused.
        changed = _processing_job(store, inbox, "upper.stl", 0, case_id="C-1",
                                  content_hash="sha256:" + "0" * 64)
        sibling = _processing_job(store, inbox, "lower.stl", 1, case_id="C-1")
        alone = _processing_job(store, inbox, "other.stl", 2)
        settings_hot = {"local_copies": True, "local_copy_dir": tmp_path / "copies"}
        script.store = store
        settings = Settings(hotfolders=HotFolderSettings(
            inboxes=(InboxSettings(path=inbox, recipe=write_recipe(tmp_path),
                                   quiet_period_s=0.2),),
            batching=BatchingSettings(window_s=0.1), stop_deadline_s=5.0,
            output_root=tmp_path / "out", **settings_hot,
        ))

        def executor(plan: Plan, pool: Any, *, options: RunOptions,
                     reporter: Reporter | None = None) -> ScriptedRunner:
            assert reporter is not None
            return ScriptedRunner(script, plan, options, reporter)

        daemon = HotFolderDaemon(settings, store, DummyPool, executor)
        ids = (changed, sibling, alone)
        with capture_logs() as logs:
            daemon.worker.run_batch(Batch("hot", (BatchItem("C-1", "hot", ids[:2], 0.0),
                                                  BatchItem("job:3", "hot", ids[2:], 0.0)),
                                          "flush"))
        failed = inbox / "failed"
        assert {"upper.stl.error.txt", "lower.stl.error.txt"} <= set(names(failed))
        assert "its content changed after it was taken" in (
            failed / "upper.stl.error.txt").read_text(encoding="utf-8")
        note = (failed / "lower.stl.error.txt").read_text(encoding="utf-8")
        assert "another file of the case: " in note and "C-1" in note
        assert "the file was changed or cut short on the shared drive" in note
        assert "copying the case's files to this node" in note
        assert [store.get_job(i).state for i in ids] == [
            JobState.FAILED, JobState.FAILED, JobState.PRINT_SENT]
        assert len(fleet_jobs(script.fleet_dir)) == 1  # other.stl's build only
        assert names(tmp_path / "copies") == []
        (refused,) = [e for e in logs if e["event"] == "local_copy_failed"]
        assert refused["job_key"] == store.get_job(changed).job_key
        assert "its content changed after it was taken" in refused["reason"]
