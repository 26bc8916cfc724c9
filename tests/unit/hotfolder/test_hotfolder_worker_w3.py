"""The hot folder's worker run whole, group w3 (session 19): how ``run_batch`` splits a batch
by print target and what it does with a batch whose recipe is gone. Each is read where a user
reads it: the printed jobs in the fleet folder, the failed/ notes, the store's records, the
node's copies folder and structured events; ``_run_jobs``'s case whose file cannot be copied."""

from __future__ import annotations

from pathlib import Path

from daemon_support import (
    Script,
    drop,
    make_daemon,
    names,
    processing_job,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
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
        job_id = processing_job(store, inbox, "p.stl", recipe="gone")
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
        daemon.worker.run_batch(
            Batch("gone", (BatchItem(f"job:{job_id}", "gone", (job_id,), 0.0),), "flush"))
        assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt"]
        note = (inbox / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert "recipe 'gone' is no longer configured" in note
        assert "add the recipe back to an inbox and retry the job" in note
        assert store.get_job(job_id).state is JobState.FAILED
        assert script.runs == [] and fleet_jobs(script.fleet_dir) == []


class TestACaseWhoseFileCannotBeCopied:
    """A case one of whose files cannot be copied to the node fails whole, each file with a
    note; the batch's other files are printed, and no copy is left behind."""

    def test_the_case_fails_with_notes_and_the_other_file_is_printed(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        inbox = tmp_path / "inbox"
        # Claimed with another content than the file has: its copy is refused.
        changed = processing_job(store, inbox, "upper.stl", 0, case_id="C-1",
                                 content_hash="sha256:" + "0" * 64)
        sibling = processing_job(store, inbox, "lower.stl", 1, case_id="C-1")
        alone = processing_job(store, inbox, "other.stl", 2)
        settings_hot = {"local_copies": True, "local_copy_dir": tmp_path / "copies"}
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path), hot=settings_hot)
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
