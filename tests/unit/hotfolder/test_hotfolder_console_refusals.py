"""The hot folder's console says every case that goes nowhere, each on one line.

A model the planner rejects was named on stdout (``rejected 1 model:`` and a line per file,
session 34); a batch the planner could not plan at all, a case refused at the copy to the
node, a case the feasibility check refused, a sidecar naming an unknown printer and a batch
whose recipe is gone said nothing there (only failed/ and, but for the unplannable batch, a
log warning). Now each job that goes nowhere gets the same line: where its file is now
(failed/, the note beside it), what failed, and what helps. Session 41 added the files sent to
failed/ as they are taken (a file that is no model, a duplicate skipped, a drop refused whole
for its sidecar), which a newcomer dropping ``notes.txt`` saw go without a word. Each test
runs a real daemon pass or ``run_batch`` over real folders and a real SQLite store (the
scripted runner says nothing of its own run) and reads the console and the structured events.
"""

from __future__ import annotations

import errno
import io
import os
import re
from collections.abc import Callable
from pathlib import Path

from daemon_support import Script, drop, make_daemon, processing_job, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.executor import PlainReporter
from preform_pipeline.geometry.bounded import DEFAULT_MAX_MODEL_FILE_BYTES, TOO_LARGE_HINT
from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.store import JobState, SqliteJobStore

#: ``make_daemon``'s recipe name.
RECIPE = "hot"


def _console(daemon: HotFolderDaemon) -> io.StringIO:
    """A plain console for ``daemon``'s takes and batches (what ``watch`` prints when not on
    a terminal: one reporter for both)."""
    console = io.StringIO()
    daemon.reporter = daemon.worker.reporter = PlainReporter(console)
    return console


def _batch(*items: tuple[str, tuple[int, ...]], recipe: str = RECIPE) -> Batch:
    return Batch(recipe, tuple(BatchItem(key, recipe, ids, 0.0) for key, ids in items), "flush")


class TestABatchThatCannotBePlanned:
    """Each file of a batch the planner refuses is named, with the planner's reason."""

    def test_each_file_is_said_with_the_reason_and_what_helps(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "a.stl", tetra_stl_bytes(1))
        drop(tmp_path, "b.stl", tetra_stl_bytes(2))
        recipe = write_recipe(tmp_path, per_build=1)
        recipe.write_text(recipe.read_text(encoding="utf-8").replace(
            "  keep_cases_together: true\n", "  keep_cases_together: true\n  on_overflow: fail\n"),
            encoding="utf-8")
        script = Script(fleet_dir=tmp_path / "fleet")
        daemon = make_daemon(tmp_path, store, script, recipe)
        console = _console(daemon)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        failed = tmp_path / "inbox" / "failed"
        why = (f"planning failed: {recipe}: 2 models need 2 builds on Form 4, but the recipe "
               "says batching.on_overflow: fail (send fewer models per batch, or set "
               "batching.on_overflow: split); fix the recipe or send fewer models at once, "
               "then retry")
        assert console.getvalue() == (
            f"rejected 2 models:\n  {failed / 'a.stl'}: {why}\n  {failed / 'b.stl'}: {why}\n")
        (event,) = [e for e in logs if e["event"] == "batch_unplannable"]
        assert (event["log_level"], event["recipe"], event["jobs"]) == ("warning", RECIPE, 2)
        assert event["error"] in why
        assert script.runs == [] and not store.list_builds()


class TestACaseRefusedAtTheCopy:
    """A case whose file cannot be copied to the node: both its files named, before the
    batch's other file is printed."""

    def test_the_refused_file_and_its_sibling_are_said(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        inbox = tmp_path / "inbox"
        # Claimed with another content than the file has: its copy is refused.
        changed = processing_job(store, inbox, "upper.stl", 0, case_id="C-1",
                                 content_hash="sha256:" + "0" * 64)
        sibling = processing_job(store, inbox, "lower.stl", 1, case_id="C-1")
        alone = processing_job(store, inbox, "other.stl", 2)
        script = Script(fleet_dir=tmp_path / "fleet")
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                             hot={"local_copies": True, "local_copy_dir": tmp_path / "copies"})
        console = _console(daemon)
        with capture_logs() as logs:
            daemon.worker.run_batch(_batch(("C-1", (changed, sibling)), ("job:3", (alone,))))
        heading, upper, lower = console.getvalue().splitlines()
        assert heading == "rejected 2 models:"
        todo = "the file was changed or cut short on the shared drive; drop the whole file again"
        assert upper.startswith(f"  {inbox / 'failed' / 'upper.stl'}: its content changed after "
                                "it was taken")
        assert upper.endswith(f"; {todo}")
        assert lower.startswith(f"  {inbox / 'failed' / 'lower.stl'}: case C-1: model lower.stl: "
                                "step copy: another file of the case: ")
        assert lower.endswith(f"; {todo}")
        assert "processing" not in upper + lower  # named where they are, not where they were
        assert [e["job_key"] for e in logs if e["event"] == "local_copy_failed"] == [
            store.get_job(changed).job_key]
        assert len(fleet_jobs(script.fleet_dir)) == 1  # other.stl's build went on


class TestACaseTheChecksRefuse:
    """A case refused before batching (its print target unfillable) is said with its hint."""

    def test_its_line_says_to_drop_the_case_again(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        # A file's stem is text, and :03d formats numbers only: no model can fill it.
        recipe = write_recipe(tmp_path, printer="SimulatedForm4-{stem:03d}", per_build=1)
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe)
        console = _console(daemon)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        assert console.getvalue() == (
            "rejected 1 model:\n"
            f"  {tmp_path / 'inbox' / 'failed' / 'p.stl'}: model p.stl: step print: template "
            "'SimulatedForm4-{stem:03d}': cannot format {stem:03d}: Unknown format code 'd' "
            "for object of type 'str'; drop the case again (its other cases were not "
            "affected)\n")
        assert [e["step"] for e in logs if e["event"] == "case_infeasible"] == ["print"]


class TestASidecarPrinterNobodyKnows:
    """A case whose sidecar names a printer of another machine type is said, with why."""

    def test_its_line_names_the_printer_and_what_to_correct(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        (tmp_path / "inbox" / "p.yaml").write_text("printer: Form3-B\n", encoding="utf-8")
        known = KnownPrinters((KnownPrinter("Form3-B", ("FORM-3-0",)),), "the test's fleet")
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path), known_printers=known)
        console = _console(daemon)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        reason = "printer 'Form3-B' is a FORM-3-0, not a FORM-4-0 (the test's fleet)"
        assert console.getvalue() == (
            "rejected 1 model:\n"
            f"  {tmp_path / 'inbox' / 'failed' / 'p.stl'}: model p.stl: step print: sidecar "
            f"printer: {reason}; correct the sidecar's `printer:` and drop the case again "
            "(its other cases were not affected)\n")
        assert [e["reason"] for e in logs if e["event"] == "case_target_unknown"] == [reason]


class TestABatchWhoseRecipeIsGone:
    """A batch whose recipe was removed from the settings is said, with what to do."""

    def test_its_file_is_said_with_the_recipe_to_add_back(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        inbox = tmp_path / "inbox"
        job_id = processing_job(store, inbox, "p.stl", recipe="gone")
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path))
        console = _console(daemon)
        with capture_logs() as logs:
            daemon.worker.run_batch(_batch((f"job:{job_id}", (job_id,)), recipe="gone"))
        assert console.getvalue() == (
            "rejected 1 model:\n"
            f"  {inbox / 'failed' / 'p.stl'}: recipe 'gone' is no longer configured; add the "
            "recipe back to an inbox and retry the job\n")
        assert [(e["recipe"], e["jobs"]) for e in logs
                if e["event"] == "batch_recipe_gone"] == [("gone", 1)]
        assert store.get_job(job_id).state is JobState.FAILED


class TestAModelTooLargeForThePlatform:
    """A rejected model read whole is said with its size, as ``run`` says it."""

    def test_its_line_gives_its_size(self, tmp_path: Path, store: SqliteJobStore) -> None:
        drop(tmp_path, "big.stl", tetra_stl_bytes(1, size_mm=400.0))
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path))
        console = _console(daemon)
        run_daemon_once(daemon)
        heading, line = console.getvalue().splitlines()
        assert heading == "rejected 1 model:"
        assert re.fullmatch(
            rf"  {re.escape(str(tmp_path / 'inbox' / 'failed' / 'big.stl'))} \(400\.0 x \d+\.\d x "
            r"\d+\.\d mm\): .+; check the file \(open it in PreForm\); fix or re-export it and "
            r"drop it again", line), line


class TestAFileRefusedAsItIsTaken:
    """A file sent to failed/ at its take is said as the planner's rejections are, in the
    words of its note."""

    NOT_A_MODEL = "is not a model file (preform-pipeline prepares .stl, .obj and .3mf)"
    #: Session 41: a text or a photo is no model to convert, and it is not called a model.
    LEAVE_IT_OUT = ("it is not a model to print: keep it out of folders of models (only model "
                    "files and their sidecars belong there)")

    @staticmethod
    def _watch_once(tmp_path: Path, store: SqliteJobStore,
                    move: Callable[[Path, Path], None] | None = None) -> list[str]:
        for path in (tmp_path / "inbox").rglob("*"):
            os.utime(path, (1e9, 1e9))  # long since written: taken at once
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path, printer=None), move=move)
        console = _console(daemon)
        run_daemon_once(daemon)
        return console.getvalue().splitlines()

    def test_a_loose_file_that_is_no_model(self, tmp_path: Path, store: SqliteJobStore) -> None:
        drop(tmp_path, "notes.txt", b"invoice 1042")
        failed = tmp_path / "inbox" / "failed"
        assert self._watch_once(tmp_path, store) == [
            "rejected 1 file:",
            f"  {failed / 'notes.txt'}: .txt {self.NOT_A_MODEL}; {self.LEAVE_IT_OUT}",
        ]

    def test_a_file_that_is_no_model_in_a_case_that_goes_on(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "C-5/upper.stl", tetra_stl_bytes(1))
        drop(tmp_path, "C-5/photo.jpg", b"\xff\xd8\xff\xe0 not a model")
        said = self._watch_once(tmp_path, store)
        photo = tmp_path / "inbox" / "failed" / "C-5" / "photo.jpg"
        assert said == ["rejected 1 file:", f"  {photo}: .jpg {self.NOT_A_MODEL}; "
                        f"{self.LEAVE_IT_OUT}"]
        assert (tmp_path / "inbox" / "done" / "C-5" / "upper.stl").is_file()

    def test_a_copy_skipped_as_a_duplicate(self, tmp_path: Path, store: SqliteJobStore) -> None:
        drop(tmp_path, "a.stl", tetra_stl_bytes(2))
        assert self._watch_once(tmp_path, store) == []
        drop(tmp_path, "b.stl", tetra_stl_bytes(2))
        heading, line = self._watch_once(tmp_path, store)
        assert heading == "rejected 1 model:"
        assert line.startswith(f"  {tmp_path / 'inbox' / 'failed' / 'b.stl'}: the same content "
                               "was already taken as job PP-")
        assert line.endswith(", or set hotfolders.duplicates: print")

    def test_a_loose_file_over_the_size_limit(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        """A loose file that cannot be prepared goes through the case rule as a case of its
        own (plan/held.py); until session 41 only its note and the ``case_held`` warning
        said it."""
        big = tmp_path / "inbox" / "big.stl"
        big.parent.mkdir(parents=True)
        triangles = 11_000_000  # a complete binary STL by its size, over the readers' limit
        assert 84 + 50 * triangles > DEFAULT_MAX_MODEL_FILE_BYTES
        with big.open("wb") as handle:  # sparse: no disk, and refused by its size unread
            handle.write(bytes(80) + triangles.to_bytes(4, "little"))
            handle.truncate(84 + 50 * triangles)
        assert self._watch_once(tmp_path, store) == [
            "rejected 1 model:",
            f"  {tmp_path / 'inbox' / 'failed' / 'big.stl'}: big.stl: file is 524.5 MiB, over "
            f"the 512.0 MiB limit for model files; {TOO_LARGE_HINT}, then drop it again",
        ]

    def test_a_drop_refused_whole_for_its_sidecar(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "part.stl", tetra_stl_bytes(3))
        drop(tmp_path, "part.json", b"{not json")
        heading, line = self._watch_once(tmp_path, store)
        assert heading == "rejected 1 model:"
        assert line.startswith(f"  {tmp_path / 'inbox' / 'failed' / 'part.stl'}: bad sidecar: ")
        assert line.endswith("then drop the file and its sidecar into the inbox again")

    def test_a_copy_skipped_in_a_take_cut_short_by_a_later_move(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        """The take stops at a file whose move into processing/ fails and goes on at a later
        look: the copy skipped before that (in failed/ already) is said once, not lost with
        the cut (review of session 41)."""
        drop(tmp_path, "a.stl", tetra_stl_bytes(4))
        assert self._watch_once(tmp_path, store) == []
        drop(tmp_path, "C-6/a-copy.stl", tetra_stl_bytes(4))
        drop(tmp_path, "C-6/b.stl", tetra_stl_bytes(5))
        refused: list[Path] = []

        def move(source: Path, target: Path) -> None:
            if source.name == "b.stl" and "processing" in target.parts and not refused:
                refused.append(target)
                raise PermissionError(errno.EACCES, "Permission denied", str(target.parent))
            move_file(source, target)

        heading, line = self._watch_once(tmp_path, store, move)
        assert refused  # the take was cut short
        assert heading == "rejected 1 model:"
        assert line.startswith(f"  {tmp_path / 'inbox' / 'failed' / 'C-6' / 'a-copy.stl'}: the "
                               "same content was already taken as job PP-")
        # The later take (here the next start) goes on with b.stl and says the copy no more.
        assert self._watch_once(tmp_path, store) == []
        assert (tmp_path / "inbox" / "done" / "C-6" / "b.stl").is_file()
