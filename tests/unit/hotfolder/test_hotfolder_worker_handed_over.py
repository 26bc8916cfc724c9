"""A run that handed its build to the dispatch loop (left waiting for a printer, or held and
approved since) sent nothing: when the loop has claimed a printer and begun the send before
the run's end is written, the run's end neither records the loop's send nor releases its
claim; the loop records its own send. The worker's real code path, with the scripted runner
at the executor seam handing the build over through the real print hooks, a real dispatch
pass (printer status faked at its protocol) on its own thread under the daemon's claims, and
a real SQLite store."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from daemon_support import Script, ScriptedRunner, make_daemon, processing_job

from preform_pipeline.dispatch.waiting import Dispatched, Dispatcher
from preform_pipeline.executor import BuildStatus, RunResult
from preform_pipeline.executor.hooks import PRINT_HELD, PRINT_WAITING
from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.approval import approve
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.store import Build, JobState, SqliteJobStore
from tests.unit.dispatch.test_dispatch_claims import _first_free
from tests.unit.dispatch.test_dispatch_waiting import Printers
from tests.unit.verify.test_verify_targets import local_devices_client

#: How long a thread waits for what the other does (far more than it takes).
WAIT_S = 10.0


class _DispatchPass:
    """A dispatch pass on its own thread whose send stops once it has written print_sending
    (the printer claimed, the print not out yet) until the test lets it go on."""

    def __init__(self, store: SqliteJobStore, daemon: HotFolderDaemon) -> None:
        assert daemon.dispatch is not None
        self.owner = PrintOwner(store)
        self.printers = Printers("A", "B")
        self.dispatcher = Dispatcher(store, self.printers, self._send,
                                     claims=daemon.dispatch.claims)
        self.sending, self.go_on = threading.Event(), threading.Event()
        self.done: list[Dispatched] = []
        self.thread = threading.Thread(target=self._pass, name="dispatch-pass")

    def _send(self, build: Build, printer: str) -> None:
        self.owner.begin(build.id, build.job_name or build.job_key, printer, None)
        self.sending.set()
        assert self.go_on.wait(WAIT_S), "the test never let the send go on"
        self.owner.sent(build.id, f"job-{build.id}", printer)

    def _pass(self) -> None:
        try:
            self.done.extend(self.dispatcher.dispatch_once())
        finally:
            self.sending.set()  # a pass that sent nothing does not leave the run waiting

    def finish(self) -> None:
        self.go_on.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the dispatch pass never ended"


class _RunnerHandingOver(ScriptedRunner):
    """Each build goes through the real print hooks with ``printer: auto`` and no printer
    free: the hooks leave it waiting (or hold it, approved at once) with its saved .form, and
    the run ends only once the dispatch loop is sending it. The outcome says what the real
    print step says then; the run ends through the hooks' ``after_run``, as the executor's."""

    dispatch: _DispatchPass
    status = BuildStatus.SUCCEEDED
    #: The run was interrupted before the build's thread gave its outcome: the result holds
    #: the runner's stand-in (cancelled, nothing of the hand-over in it), and no
    #: ``after_run`` (a cancelled run's end never reaches it).
    interrupted = False
    #: What the print step left in its facts: held, waiting, printer, job name, job key.
    handed: tuple[bool, bool, str, str, str]

    def _print(self, build: BuildPlan) -> str | None:
        tracking = self.options.print_tracking
        store = self.script.store
        assert tracking is not None and isinstance(store, SqliteJobStore)
        hooks = tracking.for_build(build)
        with local_devices_client([]) as devices:  # not a printer free: dispatch chooses
            printer = hooks.resolve_printer("auto", self.plan.recipe, devices)
        form = self.options.output_root / f"{build.name}.form"
        form.parent.mkdir(parents=True, exist_ok=True)
        form.write_bytes(b"a saved scene")
        found = hooks.before_send(hooks.job_name(build.name), printer, form_path=form)
        assert found in (PRINT_WAITING, PRINT_HELD)
        if found == PRINT_HELD:
            (held,) = store.list_builds(state=JobState.AWAITING_APPROVAL)
            approve(store, held.id, "operator")
        self.dispatch.thread.start()
        assert self.dispatch.sending.wait(WAIT_S), "the dispatch loop never began its send"
        assert self.dispatch.done == [], "the dispatch pass ended without sending"
        self.handed = (found == PRINT_HELD, found == PRINT_WAITING, printer,
                       hooks.job_name(build.name), hooks.job_key)
        return None

    def run(self) -> RunResult:
        result = super().run()
        held, waiting, printer, job_name, job_key = self.handed
        (outcome,) = result.outcomes
        if self.interrupted:
            stand_in = replace(outcome, status=BuildStatus.CANCELLED, held=False,
                               waiting=False, printer=None, job_name=None, job_key=None,
                               reason="the run was interrupted before this build finished")
            return replace(result, outcomes=(stand_in,), cancelled=True)
        outcome = replace(outcome, status=self.status, held=held, waiting=waiting,
                          printer=printer, job_name=job_name, job_key=job_key)
        tracking = self.options.print_tracking
        assert tracking is not None
        return tracking.after_run(replace(result, outcomes=(outcome,)), threading.Event())


def _run_handing_over(tmp_path: Path, store: SqliteJobStore, script: Script, *, held: bool,
                      status: BuildStatus = BuildStatus.SUCCEEDED, interrupted: bool = False,
                      ) -> tuple[HotFolderDaemon, _DispatchPass, int]:
    """One file's batch run to its end by the daemon's worker while the dispatch loop is
    sending its build (the send held open): the daemon, the pass, the build's id."""
    job = processing_job(store, tmp_path / "inbox", "m1.stl", 1)
    daemon = make_daemon(tmp_path, store, script,
                         write_recipe(tmp_path, printer="auto", approval=held,
                                      extra_steps=("save_form", "screenshot") if held else ()),
                         runner=_RunnerHandingOver,
                         dispatch=DispatchSettings(poll_interval_s=300.0))
    dispatch = _RunnerHandingOver.dispatch = _DispatchPass(store, daemon)
    _RunnerHandingOver.status = status
    _RunnerHandingOver.interrupted = interrupted
    try:
        daemon.worker.run_batch(Batch("hot", (BatchItem(f"job:{job}", "hot", (job,), 0.0),),
                                      "window"))
    except BaseException:
        dispatch.go_on.set()  # the pass ends with the test, not WAIT_S later
        raise
    (build,) = store.list_builds()
    return daemon, dispatch, build.id


class TestARunEndingWhileDispatchSendsItsBuild:
    """Left waiting or held, its build is the dispatch loop's to send and record; the run's
    end writes no send and frees no printer the loop chose."""

    @pytest.mark.parametrize(("held", "status"), [
        pytest.param(False, BuildStatus.SUCCEEDED, id="left-waiting"),
        pytest.param(True, BuildStatus.SUCCEEDED, id="held-and-approved"),
        pytest.param(False, BuildStatus.CANCELLED, id="left-waiting-then-cancelled"),
        pytest.param(False, BuildStatus.FAILED, id="left-waiting-then-failed"),
        # The runner's stand-in outcome of an interrupted run says nothing of the hand-over:
        # the store's record of it is what the worker reads.
        pytest.param(False, None, id="left-waiting-run-interrupted-before-its-outcome"),
        pytest.param(True, None, id="held-and-approved-run-interrupted-before-its-outcome"),
    ])
    def test_the_dispatch_loop_records_its_own_send_and_keeps_its_printer(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, held: bool,
        status: BuildStatus | None,
    ) -> None:
        daemon, dispatch, build_id = _run_handing_over(
            tmp_path, store, script, held=held, status=status or BuildStatus.CANCELLED,
            interrupted=status is None)
        try:
            assert store.get_build(build_id).state is JobState.PRINT_SENDING
            # Its print not on the printer yet, A says it is free: a batch choosing now must
            # not take it.
            assert daemon.worker.printer_claims.choose(
                "PP-NEXT", _first_free(dispatch.printers)).name == "B"
        finally:
            dispatch.finish()
        assert [(d.printer, d.error) for d in dispatch.done] == [("A", None)]
        build = store.get_build(build_id)
        assert (build.state, build.print_job_id) == (JobState.PRINT_SENT, f"job-{build_id}")
        assert [t.to_state for t in store.build_history(build_id)].count(
            JobState.PRINT_SENT) == 1
