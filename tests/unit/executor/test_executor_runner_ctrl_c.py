"""Ctrl-C during a run: the first one cancels it and gives running steps the grace period,
a second one during that grace period stops the servers at once."""

from __future__ import annotations

import os
import signal
import threading
from datetime import datetime
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

from preform_pipeline.clock import SYSTEM_CLOCK
from preform_pipeline.executor import BuildStatus, NullReporter, Runner, RunOptions
from preform_pipeline.simulator.protocol import ProgressCallback

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals only")


class _Hang(ScriptedFaults):
    """``auto_support`` hangs until the server shuts down; ``hanging`` is set once it does."""

    def __init__(self) -> None:
        super().__init__(hang=frozenset({"auto_support"}))
        self.hanging = threading.Event()

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id in self.hang:
            self.hanging.set()
        super().during_operation(operation_id, progress)


class _StoppingPool(FakePool):
    """The fake pool, closed as the real one is: closing stops its servers (which ends
    the operations they were running)."""

    def __init__(self, farm: SimFarm) -> None:
        super().__init__([s.url for s in farm.servers])
        self._farm = farm

    def close(self) -> None:
        super().close()
        for server in self._farm.servers:
            server.shutdown()


class _GraceWatch:
    """The system clock, which tells when the main thread waits out the grace period: once
    armed (just before the first Ctrl-C), its second reading on the main thread is the
    grace loop's (the first sets the end of the grace period)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed = False
        self._reads = 0
        self.in_grace = threading.Event()

    def arm(self) -> None:
        with self._lock:
            self._armed, self._reads = True, 0

    def monotonic(self) -> float:
        if threading.current_thread() is threading.main_thread():
            with self._lock:
                if self._armed:
                    self._reads += 1
                    if self._reads >= 2:
                        self.in_grace.set()
        return SYSTEM_CLOCK.monotonic()

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now()

    def sleep(self, seconds: float) -> None:
        SYSTEM_CLOCK.sleep(seconds)


@posix_only
class TestSecondCtrlC:
    """A second Ctrl-C while running steps get their grace period stops the servers at once
    and says so; the run still returns its result."""

    def test_the_second_ctrl_c_forces_the_stop_and_is_logged(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_support\n  - auto_layout\n"),
                        [write_box(tmp_path / "m", "box0", 10, 10, 10)])
        hang = _Hang()
        farm.add(hang)
        pool = _StoppingPool(farm)
        clock = _GraceWatch()
        # The grace period and the step deadline outlast the test: only Ctrl-C ends the step.
        runner = Runner(
            plan, pool,
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                               cancel_grace_s=WAIT_S * 3, step_timeout_s=WAIT_S * 3),
            reporter=NullReporter(), clock=clock,
        )
        problems: list[str] = []

        def press_ctrl_c_twice() -> None:
            if not hang.hanging.wait(WAIT_S):
                problems.append("auto_support never started")
                return
            clock.arm()
            os.kill(os.getpid(), signal.SIGINT)
            if not clock.in_grace.wait(WAIT_S):
                problems.append("the first Ctrl-C did not start the grace period")
                return
            os.kill(os.getpid(), signal.SIGINT)

        presser = threading.Thread(target=press_ctrl_c_twice, daemon=True)
        presser.start()
        with capture_bound_logs() as logs:
            try:
                result = runner.run()
            except KeyboardInterrupt:
                pytest.fail("a Ctrl-C escaped the run")
        presser.join(WAIT_S)
        assert problems == []
        assert result.cancelled and not result.ok
        assert [(o.status, o.reason) for o in result.outcomes] == [
            (BuildStatus.CANCELLED, "the run was interrupted")
        ]
        assert pool.closed
        said = [(e["event"], e.get("run_id")) for e in logs if e["event"] in (
            "run_cancel_requested", "run_cancel_forced", "run_finished")]
        assert said == [("run_cancel_requested", "run-1"), ("run_cancel_forced", "run-1"),
                        ("run_finished", "run-1")]
        (finished,) = iter_events(logs, "run_finished")
        assert (finished["cancelled"], finished["ok"]) == (True, False)
        # The step that hung was ended by the stop, and no later step was sent.
        assert "auto_layout" not in hang.seen
