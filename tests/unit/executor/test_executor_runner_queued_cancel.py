"""A cancelled run that returns while a step is still stuck on its server (a remote server
the pool cannot stop): the builds still queued behind it are dropped with the run, and never
start once the stuck step ends after the run has finished."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

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
from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    NullReporter,
    Runner,
    RunOptions,
    RunResult,
)

#: One box per build: three builds queue for the one server.
ONE_PER_BUILD = "steps:\n  - auto_layout\n  - save_form\nbatching: {max_models_per_build: 1}\n"

UNFINISHED = "the run was interrupted before this build finished"


class _HurriedClock:
    """The system clock, until :meth:`hurry`: from then on each reading is a second later
    than the one before, so the run's wind-down (its grace period, then its wait for the
    workers after the pool is closed) is over in a few slices instead of seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ahead = 0.0
        self._hurried = False

    def hurry(self) -> None:
        with self._lock:
            self._hurried = True

    def monotonic(self) -> float:
        with self._lock:
            if self._hurried:
                self._ahead += 1.0
            return SYSTEM_CLOCK.monotonic() + self._ahead

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now()

    def sleep(self, seconds: float) -> None:
        SYSTEM_CLOCK.sleep(seconds)


class _CancelAtLayout(NullReporter):
    """Cancels the run as the first layout starts (a person's Ctrl-C), and notes in order
    what it is told: builds started and finished, and the run's end."""

    def __init__(self, clock: _HurriedClock) -> None:
        self.clock = clock
        self.runner: Runner | None = None
        self.told: list[tuple[str, str]] = []

    def build_started(self, build: str, *, server: str, attempt: int, steps: int) -> None:
        self.told.append(("build_started", build))

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        if step == "auto_layout":
            assert self.runner is not None
            self.clock.hurry()
            self.runner.cancel()

    def build_finished(self, outcome: BuildOutcome) -> None:
        self.told.append(("build_finished", outcome.name))

    def run_finished(self, result: RunResult) -> None:
        self.told.append(("run_finished", result.run_id))


class TestQueuedBuildsOfACancelledRun:
    """Builds queued behind a stuck step when a cancelled run returns never start: not
    while the run winds down, and not after it, when the stuck step finally ends."""

    def test_the_queued_builds_never_start_after_the_run_finished(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 20, 20, 10) for i in range(3)]
        plan = plan_for(write_recipe(tmp_path, ONE_PER_BUILD), boxes)
        assert len(plan.builds) == 3
        # The layout never ends until the server shuts down, which the fake pool's close
        # does not do (as a remote server's step outlives the pool's close).
        farm.add(ScriptedFaults(hang=frozenset({"auto_layout"})))
        clock = _HurriedClock()
        reporter = _CancelAtLayout(clock)
        runner = Runner(plan, FakePool([s.url for s in farm.servers]),
                        options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                           step_timeout_s=30.0, cancel_grace_s=2.0),
                        reporter=reporter, clock=clock)
        reporter.runner = runner
        before = set(threading.enumerate())
        with capture_bound_logs() as logs:
            result = runner.run()
            ((_, stuck),) = [t for t in reporter.told if t[0] == "build_started"]
            queued = {b.name for b in plan.builds} - {stuck}
            # The run has returned: its builds are all unfinished, the stuck one included.
            assert result.cancelled
            assert {o.name: (o.status, o.reason) for o in result.outcomes} == {
                b.name: (BuildStatus.CANCELLED, UNFINISHED) for b in plan.builds}
            # Now the stuck layout ends (its server stops), and every thread the run
            # started is given the time to run whatever it still has.
            farm.close()
            for thread in set(threading.enumerate()) - before:
                thread.join(WAIT_S)
                assert not thread.is_alive(), f"{thread.name} still runs"
        assert [e for e in logs if e.get("build") in queued] == []
        assert [e["build"] for e in iter_events(logs, "build_started")] == [stuck]
        assert [name for what, name in reporter.told if name in queued] == []
        # The run's last word is its own: the stuck build, ending after it, is only logged.
        assert reporter.told == [("build_started", stuck), ("run_finished", "run-1")]
        ((late),) = iter_events(logs, "build_finished_after_run")
        assert (late["build"], late["status"], late.get("reason")) == (
            stuck, BuildStatus.CANCELLED.value, "the run was interrupted")
