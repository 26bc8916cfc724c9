"""A build's attempts, from the lease to the last retry: what the build's outcome says when
no server can be had, when the pool is closing, when the run is cancelled between two
attempts, and when every attempt failed."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog
from executor_support import (
    STEP_LIMIT_S,
    WAIT_S,
    FakeLease,
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)
from structlog.testing import LogCapture

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import LeaseTimeoutError, PoolExhaustedError
from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    NullReporter,
    Runner,
    RunOptions,
    RunResult,
)
from preform_pipeline.plan.builds import Plan

STEPS = "steps:\n  - auto_orient\n  - auto_layout\n"


class _RealPoolErrors(FakePool):
    """The fake pool, refusing a lease with the errors the real pool raises (message and
    hint): a lease timeout, and a pool whose every server is retired."""

    def lease(self, timeout: float | None = None) -> FakeLease:
        try:
            return super().lease(timeout)
        except TimeoutError:
            raise LeaseTimeoutError(
                f"no server became free within {timeout:g} s (server-1 leased)",
                hint="raise the lease timeout or servers.count",
            ) from None
        except PoolExhaustedError:
            raise PoolExhaustedError(
                "every server of the pool is retired (server-1: crashed 3 times)",
                hint="see the server_retired log events",
            ) from None


class _CancelOnRetry(NullReporter):
    """Cancels the run when it is told a build will be retried (a Ctrl-C at that moment)."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.retries: list[tuple[str, int, str, str]] = []

    def build_retry(
        self, build: str, *, attempt: int, reason: str, where: str = "on another server"
    ) -> None:
        self.retries.append((build, attempt, reason, where))
        if self.runner is not None:
            self.runner.cancel()


def _plan(tmp_path: Path) -> Plan:
    return plan_for(write_recipe(tmp_path, STEPS), [write_box(tmp_path / "m", "box0", 10, 10, 10)])


def _run(plan: Plan, pool: FakePool, tmp_path: Path, **options: Any) -> tuple[
    RunResult, list[dict[str, Any]]
]:
    runner = Runner(plan, pool, options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                                   step_timeout_s=STEP_LIMIT_S, **options),
                    reporter=NullReporter(), clock=ManualClock())
    with capture_bound_logs() as logs:
        result = runner.run()
    return result, logs


def _only(result: RunResult) -> BuildOutcome:
    (outcome,) = result.outcomes
    return outcome


class TestNoServer:
    """A build that cannot lease a server fails with the pool's reason, never having run."""

    def test_a_lease_timeout_fails_the_build_with_the_pools_words(self, tmp_path: Path) -> None:
        pool = _RealPoolErrors(["http://127.0.0.1:9"])
        held = pool.lease(WAIT_S)  # another run holds the only server
        result, logs = _run(_plan(tmp_path), pool, tmp_path, lease_timeout_s=0.05)
        held.release()
        outcome = _only(result)
        assert (outcome.status, outcome.attempts, outcome.server) == (BuildStatus.FAILED, (), None)
        assert outcome.reason == ("no server became free within 0.05 s (server-1 leased) "
                                  "(raise the lease timeout or servers.count)")
        (finished,) = iter_events(logs, "build_finished")
        assert (finished["status"], finished["reason"]) == ("failed", outcome.reason)
        assert not result.ok and not result.cancelled

    def test_a_pool_with_every_server_retired_names_why_without_the_hint(
        self, tmp_path: Path
    ) -> None:
        pool = _RealPoolErrors(["http://127.0.0.1:9"])
        pool.retire("server-1")
        result, _ = _run(_plan(tmp_path), pool, tmp_path)
        outcome = _only(result)
        assert (outcome.status, outcome.attempts) == (BuildStatus.FAILED, ())
        assert outcome.reason == (
            "no server left: every server of the pool is retired (server-1: crashed 3 times)")

    def test_a_closed_pool_ends_the_build_as_interrupted(self, tmp_path: Path) -> None:
        pool = FakePool(["http://127.0.0.1:9"])
        pool.close()  # what a pool refuses leases with while the run is being stopped
        result, logs = _run(_plan(tmp_path), pool, tmp_path)
        outcome = _only(result)
        assert (outcome.status, outcome.reason, outcome.attempts) == (
            BuildStatus.CANCELLED, "the run was interrupted", ())
        (finished,) = iter_events(logs, "build_finished")
        assert finished["status"] == "cancelled"

#: What a server scripted to fail ``auto_orient`` answers, with the client's hint.
SCRIPTED_500 = ("server answered 500 SCRIPTED_FAULT: scripted fault in auto_orient (the server "
                "failed; retry on another server or restart this one)")


class TestBetweenAttempts:
    """A retry is announced with its reason; a cancel before it starts ends the build."""

    def test_a_cancel_while_the_retry_is_announced_starts_no_second_attempt(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_orient": 1}))
        farm.add()
        reporter = _CancelOnRetry()
        runner = Runner(
            _plan(tmp_path), FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                               step_timeout_s=STEP_LIMIT_S, cancel_grace_s=1.0),
            reporter=reporter, clock=ManualClock(),
        )
        reporter.runner = runner
        with capture_bound_logs() as logs:
            result = runner.run()
        outcome = _only(result)
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED,
                                                    "the run was interrupted")
        assert [a.server for a in outcome.attempts] == ["server-1"]
        assert farm.faults[1].seen == []  # the second server was never asked
        error = f"autoOrient failed on server-1: {SCRIPTED_500}"
        assert reporter.retries == [("unit-001", 2, error, "on another server")]
        (retrying,) = iter_events(logs, "build_retrying")
        assert (retrying["build"], retrying["attempt"], retrying["where"], retrying["reason"]) == (
            "unit-001", 2, "on another server", error)

    def test_the_last_attempts_error_is_the_reason_it_gave_up(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_orient": 9}))
        farm.add(ScriptedFaults(fail={"auto_orient": 9}))
        result, logs = _run(_plan(tmp_path), FakePool([s.url for s in farm.servers]), tmp_path,
                            max_build_attempts=2)
        outcome = _only(result)
        assert outcome.status is BuildStatus.FAILED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        last = outcome.attempts[-1]
        assert last.error_type == "ServerInternalError"
        # the step, the server and what it answered, in words: no class name, no address
        assert outcome.reason == (
            f"gave up after 2 attempts; last: autoOrient failed on server-2: {SCRIPTED_500}")
        # one retry announced: none after the last attempt
        assert [e["attempt"] for e in iter_events(logs, "build_retrying")] == [2]
        assert [e["attempt"] for e in iter_events(logs, "build_attempt_failed")] == [1, 2]

    def test_a_retry_back_on_the_only_server_says_so(self, tmp_path: Path, farm: SimFarm) -> None:
        farm.add(ScriptedFaults(fail={"auto_orient": 1}))
        reporter = _CancelOnRetry()  # never cancels: it has no runner
        runner = Runner(
            _plan(tmp_path), FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", step_timeout_s=STEP_LIMIT_S),
            reporter=reporter, clock=ManualClock(),
        )
        with capture_bound_logs() as logs:
            outcome = _only(runner.run())
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-1"]
        assert [(r[1], r[3]) for r in reporter.retries] == [(2, "on server-1")]
        assert [e["where"] for e in iter_events(logs, "build_retrying")] == ["on server-1"]

    def test_a_cancel_as_the_last_attempt_fails_ends_the_build_cancelled(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_orient": 9}))
        runner = Runner(
            _plan(tmp_path), FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", step_timeout_s=STEP_LIMIT_S,
                               max_build_attempts=2, cancel_grace_s=1.0),
            reporter=NullReporter(), clock=ManualClock(),
        )

        def ctrl_c_at_the_last_failure(
            _logger: object, _method: str, event: MutableMapping[str, Any]
        ) -> MutableMapping[str, Any]:
            # A Ctrl-C that comes as the last attempt's failure is being logged.
            if event["event"] == "build_attempt_failed" and event["attempt"] == 2:
                runner.cancel()
            return event

        capture = LogCapture()
        old = structlog.get_config()
        structlog.configure(processors=[ctrl_c_at_the_last_failure, capture])
        try:
            result = runner.run()
        finally:
            structlog.configure(**old)
        outcome = _only(result)
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED,
                                                    "the run was interrupted")
        assert len(outcome.attempts) == 2 and result.cancelled
        assert [e["attempt"] for e in capture.entries
                if e["event"] == "build_attempt_failed"] == [1, 2]
