"""The hot folder's worker, the second half of its batch run (``_run_live`` 100-251) run whole
under mutation (session 20): a farm node told to give a build up, where a batch's outputs go
when the hot folder or the settings name no folder, and what the executor is handed. Each is
read where a user reads it: the outcome folders, the reports, the store's records and the
structured events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest
from daemon_support import (
    RunnerSavingForms,
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    names,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.executor import BuildStatus, RunResult
from preform_pipeline.hotfolder.nodes import BuildStops
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, wait_for, write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.settings import ServerSettings
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.simulator.fleet import FLEET_FORMAT
from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.executor.executor_support import FakePool, SimFarm
from tests.unit.hotfolder.test_hotfolder_batch_store_away import StoreAwayWhileBatching

WAIT_S = 10.0


class TestAFarmNodeToldToGiveABuildUp:
    """A build whose node lost its lease stops unprinted and is left to its new holder."""

    def test_nothing_is_printed_and_the_store_and_files_are_left_as_they_were(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        stops = BuildStops()
        script = Script(fleet_dir=tmp_path / "fleet", block=threading.Event())
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path), stops=stops)
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(daemon.run(once=True)))
        with capture_logs() as logs:
            thread.start()
            try:
                wait_for(lambda: len(script.runs) == 1, WAIT_S, what="the batch's run")
                # What the node's lease renewal does when another node took the build over.
                (build,) = store.list_builds()
                stops.stop(build.id, "its lease passed to node pc-b")
            finally:
                script.block.set()
                thread.join(WAIT_S)
        assert not thread.is_alive() and result == [0]
        assert fleet_jobs(script.fleet_dir) == []
        # Nothing written for it here: the node holding it now prepares and settles it.
        build = store.get_build(build.id)
        assert build.state is JobState.PREPARING
        assert store.build_history(build.id)[-1].to_state is JobState.PREPARING
        assert names(tmp_path / "inbox" / "processing") == [f"{store.list_jobs()[0].job_key}/p.stl"]
        (event,) = [e for e in logs if e["event"] == "build_left_to_new_holder"]
        assert (event["build"], event["build_id"], event["status"]) == (
            build.job_key, build.id, "cancelled")
        # The signal is forgotten once its batch is over.
        assert stops.reason(build.id) is None

    def test_a_build_its_node_still_holds_prints(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        stops = BuildStops()
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        assert make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                           stops=stops).run(once=True) == 0
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert "p.stl" in names(tmp_path / "inbox" / "done")


def _printer(serial: str, *, ready: bool) -> dict[str, object]:
    return {"serial": serial, "machine_type_id": "FORM-4-0", "product_name": "Form 4",
            "ip_address": "192.0.2.40", "material_code": "FLGPGR05",
            "ready_to_print_now": ready}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[SimFarm]:
    """One in-process simulator whose fleet has one free Form 4 (Bench-A) and two that are
    not ready (Bench-Y, Bench-Z), all with the recipe's material."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "printers.json").write_text(json.dumps({
        "format": FLEET_FORMAT, "version": 1, "groups": [],
        "printers": [_printer("Bench-A", ready=True), _printer("Bench-Y", ready=False),
                     _printer("Bench-Z", ready=False)],
    }), encoding="utf-8")
    simulators = SimFarm(tmp_path)
    simulators.add()
    yield simulators
    simulators.close()


class TestAPrintLeftToTheDispatchLoop:
    """A build of ``printer: auto`` queued behind a waiting build goes out through the
    daemon's dispatch loop as soon as it starts waiting."""

    def test_it_waits_in_the_store_then_the_loop_sends_its_saved_form_to_the_free_printer(
        self, tmp_path: Path, store: SqliteJobStore, farm: SimFarm
    ) -> None:
        pool = FakePool([farm.servers[0].url])
        script = Script(fleet_dir=farm.fleet_dir)
        # The loop's own pass comes only every 5 minutes: a send within the test's wait is
        # the one the worker's wake-up started.
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer="auto"),
                             runner=RunnerSavingForms, pool=lambda: pool,
                             dispatch=DispatchSettings(poll_interval_s=300.0))
        thread = threading.Thread(target=daemon.run)
        thread.start()
        try:
            # First a case for two printers that are not ready: it waits for one of them.
            # (the sidecar first: the file is taken with it).
            (tmp_path / "inbox").mkdir(exist_ok=True)
            (tmp_path / "inbox" / "first.yaml").write_text("printer: Bench-Z, Bench-Y\n",
                                                          encoding="utf-8")
            drop(tmp_path, "first.stl", tetra_stl_bytes(1))
            wait_for(lambda: [b.state for b in store.list_builds()]
                     == [JobState.WAITING_FOR_PRINTER], WAIT_S, what="the first build waiting")
            drop(tmp_path, "second.stl", tetra_stl_bytes(2))
            wait_for(lambda: "second.stl" in names(tmp_path / "inbox" / "done"), WAIT_S,
                     what="the second file printed and settled")
        finally:
            daemon.stop()
            thread.join(WAIT_S)
        assert not thread.is_alive()
        first, second = sorted(store.list_builds(), key=lambda b: b.id)
        assert first.state is JobState.WAITING_FOR_PRINTER
        assert (second.state, second.printer) == (JobState.PRINT_SENT, "Bench-A")
        history = [h.to_state for h in store.build_history(second.id)]
        assert history[history.index(JobState.PREPARED):] == [
            JobState.PREPARED, JobState.WAITING_FOR_PRINTER, JobState.PRINT_SENDING,
            JobState.PRINT_SENT]
        # The simulator printed the .form the run saved; the scripted runner printed nothing.
        (job,) = fleet_jobs(farm.fleet_dir)
        assert job["printer"] == "Bench-A" and second.job_key in job["job_name"]
        assert second.form_path is not None and second.form_path.is_file()
        assert script.seen_states == []


def _recipe_with_dated_root(tmp_path: Path) -> Path:
    """The test recipe, its ``outputs.root`` a folder per day (``recipe-out/{date}``)."""
    path = write_recipe(tmp_path)
    text = path.read_text(encoding="utf-8")
    root = f"root: {(tmp_path / 'out').as_posix()}\n"
    assert root in text
    path.write_text(text.replace(root, f"root: {(tmp_path / 'recipe-out').as_posix()}/{{date}}\n"),
                    encoding="utf-8")
    return path


def _run_report_of(tmp_path: Path, name: str) -> Path:
    """The run report a settled file's own report names."""
    report = json.loads((tmp_path / "inbox" / "done" / f"{name}.report.json")
                        .read_text(encoding="utf-8"))
    path = Path(report["run_report"])
    assert path.is_file()
    return path


class TestWhereABatchsOutputsGo:
    """The hot folder's ``output_root`` comes first, then the settings', then the recipe's."""

    def test_the_hot_folders_root_wins_over_the_settings(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    _recipe_with_dated_root(tmp_path),
                                    hot={"output_root": tmp_path / "hot-out"},
                                    settings_output_root=tmp_path / "settings-out"))
        assert _run_report_of(tmp_path, "p.stl").parent == tmp_path / "hot-out" / "reports"
        assert not (tmp_path / "settings-out").exists()
        assert not (tmp_path / "recipe-out").exists()

    def test_without_either_the_recipes_root_is_rendered_with_the_batchs_date(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        before = date.today()
        run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    _recipe_with_dated_root(tmp_path),
                                    hot={"output_root": None}))
        days = {f"{day:%Y-%m-%d}" for day in (before, date.today())}
        (folder,) = (tmp_path / "recipe-out").iterdir()
        assert folder.name in days
        assert _run_report_of(tmp_path, "p.stl").parent == folder / "reports"


class _RunnerRecordingOptions(ScriptedRunner):
    """The scripted runner, keeping the request timeout each batch's run was told."""

    #: Reset by the test that uses it (the daemon makes one runner per batch).
    timeouts: ClassVar[list[float]] = []

    def run(self) -> RunResult:
        type(self).timeouts.append(self.options.request_timeout_s)
        return super().run()


class TestTheServersRequestTimeout:
    """The settings' request timeout for the servers bounds every batch's requests."""

    def test_the_batchs_run_is_given_the_settings_timeout(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _RunnerRecordingOptions.timeouts = []
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), runner=_RunnerRecordingOptions,
                                    servers=ServerSettings(request_timeout_s=42.0)))
        assert _RunnerRecordingOptions.timeouts == [42.0]


class TestARecipeThatDoesNotPrint:
    """A recipe without a print step prepares its builds; nothing is tracked or printed."""

    def test_the_build_ends_done_as_prepared_and_its_file_in_done(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        script = Script(fleet_dir=tmp_path / "fleet")
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer=None)))
        (build,) = store.list_builds()
        assert (build.state, store.build_history(build.id)[-1].reason) == (
            JobState.DONE, "prepared")
        assert "p.stl" in names(tmp_path / "inbox" / "done")
        assert fleet_jobs(script.fleet_dir) == []


class _RunnerPausingBeforeThePrint(ScriptedRunner):
    """The scripted runner, pausing each build after its drops, before its print, until
    ``go`` is set; ``paused`` tells the test it got there."""

    paused: ClassVar[threading.Event] = threading.Event()
    go: ClassVar[threading.Event] = threading.Event()

    def _print(self, build: BuildPlan) -> str | None:
        type(self).paused.set()
        type(self).go.wait(WAIT_S)
        return super()._print(build)


class TestTheSweepOfProcessingWhileABuildRuns:
    """A case dropped from a running build stays in processing/ through the loop's sweep:
    its build settles it when the run ends, with the build's outcome."""

    def test_the_dropped_file_is_settled_by_its_build_not_by_the_sweep(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        for n, case in enumerate(("C-1", "C-2")):
            drop(tmp_path, f"{case}/upper.stl", tetra_stl_bytes(n))
        reason = "case C-2: model upper.stl: step label: LABEL_FAILED"

        def dropped(build: BuildPlan) -> list[tuple[Path, str]]:
            return [(m.path, reason) for m in build.models if m.case_id == "C-2"]

        _RunnerPausingBeforeThePrint.paused = threading.Event()
        _RunnerPausingBeforeThePrint.go = threading.Event()
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet", drop=dropped),
                             write_recipe(tmp_path), runner=_RunnerPausingBeforeThePrint)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(daemon.run(once=True)))
        thread.start()
        try:
            assert _RunnerPausingBeforeThePrint.paused.wait(WAIT_S)
            # The loop's periodic sweep of processing/, while the build still runs.
            daemon.outcomes.settle_processing_folders()
            processing = names(tmp_path / "inbox" / "processing")
            failed = names(tmp_path / "inbox" / "failed")
        finally:
            _RunnerPausingBeforeThePrint.go.set()
            thread.join(WAIT_S)
        assert not thread.is_alive() and result == [0]
        # Both files were still in processing/ after the sweep, none in failed/.
        assert [n.split("/", 1)[1] for n in processing] == ["upper.stl", "upper.stl"]
        assert failed == []
        # Settled with its build: the note names the build and the server it was prepared on.
        (build,) = store.list_builds()
        note = (tmp_path / "inbox" / "failed" / "C-2" / "upper.stl.error.txt").read_text(
            encoding="utf-8").splitlines()
        assert f"Where: preparing build {build.job_key} on server-1" in note
        assert "C-1/upper.stl" in names(tmp_path / "inbox" / "done")


class TestASettledFilesReport:
    """A printed file's report in done/ carries its build's outcome from the run."""

    def test_the_report_holds_the_builds_status_server_and_models(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path)))
        report = json.loads((tmp_path / "inbox" / "done" / "p.stl.report.json")
                            .read_text(encoding="utf-8"))
        (build,) = store.list_builds()
        outcome = report["outcome"]
        assert (outcome["build"], outcome["status"], outcome["server"], outcome["models"]) == (
            build.job_key, "succeeded", "server-1", ["p.stl"])
        assert outcome["job_id"] == build.print_job_id


class _RunnerFailingWithoutAReason(ScriptedRunner):
    """The scripted runner, failing every build with no reason given."""

    def run(self) -> RunResult:
        self.script.fail = lambda _build: "to be left out"
        result = super().run()
        return replace(result, outcomes=tuple(replace(o, reason=None) for o in result.outcomes
                                              if o.status is BuildStatus.FAILED))


class TestABuildFailedWithoutAReason:
    """A build the run failed without saying why is recorded as plainly "failed"."""

    def test_the_build_and_its_job_say_failed(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), runner=_RunnerFailingWithoutAReason))
        (build,) = store.list_builds()
        assert build.state is JobState.FAILED
        assert store.build_history(build.id)[-1].reason == "failed"
        (job,) = store.list_jobs()
        assert (job.state, job.reason) == (JobState.FAILED, "failed")
        assert "p.stl" in names(tmp_path / "inbox" / "failed")


class TestABatchAbandonedWhileItsBuildsAreMade:
    """A batch given up because the store failed as its builds were made is logged with the
    store's error and the builds it had made."""

    def test_the_event_names_the_stores_error(self, tmp_path: Path) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        with StoreAwayWhileBatching(tmp_path / "jobs.sqlite3") as store, capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                                        write_recipe(tmp_path)))
        abandoned = [e for e in logs if e["event"] == "batch_abandoned"]
        assert [(e["error"], e["builds"]) for e in abandoned] == [
            ("the job store is away (it comes back)", 1)]
        # Batched again once the store answered: printed once.
        assert "p.stl" in names(tmp_path / "inbox" / "done")
