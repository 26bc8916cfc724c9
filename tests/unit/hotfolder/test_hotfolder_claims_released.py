"""The daemon's batches choose printers under the claims its dispatch loop chooses under, and a
batch whose run the store stopped after a build chose a printer does not keep that printer
chosen: the next batch (or the dispatch loop) can still send to it. The scripted runner at the
executor seam chooses through the real print hooks, from the device list of an in-process
simulator (real HTTP) or one answered at the HTTP transport seam; the store is a real SQLite
file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
from daemon_support import (
    RunnerSavingForms,
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.simulator.devices import printer_status
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS, FLEET_FORMAT
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.tracking import PrinterClaims
from tests.unit.executor.executor_support import FakePool, SimFarm
from tests.unit.verify.test_verify_targets import local_devices_client

#: The one printer: a claim left behind would leave no printer to choose.
PRINTER = "Form4-Only"


class _RunnerStoppedByTheStoreOnce(ScriptedRunner):
    """Each build's printer chosen through the hooks (``printer: auto``, the one printer
    free); the first run then stops on the store, as a real run does when a write fails."""

    stopped: ClassVar[list[str]] = []

    stopped_here = False

    def cancel(self) -> None:
        # The worker cancels what is left of a run the store stopped; the scripted runner's
        # cancel would stop every later run of the script too, and here nothing is left.
        if not self.stopped_here:
            super().cancel()

    def _print(self, build: BuildPlan) -> str | None:
        tracking = self.options.print_tracking
        assert tracking is not None
        hooks = tracking.for_build(build)
        with local_devices_client(
            [printer_status(replace(DEFAULT_PRINTERS[0], serial=PRINTER))]
        ) as devices:
            printer = hooks.resolve_printer("auto", self.plan.recipe, devices)
        if not self.stopped:
            self.stopped.append(build.name)
            self.stopped_here = True
            raise StoreError("the job store is away", hint="it comes back")
        found = hooks.before_send(hooks.job_name(build.name), printer)
        return found if found is not None else self._record_print(
            build, hooks, hooks.job_name(build.name), printer)


class TestARunStoppedByTheStore:
    """The printer its build chose is free again for the batch that runs the file next."""

    def test_the_file_batched_again_prints_on_the_printer_the_stopped_run_chose(
        self, tmp_path: Path, script: Script, store: SqliteJobStore
    ) -> None:
        _RunnerStoppedByTheStoreOnce.stopped = []
        recipe = write_recipe(tmp_path, name="hot", printer="auto")
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        daemon = make_daemon(tmp_path, store, script, recipe,
                             runner=_RunnerStoppedByTheStoreOnce)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        [stopped] = _RunnerStoppedByTheStoreOnce.stopped
        assert [j["printer"] for j in fleet_jobs(script.fleet_dir)] == [PRINTER]
        claims = [(e["event"], e["build"]) for e in logs
                  if e["event"] in ("printer_claimed", "printer_released")]
        assert claims[:2] == [("printer_claimed", stopped), ("printer_released", stopped)]
        assert "batch_run_failed" in [e["event"] for e in logs]


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[SimFarm]:
    """One in-process simulator whose fleet has two free Form 4s with the recipe's material."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    printers = [{"serial": name, "machine_type_id": "FORM-4-0", "product_name": "Form 4",
                 "ip_address": "192.0.2.40", "material_code": "FLGPGR05",
                 "ready_to_print_now": True} for name in ("Bench-A", "Bench-B")]
    (fleet / "printers.json").write_text(json.dumps({
        "format": FLEET_FORMAT, "version": 1, "groups": [], "printers": printers,
    }), encoding="utf-8")
    simulators = SimFarm(tmp_path)
    simulators.add()
    yield simulators
    simulators.close()


class TestABatchChoosingWhileDispatchSends:
    """A printer the dispatch loop chose and is sending to (its print not on it yet) is not
    chosen by a batch's build, though its status still says it is free."""

    def test_the_batchs_build_prints_on_the_other_printer(
        self, tmp_path: Path, store: SqliteJobStore, farm: SimFarm
    ) -> None:
        pool = FakePool([farm.servers[0].url])
        script = Script(fleet_dir=farm.fleet_dir)
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer="auto"),
                             runner=RunnerSavingForms, pool=lambda: pool,
                             dispatch=DispatchSettings(poll_interval_s=300.0))
        assert daemon.dispatch is not None
        # What a dispatch pass holds while it sends a waiting build to Bench-A.
        with daemon.dispatch.claims.choosing() as choice:
            choice.claim("PP-WAITINGBUILD", "Bench-A", by="dispatch")
        drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
        run_daemon_once(daemon)
        assert [j["printer"] for j in fleet_jobs(farm.fleet_dir)] == ["Bench-B"]


class TestABatchChoosingWhileAnotherProcessSends:
    """A printer a ``run`` on the same store file chose (its print not on it yet) is not
    chosen by the daemon's batch: the daemon's claims consult the store's."""

    def test_the_batchs_build_prints_on_the_other_printer(
        self, tmp_path: Path, store: SqliteJobStore, farm: SimFarm
    ) -> None:
        pool = FakePool([farm.servers[0].url])
        script = Script(fleet_dir=farm.fleet_dir)
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, printer="auto"),
                             runner=RunnerSavingForms, pool=lambda: pool,
                             dispatch=DispatchSettings(poll_interval_s=300.0))
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as run_store:
            # What a `run` beside the daemon holds while it sends its build to Bench-A.
            with PrinterClaims(run_store).choosing() as choice:
                assert choice.claim("build-1", "Bench-A", by="run")
            drop(tmp_path, "m1.stl", tetra_stl_bytes(1))
            run_daemon_once(daemon)
        assert [j["printer"] for j in fleet_jobs(farm.fleet_dir)] == ["Bench-B"]
