"""A cancelled run on the run's clock: the steps running at the cancel get the grace period
to end, then the servers are stopped; a second Ctrl-C during the grace period stops them at
once."""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from executor_support import (
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)
from test_executor_final_intake_wait import watched_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.executor import BuildStatus, NullReporter, Runner, RunOptions, RunResult
from preform_pipeline.outputfolders import STAGING_FOLDER
from preform_pipeline.simulator.protocol import ProgressCallback, SimError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals only")

GRACE_S = 30.0


class _Gate(ScriptedFaults):
    """``operation`` (``auto_support``) waits until the test opens the gate (then it
    succeeds) or the server shuts down (then it answers 503); ``reached`` is set once it
    waits."""

    def __init__(self, operation: str = "auto_support") -> None:
        super().__init__()
        self.operation = operation
        self.reached = threading.Event()
        self.open = threading.Event()

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id != self.operation:
            return
        self.reached.set()
        while not self.open.wait(0.05):
            if self.stop.is_set():
                raise SimError(503, "SHUTTING_DOWN", "operation ended at shutdown")


class _StoppingPool(FakePool):
    """The fake pool, closed as the real one is: closing stops its servers (which ends
    the operations they were running), unless ``stops_servers`` is False (servers whose
    stop the operation does not notice). ``closes`` counts the calls."""

    def __init__(self, farm: SimFarm, stops_servers: bool = True) -> None:
        super().__init__([s.url for s in farm.servers])
        self._farm = farm
        self._stops_servers = stops_servers
        self.stopped = threading.Event()
        self.closes = 0

    def close(self) -> None:
        super().close()
        self.closes += 1
        self.stopped.set()
        if self._stops_servers:
            for server in self._farm.servers:
                server.shutdown()


class _WatchedClock(ManualClock):
    """A manual clock that counts the main thread's readings once armed (the run's main
    thread reads it only to wind down: the grace period's end, then once per slice of the
    grace loop), noting what ``look`` says at each."""

    def __init__(self, look: Callable[[], bool]) -> None:
        super().__init__()
        self._look = look
        self._cond = threading.Condition()
        self._armed = False
        self.seen: list[bool] = []

    def arm(self) -> None:
        with self._cond:
            self._armed, self.seen = True, []

    def monotonic(self) -> float:
        if threading.current_thread() is threading.main_thread():
            with self._cond:
                if self._armed:
                    self.seen.append(self._look())
                    self._cond.notify_all()
        return super().monotonic()

    def wait_reads(self, count: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.seen) >= count, WAIT_S)


class _Setup:
    """One build (support, then layout) whose support waits at the gate, on a pool that
    stops its servers when closed, with a step deadline that outlasts the test; run on
    this (the main) thread by :meth:`run` while actions run beside it. ``steps`` and
    ``gated`` (the server's operation held at the gate) change the build."""

    def __init__(self, tmp_path: Path, farm: SimFarm, grace_s: float = GRACE_S,
                 stops_servers: bool = True,
                 steps: tuple[str, ...] = ("auto_support", "auto_layout"),
                 gated: str = "auto_support") -> None:
        recipe = "steps:\n" + "".join(f"  - {step}\n" for step in steps)
        plan = plan_for(write_recipe(tmp_path, recipe),
                        [write_box(tmp_path / "m", "box0", 10, 10, 10)])
        self.gate = _Gate(gated)
        farm.add(self.gate)
        self.pool = _StoppingPool(farm, stops_servers)
        self.clock = _WatchedClock(lambda: self.pool.closed)
        self.runner = Runner(
            plan, self.pool,
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                               cancel_grace_s=grace_s, step_timeout_s=WAIT_S * 3),
            reporter=NullReporter(), clock=self.clock,
        )
        self._lock = threading.Lock()
        self._ended = threading.Event()

    def ctrl_c(self) -> None:
        """Send this process SIGINT, unless the run has ended (the Ctrl-C would then hit
        the test itself)."""
        with self._lock:
            assert not self._ended.is_set(), "the run ended before the Ctrl-C"
            os.kill(os.getpid(), signal.SIGINT)

    def run(self, actions: Callable[[], None]) -> tuple[
        RunResult, list[dict[str, object]], list[str]
    ]:
        """Run while ``actions`` run beside it: the result, the log events and what went
        wrong beside it. A run that does not end on its own within ``WAIT_S`` is ended
        (gate open, the clock moved on an hour every half second), and that is a problem
        too."""
        problems: list[str] = []

        def beside() -> None:
            try:
                actions()
            except AssertionError as exc:
                problems.append(str(exc))
            if not self._ended.wait(WAIT_S):
                problems.append("the run did not end")
                self.gate.open.set()
                while not self._ended.wait(0.5):
                    self.clock.advance(3600.0)

        # A Ctrl-C at a terminal reaches a run through Python's default SIGINT handler: that is
        # the handler under test, whatever an earlier test in this worker left installed.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        # The interpreter swallows a KeyboardInterrupt raised inside a finalizer ("Exception
        # ignored in ..."): a Ctrl-C that lands while the collector finalizes earlier tests'
        # garbage on this thread is lost to any program. That garbage goes first, and the
        # collector waits until the run is over, so the run answers every Ctrl-C sent.
        gc.collect()
        gc.disable()
        thread = threading.Thread(target=beside, daemon=True)
        thread.start()
        with capture_bound_logs() as logs:
            try:
                try:
                    result = self.runner.run()
                finally:
                    with self._lock:
                        self._ended.set()
                # A Ctrl-C sent as the run ended is handled here, at the latest.
                thread.join(WAIT_S * 2)
            except KeyboardInterrupt:
                pytest.fail("a Ctrl-C escaped the run")
            finally:
                gc.enable()
                signal.signal(signal.SIGINT, previous)
        return result, logs, problems


class TestGracePeriod:
    """After a cancel, a running step may end within the grace period on the run's clock;
    once that period has passed, the servers are stopped under it."""

    def test_a_step_that_ends_within_the_grace_period_ends_normally(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        setup = _Setup(tmp_path, farm)

        def cancel_then_let_the_step_end() -> None:
            assert setup.gate.reached.wait(WAIT_S), "auto_support never started"
            setup.clock.arm()
            setup.runner.cancel()
            # Three readings: the grace period's end, and two turns of its loop.
            assert setup.clock.wait_reads(3), "the run did not wait out the grace period"
            setup.gate.open.set()

        result, logs, problems = setup.run(cancel_then_let_the_step_end)
        assert problems == []
        # The pool stayed open through the grace loop's turns (the clock stood still).
        assert setup.clock.seen[:3] == [False, False, False]
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED,
                                                    "the run was interrupted")
        # The step ended by itself (no error), and no step was started after it.
        assert [(a.server, a.error) for a in outcome.attempts] == [("server-1", None)]
        assert "auto_layout" not in setup.gate.seen
        assert [e["kind"] for e in iter_events(logs, "step_finished")] == [
            "create_scene", "import_models", "auto_support"]
        assert setup.pool.closed and result.cancelled

    def test_a_step_still_running_when_the_grace_period_ends_is_stopped(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        setup = _Setup(tmp_path, farm)

        def cancel_then_let_the_grace_pass() -> None:
            assert setup.gate.reached.wait(WAIT_S), "auto_support never started"
            setup.clock.arm()
            setup.runner.cancel()
            assert setup.clock.wait_reads(2), "the run did not wait out the grace period"
            setup.clock.advance(GRACE_S)  # exactly the grace period: it has passed
            assert setup.pool.stopped.wait(WAIT_S), "the grace passed, the servers still run"

        result, logs, problems = setup.run(cancel_then_let_the_grace_pass)
        assert problems == []
        assert not setup.gate.open.is_set()
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED,
                                                    "the run was interrupted")
        # The stop ended the step (the server's 503 as it shut down, not the step's deadline)
        # when the grace period had passed on the run's clock; no other attempt was made.
        (attempt,) = outcome.attempts
        # A 503 is a ServerBusyError since session 43 (a ServerInternalError, transient).
        assert attempt.error_type == "ServerBusyError"
        assert "SHUTTING_DOWN" in (attempt.error or "")
        assert attempt.busy_s == GRACE_S
        assert setup.pool.closed and setup.pool.leases == ["server-1"]
        assert list(iter_events(logs, "run_cancel_forced")) == []
        assert [e["run_id"] for e in iter_events(logs, "run_cancel_requested")] == ["run-1"]

    def test_without_a_grace_period_the_run_still_waits_for_its_builds_to_end(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        setup = _Setup(tmp_path, farm, grace_s=0.0)

        def cancel() -> None:
            assert setup.gate.reached.wait(WAIT_S), "auto_support never started"
            setup.runner.cancel()

        result, _, problems = setup.run(cancel)
        assert problems == []
        # The servers were stopped at once; the build noticed before the run returned
        # (the run's clock stood still, within the few seconds the run waits for that).
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED,
                                                    "the run was interrupted")
        (attempt,) = outcome.attempts
        assert "SHUTTING_DOWN" in (attempt.error or "")
        assert setup.pool.closed and not setup.gate.open.is_set()


class TestAfterTheStop:
    """Once the servers are stopped, the run waits a few seconds of its clock for its builds
    to notice, then returns: a build still running is listed as unfinished."""

    def test_the_run_waits_five_seconds_for_a_build_that_does_not_notice(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # No grace period; the server keeps the step running after the stop.
        setup = _Setup(tmp_path, farm, grace_s=0.0, stops_servers=False)

        def cancel_then_let_five_seconds_pass() -> None:
            assert setup.gate.reached.wait(WAIT_S), "auto_support never started"
            setup.clock.arm()
            setup.runner.cancel()
            # The servers are stopped; the run reads its clock while it waits for the build.
            assert setup.clock.wait_reads(4), "the run did not wait for its build"
            assert setup.clock.seen[-2:] == [True, True]
            setup.clock.advance(5.0)  # exactly the wait: it is over, and the run returns

        with watched_logs("build_finished_after_run", build="unit-001") as (_, ended):
            result, _, problems = setup.run(cancel_then_let_five_seconds_pass)
            left_running = not (ended.is_set() or setup.gate.open.is_set())
            # The step the server kept running ends now, and the build says it ended after
            # its run; waited for here, so that it logs nothing into the next test.
            setup.gate.open.set()
            assert ended.wait(WAIT_S), "the build left running never ended"
        assert problems == []  # the run winds down once: it does not wait as long again
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.reason) == (
            BuildStatus.CANCELLED, "the run was interrupted before this build finished")
        assert result.cancelled and left_running
        assert setup.pool.closes == 1

    def test_a_save_that_ends_after_its_run_leaves_no_staging_folder(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # A run's saves leave `.preform-staging` to the run's end; a save its server kept
        # running past the run (the stop not noticed) ends later, and the folder with it.
        setup = _Setup(tmp_path, farm, grace_s=0.0, stops_servers=False,
                       steps=("save_form",), gated="save_form_file")
        staging = (tmp_path / "out").resolve() / STAGING_FOLDER

        def cancel_mid_save_then_let_five_seconds_pass() -> None:
            assert setup.gate.reached.wait(WAIT_S), "the save never started"
            assert any(staging.iterdir()), "the save held is not a staged one"
            setup.clock.arm()
            setup.runner.cancel()
            assert setup.clock.wait_reads(4), "the run did not wait for its build"
            setup.clock.advance(5.0)

        with watched_logs("build_finished_after_run", build="unit-001") as (_, ended):
            result, _, problems = setup.run(cancel_mid_save_then_let_five_seconds_pass)
            assert problems == []
            assert not ended.is_set() and staging.is_dir()  # the save is still held
            setup.gate.open.set()
            assert ended.wait(WAIT_S), "the build left running never ended"
        assert result.cancelled
        assert not staging.exists()


@posix_only
class TestSecondCtrlC:
    """A second Ctrl-C while running steps get their grace period stops the servers at once
    and says so; the run still returns its result."""

    def test_the_second_ctrl_c_forces_the_stop_and_is_logged(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        setup = _Setup(tmp_path, farm)

        def press_ctrl_c_twice() -> None:
            assert setup.gate.reached.wait(WAIT_S), "auto_support never started"
            setup.clock.arm()
            setup.ctrl_c()
            # The run's clock stands still: only the second Ctrl-C ends the grace period.
            assert setup.clock.wait_reads(2), "the first Ctrl-C did not start the grace period"
            setup.ctrl_c()

        result, logs, problems = setup.run(press_ctrl_c_twice)
        assert problems == []
        assert not setup.gate.open.is_set()
        assert result.cancelled and not result.ok
        assert [(o.status, o.reason) for o in result.outcomes] == [
            (BuildStatus.CANCELLED, "the run was interrupted")
        ]
        assert setup.pool.closed and setup.pool.closes == 1  # wound down once
        said = [(e["event"], e.get("run_id")) for e in logs if e["event"] in (
            "run_cancel_requested", "run_cancel_forced", "run_finished")]
        assert said == [("run_cancel_requested", "run-1"), ("run_cancel_forced", "run-1"),
                        ("run_finished", "run-1")]
        (finished,) = iter_events(logs, "run_finished")
        assert (finished["cancelled"], finished["ok"]) == (True, False)
        # The step that was running was ended by the stop, and no later step was sent.
        assert "auto_layout" not in setup.gate.seen
