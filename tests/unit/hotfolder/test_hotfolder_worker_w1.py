"""The hot folder's worker, its batch run (``_run_live``) run whole under mutation (session 19,
group w1): a plan that cannot be made, the events of a report or a build that cannot be
written, and a stop that cancels only the batch still running. Each is read where a user
reads it: the outcome folders, the notes, the store's records and the structured events."""

from __future__ import annotations

import io
import json
import shutil
import threading
from pathlib import Path
from typing import ClassVar

from daemon_support import (
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.executor import BuildStatus, PlainReporter, RunResult
from preform_pipeline.executor.runner import build_values
from preform_pipeline.executor.runroot import run_values
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, wait_for, write_recipe
from preform_pipeline.store import JobState, SqliteJobStore

WAIT_S = 10.0


def _overflow_failing_recipe(tmp_path: Path) -> Path:
    """A printing recipe of one model per build that refuses to split a batch over builds."""
    path = write_recipe(tmp_path, per_build=1)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  keep_cases_together: true\n",
                                 "  keep_cases_together: true\n  on_overflow: fail\n"),
                    encoding="utf-8")
    assert "on_overflow: fail" in path.read_text(encoding="utf-8")
    return path


def _recipe_without_units(tmp_path: Path) -> Path:
    """A printing recipe that states no units: each file's units are decided as it is read."""
    path = write_recipe(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  units: MILLIMETERS\n", ""), encoding="utf-8")
    assert "units:" not in path.read_text(encoding="utf-8")
    return path


class TestUnitsDecidedForTheRecipesOwnMachine:
    """A file whose units the recipe leaves open is judged on the recipe's machine."""

    def test_a_part_too_big_in_inches_for_a_form_4_prints_in_millimetres(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        # 11 x 5 x 5: read as inches it fits a Form 4L but not the recipe's Form 4, so the
        # reading in millimetres is the only one that can print here.
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "p.stl", tetra_stl_bytes(size_mm=5.0, copies=2))
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, _recipe_without_units(tmp_path)))
        assert "p.stl" in names(tmp_path / "inbox" / "done")
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert [e["units"] for e in logs if e["event"] == "units_guessed"] == ["MILLIMETERS"]


class TestASidecarsUnits:
    """A sidecar's ``units`` decide how its file is read when the recipe names none."""

    def test_a_small_part_stated_in_inches_prints(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        # 2 mm: both readings could print on a Form 4; only the sidecar says which.
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        (tmp_path / "inbox" / "p.yaml").write_text("units: INCHES\n", encoding="utf-8")
        run_daemon_once(make_daemon(tmp_path, store, script, _recipe_without_units(tmp_path)))
        assert "p.stl" in names(tmp_path / "inbox" / "done")
        assert len(fleet_jobs(script.fleet_dir)) == 1
        (job,) = store.list_jobs()
        assert job.state is JobState.PRINT_SENT


class TestASidecarsUnitsNoReaderKnows:
    """A case's sidecar naming units no reader knows is a bad sidecar: the case goes whole to
    ``failed/`` with it, and what helps is the sidecar's fix (session 47's trial: a dental
    case exported in centimetres, its sidecar saying ``units: cm``, was told to open the
    model in PreForm and re-export it; its review: the reader then refused each STL file of
    the case alone, naming no sidecar)."""

    def test_the_whole_case_fails_with_the_sidecar_named_at_its_line(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "C-2009/upper.stl", tetra_stl_bytes())
        drop(tmp_path, "C-2009/lower.stl", tetra_stl_bytes(size_mm=3.0))
        drop(tmp_path, "C-2009/C-2009.yaml", b"case_id: C-2009\nunits: cm\n")
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, _recipe_without_units(tmp_path)))
        failed = tmp_path / "inbox" / "failed"
        assert names(failed) == ["C-2009/C-2009.yaml", "C-2009/lower.stl",
                                 "C-2009/lower.stl.error.txt", "C-2009/upper.stl",
                                 "C-2009/upper.stl.error.txt"]
        sidecar = failed / "C-2009" / "C-2009.yaml"
        why = (f"bad sidecar: {sidecar}:2:8: $.units: expected MILLIMETERS or INCHES, got 'cm'")
        todo = ("What to do: fix the sidecar (write units: MILLIMETERS or units: INCHES (mm and "
                "in also work); a model in centimetres: export it again in millimetres, or "
                "give it a recipe with import: {scale: 10}), then drop the whole case folder "
                "into the inbox again")
        for name in ("upper.stl", "lower.stl"):
            lines = (failed / "C-2009" / f"{name}.error.txt").read_text(
                encoding="utf-8").splitlines()
            assert f"What failed: {why}" in lines
            assert todo in lines
        assert [(e["reason"], e["files"]) for e in logs if e["event"] == "drop_rejected"] == [
            (why, 2)]
        assert not [e for e in logs if e["event"] == "model_unreadable"]
        assert script.runs == [] and fleet_jobs(script.fleet_dir) == []


class TestABatchThatCannotBePlanned:
    """A batch the recipe cannot plan fails every file of it, each with a note saying why."""

    def test_each_file_goes_to_failed_with_the_planners_reason_and_what_to_do(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "a.stl", tetra_stl_bytes(1))
        drop(tmp_path, "b.stl", tetra_stl_bytes(2))
        recipe = _overflow_failing_recipe(tmp_path)
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert names(tmp_path / "inbox" / "failed") == [
            "a.stl", "a.stl.error.txt", "b.stl", "b.stl.error.txt"]
        for name in ("a.stl", "b.stl"):
            note = (tmp_path / "inbox" / "failed" / f"{name}.error.txt").read_text(
                encoding="utf-8")
            lines = note.splitlines()
            assert [ln for ln in lines if ln.startswith("What failed: ")] == [
                f"What failed: planning failed: {recipe}: 2 models need 2 builds on Form 4, "
                "but the recipe says batching.on_overflow: fail (send fewer models per batch, "
                "or set batching.on_overflow: split)"]
            assert "What to do: fix the recipe or send fewer models at once, then retry" in lines
        assert {(j.state, j.reason.startswith("planning failed: ") if j.reason else None)
                for j in store.list_jobs()} == {(JobState.FAILED, True)}
        assert not store.list_builds()
        assert script.runs == []
        assert fleet_jobs(script.fleet_dir) == []


class TestAFileNoReaderCanRead:
    """A file the planner rejects is failed; its note's lines say where and what to do."""

    def test_its_note_says_exactly_where_it_failed_and_its_good_neighbour_prints(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "good.stl", tetra_stl_bytes(1))
        drop(tmp_path, "bad.stl", b"solid x\nfacet normal a b c\nendsolid x\n")
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        lines = (tmp_path / "inbox" / "failed" / "bad.stl.error.txt").read_text(
            encoding="utf-8").splitlines()
        assert "Where: reading and planning the model" in lines
        assert ("What to do: check the file (open it in PreForm); fix or re-export it and "
                "drop it again") in lines
        assert "good.stl" in names(tmp_path / "inbox" / "done")
        assert len(fleet_jobs(script.fleet_dir)) == 1


class TestARunReportThatCannotBeWritten:
    """A run report that cannot be written is logged with its error; the file's report names
    none."""

    def test_the_event_names_the_blocked_folder(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        # The output folder is a file: the run's reports/ folder cannot be made under it.
        blocked = tmp_path / "out-file"
        blocked.write_text("not a folder\n", encoding="utf-8")
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), hot={"output_root": blocked}))
        (event,) = [e for e in logs if e["event"] == "run_report_failed"]
        assert "out-file" in event["error"]
        # The file itself is printed and settled all the same; its report names no run report.
        assert "p.stl" in names(tmp_path / "inbox" / "done")
        report = json.loads((tmp_path / "inbox" / "done" / "p.stl.report.json")
                            .read_text(encoding="utf-8"))
        assert "run_report" not in report


class _RunnerBlockingDone(ScriptedRunner):
    """The scripted runner; when its run ends, the inbox's done/ folder is a file (a user
    replaced it meanwhile), so no file can be settled there."""

    def run(self) -> RunResult:
        result = super().run()
        done = self.script.fleet_dir.parent / "inbox" / "done"
        if done.is_dir():
            shutil.rmtree(done)
        done.write_text("not a folder\n", encoding="utf-8")
        return result


class TestABuildThatCannotBeSettled:
    """A build whose files cannot be settled is logged by name with the error that stopped
    it; the store keeps its state."""

    def test_the_event_names_the_done_folder_in_its_error(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), runner=_RunnerBlockingDone))
        (event,) = [e for e in logs if e.get("event") == "build_finish_failed"]
        assert "done" in event["error"]
        # The print stays recorded: a restart settles the file, it is not printed again.
        (build,) = store.list_builds()
        assert build.state is JobState.PRINT_SENT
        assert event["build"] == build.job_key


class TestAStopWhileASecondBatchRuns:
    """A stop cancels the batch still running, not the ones that have already finished."""

    def test_the_stop_counts_one_cancelled_batch_and_the_first_file_stays_printed(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet", block=threading.Event())
        script.block.set()  # the first batch runs straight through
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path))
        drop(tmp_path, "a.stl", tetra_stl_bytes(1))
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(daemon.run()))
        with capture_logs() as logs:
            thread.start()
            try:
                wait_for(lambda: "a.stl" in names(tmp_path / "inbox" / "done"), WAIT_S,
                         what="the first file settled")
                script.block.clear()  # the second batch waits until it is cancelled
                drop(tmp_path, "b.stl", tetra_stl_bytes(2))
                wait_for(lambda: len(script.runs) == 2, WAIT_S, what="the second batch")
                daemon.stop(now=True)
                thread.join(WAIT_S)
            finally:
                script.block.set()
                daemon.stop(now=True)
                thread.join(WAIT_S)
        assert not thread.is_alive() and result == [0]
        (event,) = [e for e in logs if e["event"] == "hotfolder_stop_deadline"]
        assert event["batches"] == 1
        assert len(fleet_jobs(script.fleet_dir)) == 1
        jobs = {j.source_path.name: j for j in store.list_jobs()}
        assert jobs["a.stl"].state is JobState.PRINT_SENT
        # The cancelled one waits for the next start, unprinted, its build taken apart.
        assert (jobs["b.stl"].state, jobs["b.stl"].build_id) == (JobState.PROCESSING, None)


class _RunnerWritingReportsAndImports(ScriptedRunner):
    """The scripted runner, doing two more things the executor does: it imports each model
    from ``options.import_from`` (recording the path a server would read) and writes each
    finished build's own report through ``options.build_report``."""

    #: Reset by each test that uses it (the daemon makes one runner per batch).
    imported: ClassVar[list[Path]] = []

    def run(self) -> RunResult:
        if self.options.import_from is not None:
            for build in self.plan.builds:
                type(self).imported.extend(self.options.import_from(m.path)
                                           for m in build.models)
        result = super().run()
        values = run_values(self.plan.recipe, self.options.started_at)
        builds = {b.name: b for b in self.plan.builds}
        for outcome in result.outcomes:
            if self.options.build_report is not None and outcome.status is (
                BuildStatus.SUCCEEDED
            ):
                self.options.build_report(
                    outcome, self.plan.recipe.outputs.report,
                    build_values(values, builds[outcome.name]), self.options.output_root,
                    run_id=self.options.run_id)
        return result


class TestWhatTheBatchsRunIsGiven:
    """The batch's run is told where each build's report goes and which copies to import."""

    def test_each_build_has_its_report_and_the_servers_read_the_local_copies(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _RunnerWritingReportsAndImports.imported = []
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                write_recipe(tmp_path),
                                hot={"local_copies": True,
                                     "local_copy_dir": tmp_path / "copies"},
                                runner=_RunnerWritingReportsAndImports))
        (build,) = store.list_builds()
        # Its history starts with why it was batched (a once-run flushes what it found).
        assert (build.recipe, store.build_history(build.id)[0].reason) == (
            "hot", "batched (flush)")
        reports = [n for n in names(tmp_path / "out")
                   if n.endswith(f"/{build.job_key}.json") and not n.startswith("reports/")]
        assert len(reports) == 1
        (imported,) = _RunnerWritingReportsAndImports.imported
        assert imported.name == "p.stl" and imported.is_relative_to(tmp_path / "copies")
        assert "p.stl" in names(tmp_path / "inbox" / "done")


class TestABatchOfRejectedModelsOnTheConsole:
    """``watch``'s console names a batch's rejected models, where they are now and why."""

    BROKEN = b"solid x\nfacet normal a b c\nendsolid x\n"

    def _console(self, tmp_path: Path, store: SqliteJobStore, files: dict[str, bytes]) -> str:
        """What a plain console says of one batch of ``files`` (the scripted runner says
        nothing of its own run)."""
        for name, data in files.items():
            drop(tmp_path, name, data)
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path))
        console = io.StringIO()
        daemon.worker.reporter = PlainReporter(console)
        run_daemon_once(daemon)
        return console.getvalue()

    def test_a_batch_whose_every_model_is_rejected_says_so_once(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        # Two contents, or the second would be a duplicate of the first.
        said = self._console(tmp_path, store, {
            "bad.stl": self.BROKEN, "worse.stl": self.BROKEN.replace(b"x", b"y")})
        failed = tmp_path / "inbox" / "failed"
        lines = said.splitlines()
        assert lines[0] == "rejected 2 models:"
        assert sorted(line.split(": ", 1)[0] for line in lines[1:]) == [
            f"  {failed}/bad.stl", f"  {failed}/worse.stl"]
        assert all(": line 2: " in line for line in lines[1:]), lines  # the reader's reason
        assert len(lines) == 3
        assert not store.list_builds()  # nothing was prepared: no run to say

    def test_a_rejected_model_beside_a_good_one_is_named_before_the_run(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        said = self._console(tmp_path, store, {"good.stl": tetra_stl_bytes(1),
                                               "bad.stl": self.BROKEN})
        assert said == (
            "rejected 1 model:\n"
            f"  {tmp_path / 'inbox' / 'failed' / 'bad.stl'}: line 2: malformed facet (expected "
            "'facet normal x y z', 'outer loop', three 'vertex x y z' lines, 'endloop', "
            "'endfacet') (the ASCII STL is damaged; export it again, preferably as binary STL); "
            "check the file (open it in PreForm); fix or re-export it and drop it again\n")
        assert "good.stl" in names(tmp_path / "inbox" / "done")
