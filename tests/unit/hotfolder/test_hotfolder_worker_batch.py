"""The hot folder's worker under mutation (session 20, its batch entry run whole): which of
a batch's jobs ``run_batch`` runs or settles, when a sidecar's printer counts, how a case the
feasibility check refuses leaves the rest of its batch alone (and its note when the check
has no hint of its own), and the notes of a case whose file cannot be copied. Each is read
where a user reads it: the failed/ notes, the printed jobs in the fleet folder, the store's
records and structured events."""

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
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.store import JobState, SqliteJobStore

#: A recipe whose print step cannot be filled for any model: a file's stem is text, and
#: ``:03d`` formats numbers only (one model per build, so a model's field may be used).
UNFILLABLE_PRINTER = "SimulatedForm4-{stem:03d}"
#: The printers a sidecar may name: two of the recipe's machine type.
FLEET = KnownPrinters((KnownPrinter("Form4-A", ("FORM-4-0",)),
                       KnownPrinter("Form4-B", ("FORM-4-0",))), "the test's fleet")
DRAIN_STEPS = (
    "hollow: {wall_thickness_mm: 1.0}",
    "add_drain_holes: {diameter_mm: 4.0, placement: {face: back, count: 1}}",
)


def _note(inbox: Path, name: str) -> str:
    return (inbox / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")


def _batch(*job_ids: int) -> Batch:
    """A flushed batch of the recipe ``hot``, each job a case of its own."""
    return Batch("hot", tuple(BatchItem(f"job:{i}", "hot", (i,), 0.0) for i in job_ids),
                 "flush")


class TestACaseRefusedWithoutAHint:
    """A case refused for a reason that comes without a hint is told only to drop it again."""

    def test_the_note_says_what_failed_and_to_drop_the_case_again(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        recipe = write_recipe(tmp_path, printer=UNFILLABLE_PRINTER, per_build=1)
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        (job,) = store.list_jobs()
        assert _note(tmp_path / "inbox", "p.stl") == (
            "What failed: model p.stl: step print: template 'SimulatedForm4-{stem:03d}': "
            "cannot format {stem:03d}: Unknown format code 'd' for object of type 'str'\n"
            "Where: checking case p.stl before batching\n"
            "File: p.stl\n"
            f"Job: {job.job_key} (see: preform-pipeline jobs show {job.job_key})\n"
            "What to do: drop the case again (its other cases were not affected)\n")
        assert [e["step"] for e in logs if e["event"] == "case_infeasible"] == ["print"]
        assert job.state is JobState.FAILED
        assert not store.list_builds() and fleet_jobs(script.fleet_dir) == []


class TestARefusedCaseInABatch:
    """A case the feasibility check refuses leaves the batch: the batch's other case is
    printed by the same batch, in a build of its own jobs only."""

    def test_the_other_case_prints_and_the_batch_is_not_abandoned(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        # A 4 mm drain hole cannot be cut into a 2 mm part; a 30 mm part takes it.
        thin = processing_job(store, inbox, "thin.stl", 1)
        big = processing_job(store, inbox, "big.stl", 2, size_mm=30.0)
        daemon = make_daemon(tmp_path, store, script,
                             write_recipe(tmp_path, extra_steps=DRAIN_STEPS))
        with capture_logs() as logs:
            daemon.worker.run_batch(_batch(thin, big))
        assert [store.get_job(i).state for i in (thin, big)] == [
            JobState.FAILED, JobState.PRINT_SENT]
        (build,) = store.list_builds()
        assert build.job_ids == (big,)
        [printed] = fleet_jobs(script.fleet_dir)
        assert store.get_job(big).print_job_id == printed["job_id"]
        assert [e for e in logs if e["event"] == "batch_abandoned"] == []


class TestAJobAnotherBuildFinishedMeanwhile:
    """A job of the batch that another build (another node's) prepared meanwhile is left
    to that build: the batch neither runs it nor moves its file."""

    def test_its_file_stays_in_processing_for_its_own_build_to_settle(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        job_id = processing_job(store, inbox, "p.stl")
        path = Path(store.get_job(job_id).source_path)
        other = store.create_build(recipe="hot", job_ids=[job_id], reason="another node")
        store.transition_build(other.id, JobState.PREPARING, "prepared on another node")
        store.transition_build(other.id, JobState.DONE, "done on another node")
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
        daemon.worker.run_batch(_batch(job_id))
        assert path.is_file()
        assert not (inbox / "done").exists() or names(inbox / "done") == []
        assert store.get_job(job_id).state is JobState.DONE
        assert script.runs == [] and fleet_jobs(script.fleet_dir) == []


class TestASidecarPrinterUnderARecipeThatDoesNotPrint:
    """A recipe without a print step pays no heed to a sidecar's `printer:`: the files are
    prepared together, whatever their sidecars name."""

    def test_both_files_are_done_in_one_build(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        named = processing_job(store, inbox, "a.stl", 1, sidecar={"printer": "Nowhere"})
        other = processing_job(store, inbox, "b.stl", 2, sidecar={"printer": "Form4-A"})
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer=None),
                             known_printers=FLEET)
        with capture_logs() as logs:
            daemon.worker.run_batch(_batch(named, other))
        assert [store.get_job(i).state for i in (named, other)] == [JobState.DONE] * 2
        (build,) = store.list_builds()
        assert build.job_ids == (named, other)
        assert len(script.runs) == 1
        assert not (inbox / "failed").exists() or names(inbox / "failed") == []
        assert [e for e in logs if e["event"] == "case_target_unknown"] == []


class TestTheNotesOfACaseWhoseFileCannotBeCopied:
    """A case whose file cannot be copied to the node fails whole: the refused file's note
    says where it failed, its sibling's names the case, the step and the first file's
    reason."""

    def test_each_note_reads_in_full(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        # Claimed with another content than the file has: its copy is refused.
        changed = processing_job(store, inbox, "upper.stl", 0, case_id="C-1",
                                 content_hash="sha256:" + "0" * 64)
        sibling = processing_job(store, inbox, "lower.stl", 1, case_id="C-1")
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                             hot={"local_copies": True, "local_copy_dir": tmp_path / "copies"})
        upper, lower = store.get_job(changed), store.get_job(sibling)
        daemon.worker.run_batch(Batch("hot", (BatchItem("C-1", "hot", (changed, sibling), 0.0),),
                                      "flush"))
        todo = ("What to do: the file was changed or cut short on the shared drive; drop the "
                "whole file again\n")
        first, *rest = _note(inbox, "upper.stl").splitlines(keepends=True)
        reason = first.removeprefix("What failed: ").rstrip("\n")
        # Named as dropped: its working path in processing/ is gone once the note is read.
        assert reason.startswith("upper.stl: its content changed after it was taken")
        assert "".join(rest) == (
            "Where: copying the file to this node\n"
            "File: upper.stl\n"
            f"Job: {upper.job_key} (see: preform-pipeline jobs show {upper.job_key})\n" + todo)
        assert _note(inbox, "lower.stl") == (
            f"What failed: case C-1: model lower.stl: step copy: another file of the case: "
            f"{reason}\n"
            "Where: copying the case's files to this node\n"
            "File: lower.stl\n"
            f"Job: {lower.job_key} (see: preform-pipeline jobs show {lower.job_key})\n" + todo)
        assert script.runs == [] and fleet_jobs(script.fleet_dir) == []


class TestTheNoteOfABatchWhoseRecipeIsGone:
    """A batch whose recipe was removed fails each file with a note whose every line says
    what happened and what to do."""

    def test_the_note_reads_in_full(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        job_id = processing_job(store, inbox, "p.stl", recipe="gone")
        job = store.get_job(job_id)
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
        daemon.worker.run_batch(
            Batch("gone", (BatchItem(f"job:{job_id}", "gone", (job_id,), 0.0),), "flush"))
        assert _note(inbox, "p.stl") == (
            "What failed: recipe 'gone' is no longer configured\n"
            "Where: preparing the batch\n"
            "File: p.stl\n"
            f"Job: {job.job_key} (see: preform-pipeline jobs show {job.job_key})\n"
            "What to do: add the recipe back to an inbox and retry the job\n")
