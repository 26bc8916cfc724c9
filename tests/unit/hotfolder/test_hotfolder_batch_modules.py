"""The first batch imports the planner, the runner and numpy (session 47): an installation
that cannot import them stops the daemon before the batch touches a job, whose file waits in
processing/ for the next start (review rv47-lazy: it failed as a bug of its batch, as every
file dropped after it would have), and a stop that comes during that import leaves the batch
unstarted, as one that came before it."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest
from daemon_support import Script, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder import daemon as daemon_module
from preform_pipeline.hotfolder import worker as worker_module
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes
from preform_pipeline.hotfolder.worker import BATCH_MODULES, BatchModulesError
from preform_pipeline.store import JobState, SqliteJobStore

#: A module only a batch imports (a case check), here one that cannot be imported.
BROKEN = "preform_pipeline.executor.feasibility"


class TestTheFirstBatchsImports:
    """What a batch needs is imported before it touches a job, and its failure is the
    installation's, not the files'."""

    def test_a_module_that_cannot_be_imported_stops_the_daemon_and_keeps_the_file(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        monkeypatch.setitem(sys.modules, BROKEN, None)  # its import raises ImportError
        daemon = make_daemon(tmp_path, store, script, recipe)
        with capture_logs() as logs, pytest.raises(BatchModulesError) as raised:
            daemon.run(once=True)
        assert f"importing {BROKEN} failed (ModuleNotFoundError" in raised.value.message
        assert raised.value.hint == (  # s48: what to do, and that the files are kept
            "the installation is incomplete or broken: reinstall preform-pipeline; the files "
            "taken wait in processing/ and are batched at the next start")
        (said,) = [e for e in logs if e["event"] == "batch_modules_unusable"]
        assert (said["log_level"], said["recipe"]) == ("error", "hot")
        assert not [e for e in logs if e["event"] == "batch_crashed"]
        # Nothing of the batch was done: its job waits unbatched, its file in processing/.
        (job,) = store.list_jobs()
        assert (job.state, job.build_id) == (JobState.PROCESSING, None)
        inbox = tmp_path / "inbox"
        assert names(inbox / "failed") == []
        assert names(inbox / "processing") == [f"{job.job_key}/p.stl"]
        assert store.list_builds() == ()
        assert daemon.batches_run == 0

        # The installation mended, the next start batches it.
        monkeypatch.undo()
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert store.get_job(job.id).state is JobState.PRINT_SENT
        assert len(fleet_jobs(script.fleet_dir)) == 1

    def test_a_stop_during_the_first_import_leaves_the_batch_unstarted(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        daemon = make_daemon(tmp_path, store, script, recipe)
        imported = daemon_module.import_batch_modules

        def stopped_meanwhile() -> None:
            imported()
            daemon.stop()  # Ctrl-C while the planner and numpy were being imported

        monkeypatch.setattr(daemon_module, "import_batch_modules", stopped_meanwhile)
        run_daemon_once(daemon)
        (job,) = store.list_jobs()
        assert (job.state, job.build_id) == (JobState.PROCESSING, None)
        assert store.list_builds() == ()
        assert daemon.batches_run == 0
        assert fleet_jobs(script.fleet_dir) == []

    def test_they_are_every_module_the_worker_imports_later(self) -> None:
        """The methods that run a batch import from these modules alone: one imported there
        and not here would be imported only once a job is touched, and could fail it."""
        tree = ast.parse(inspect.getsource(worker_module))
        later = {inner.module for function in ast.walk(tree)
                 if isinstance(function, ast.FunctionDef)
                 for inner in ast.walk(function) if isinstance(inner, ast.ImportFrom)}
        assert later  # the methods' own imports were found
        assert later <= set(BATCH_MODULES)
