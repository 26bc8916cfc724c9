"""The hot folder's worker under mutation (session 19, seed 35's sample): the paths its other
tests leave out, each read where a user reads it (notes, reports, the store's history, the
copies' folder, structured events)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from daemon_support import (
    RunnerLosingSent,
    Script,
    drop,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.errors import PipelineError
from preform_pipeline.executor import RunResult
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, wait_for, write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.store import JobState, SqliteJobStore

WAIT_S = 10.0


def _script(tmp_path: Path, **kwargs: Any) -> Script:
    return Script(fleet_dir=tmp_path / "fleet", **kwargs)


class TestASidecarPrinterOfAnotherMachineType:
    """A sidecar naming a known printer of another machine type fails its case, saying so."""

    KNOWN = KnownPrinters((KnownPrinter("Form3-B", ("FORM-3-0",)),), "the test's fleet")

    def test_the_note_names_both_machine_types_and_the_fleet_list(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = _script(tmp_path)
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        (tmp_path / "inbox" / "p.yaml").write_text("printer: Form3-B\n", encoding="utf-8")
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                    known_printers=self.KNOWN))
        note = (tmp_path / "inbox" / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        reason = "printer 'Form3-B' is a FORM-3-0, not a FORM-4-0 (the test's fleet)"
        assert reason in note
        assert fleet_jobs(script.fleet_dir) == []
        (job,) = store.list_jobs()
        assert job.state is JobState.FAILED
        assert [(e["target"], e["reason"]) for e in logs
                if e["event"] == "case_target_unknown"] == [("Form3-B", reason)]


class TestADryRun:
    """A dry run's build ends done, and the history says it was not printed."""

    def test_the_jobs_history_ends_in_prepared_dry_run(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = _script(tmp_path)
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                dry_run=True))
        (build,) = store.list_builds()
        assert build.state is JobState.DONE
        assert store.build_history(build.id)[-1].reason == "prepared (dry run: not printed)"
        assert fleet_jobs(script.fleet_dir) == []
        assert build.form_path is None  # none saved, none recorded

    def test_the_saved_form_is_recorded_for_the_dashboard(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = _script(tmp_path, saves_form=True)
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                dry_run=True))
        (build,) = store.list_builds()
        assert build.state is JobState.DONE
        assert build.form_path is not None and build.form_path.name == f"{build.job_key}.form"


class TestTheSettingsOutputRoot:
    """Without a hot folder ``output_root``, the settings' one holds the run's reports."""

    def test_the_run_report_is_written_under_it_not_under_the_recipes(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, _script(tmp_path), write_recipe(tmp_path),
                                hot={"output_root": None},
                                settings_output_root=tmp_path / "settings-out"))
        assert [n for n in names(tmp_path / "settings-out") if n.startswith("reports/")]
        # The recipe's own `outputs.root` (tmp_path/out) is the one the settings override.
        assert not (tmp_path / "out").exists()


class TestLocalCopiesAfterTheBatch:
    """The node's local copies of a batch's files are removed once the batch is settled."""

    def test_the_copies_folder_holds_no_file(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, _script(tmp_path), write_recipe(tmp_path),
                                hot={"local_copies": True,
                                     "local_copy_dir": tmp_path / "copies"}))
        assert "p.stl" in names(tmp_path / "inbox" / "done")
        assert names(tmp_path / "copies") == []


class TestAPoolThatCannotStart:
    """A pool that cannot start is logged with its error and the wait before the next try."""

    def test_the_failure_is_logged_until_the_daemon_stops(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        def pool() -> Any:
            raise PipelineError("no PreFormServer found", hint="install PreFormServer")

        daemon = make_daemon(tmp_path, store, _script(tmp_path), write_recipe(tmp_path),
                         pool=pool)
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        thread = threading.Thread(target=daemon.run)
        with capture_logs() as logs:
            thread.start()
            try:
                wait_for(lambda: any(e.get("event") == "pool_start_failed" for e in logs),
                         WAIT_S, what="the pool's failure logged")
            finally:
                daemon.stop()
                thread.join(WAIT_S)
        assert not thread.is_alive()
        failed = [e for e in logs if e.get("event") == "pool_start_failed"]
        assert "no PreFormServer found" in failed[0]["error"]
        assert failed[0]["retry_in_s"] == 10.0


class TestAJobFailedWhileItsCaseIsDropped:
    """A dropped case whose job already left preparation is logged, not failed twice."""

    def test_the_event_names_the_job_and_its_state_is_left_alone(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        for n, case in enumerate(("C-1", "C-2")):
            drop(tmp_path, f"{case}/upper.stl", tetra_stl_bytes(n))

        def dropped(build: BuildPlan) -> list[tuple[Path, str]]:
            out: list[tuple[Path, str]] = []
            for model in build.models:
                if model.case_id == "C-2":
                    # Failed meanwhile by someone else (an operator, another node).
                    job = next(j for j in store.list_jobs() if j.case_id == "C-2")
                    store.transition(job.id, JobState.FAILED, "failed meanwhile")
                    out.append((model.path, "case C-2: step label: LABEL_FAILED"))
            return out

        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, _script(tmp_path, drop=dropped),
                                    write_recipe(tmp_path)))
        jobs = {j.case_id: j for j in store.list_jobs()}
        assert (jobs["C-2"].state, jobs["C-2"].reason) == (JobState.FAILED, "failed meanwhile")
        (event,) = [e for e in logs if e["event"] == "dropped_job_not_failed"]
        assert event["job_key"] == jobs["C-2"].job_key
        assert "failed" in event["error"] and event["error"] != "None"


class TestAPrintedFilesReport:
    """A settled file's report names its run's report, which is where it says."""

    def test_the_report_names_the_run_report_written_under_the_output_root(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, _script(tmp_path), write_recipe(tmp_path)))
        report = json.loads((tmp_path / "inbox" / "done" / "p.stl.report.json")
                            .read_text(encoding="utf-8"))
        run_report = Path(report["run_report"])
        assert run_report.is_file() and run_report.parent == (tmp_path / "out" / "reports")


class _RunnerSentWithoutId(RunnerLosingSent):
    """Prints, but its ``sent`` write is lost and the server named no print job id: the
    build succeeded, and the store still says print_sending when the run ends."""

    def run(self) -> RunResult:
        result = super().run()
        return replace(result, outcomes=tuple(replace(o, job_id=None)
                                              for o in result.outcomes))


class TestASucceededPrintWithoutAJobId:
    """A print that succeeded without a job id, caught still sending, is recorded sent."""

    def test_the_build_ends_print_sent_saying_print_sent(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, _script(tmp_path), write_recipe(tmp_path),
                                runner=_RunnerSentWithoutId))
        (build,) = store.list_builds()
        assert build.state is JobState.PRINT_SENT
        assert store.build_history(build.id)[-1].reason == "print sent"
        assert "p.stl" in names(tmp_path / "inbox" / "done")
