"""How each end of a build gives its server back to the real pool: a build that ran counts
towards the server's recycling, one stopped or cancelled before its end does not, and only a
server fault has the server health-checked (``server_failure_reported``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_support import (
    STEP_LIMIT_S,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import BuildOutcome, NullReporter, Runner, RunOptions, RunResult
from preform_pipeline.executor.state import BuildStatus
from preform_pipeline.servers import ServerPool, ServerState, ServerStatus
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from preform_pipeline.simulator.protocol import SimError

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


class _RefusesLayout(ScriptedFaults):
    """A server that refuses every layout as a bad request (a 400: the input, not the
    server, is wrong)."""

    def simulated_error(self, operation_id: str) -> SimError | None:
        if operation_id == "auto_layout":
            return SimError(400, "INVALID_REQUEST", "the layout options are not accepted")
        return super().simulated_error(operation_id)


@pytest.fixture
def pools() -> Iterator[list[ServerPool]]:
    made: list[ServerPool] = []
    yield made
    for pool in made:
        pool.close()


def _run(
    tmp_path: Path, farm: SimFarm, pools: list[ServerPool],
    stop_reason: Callable[[Runner, str], str | None] | None = None, steps: str = STEPS,
) -> tuple[RunResult, ServerStatus, list[dict[str, Any]]]:
    """One build of two boxes on a started pool of one remote simulator (the farm's
    first); the run's result, the server's status after it and the run's events."""
    boxes = [write_box(tmp_path / "m", f"box{i}", 20, 20, 10) for i in range(2)]
    plan = plan_for(write_recipe(tmp_path, steps), boxes)
    settings = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=5.0,
                              remote_wait_s=0.0)
    pool = ServerPool(
        PoolSettings(servers=settings, remotes=(RemoteServer(farm.servers[0].url + "/",
                                                             name="lab"),)),
        handle_signals=False, env={},
    )
    pools.append(pool)
    pool.start()
    holder: list[Runner] = []
    ask = None if stop_reason is None else (lambda build: stop_reason(holder[0], build))
    runner = Runner(plan, pool, options=RunOptions(
        output_root=tmp_path / "out", step_timeout_s=STEP_LIMIT_S, cancel_grace_s=2.0,
        stop_reason=ask), reporter=NullReporter())
    holder.append(runner)
    with capture_bound_logs() as logs:
        result = runner.run()
    (status,) = pool.status()
    return result, status, logs


def _only(result: RunResult) -> BuildOutcome:
    (outcome,) = result.outcomes
    return outcome


class TestBuildsCounted:
    """A build that ran to its end, or failed on its input, counts as one build of its
    server, which goes back idle without a health check."""

    def test_a_finished_build_counts_once(
        self, tmp_path: Path, farm: SimFarm, pools: list[ServerPool]
    ) -> None:
        farm.add()
        result, status, logs = _run(tmp_path, farm, pools)
        assert _only(result).status is BuildStatus.SUCCEEDED
        assert (status.name, status.builds, status.total_builds) == ("lab", 1, 1)
        assert list(iter_events(logs, "server_failure_reported")) == []

    def test_a_refused_request_counts_and_keeps_the_server_healthy(
        self, tmp_path: Path, farm: SimFarm, pools: list[ServerPool]
    ) -> None:
        farm.add(_RefusesLayout())
        result, status, logs = _run(tmp_path, farm, pools)
        outcome = _only(result)
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == (
            "autoLayout refused: INVALID_REQUEST: the layout options are not accepted")
        assert [(a.server, a.error_type) for a in outcome.attempts] == [
            ("lab", "RequestRejectedError")]
        (failed,) = iter_events(logs, "build_failed")
        assert (failed["reason"], failed["error_type"]) == (outcome.reason,
                                                            "RequestRejectedError")
        assert (status.builds, status.total_builds) == (1, 1)
        assert list(iter_events(logs, "server_failure_reported")) == []

    def test_an_internal_error_counts_and_keeps_the_server_healthy(
        self, tmp_path: Path, farm: SimFarm, pools: list[ServerPool]
    ) -> None:
        farm.add()
        seen = farm.faults[0].seen

        def broken(runner: Runner, build: str) -> str | None:
            if "auto_support" in seen:
                raise RuntimeError("the lease check broke")
            return None

        result, status, logs = _run(tmp_path, farm, pools, broken)
        outcome = _only(result)
        assert (outcome.status, outcome.reason) == (
            BuildStatus.FAILED, "internal error: RuntimeError: the lease check broke")
        assert [(a.error, a.error_type) for a in outcome.attempts] == [
            ("the lease check broke", "RuntimeError")]
        (internal,) = iter_events(logs, "build_internal_error")
        assert (internal["build"], internal["log_level"]) == ("unit-001", "error")
        assert (status.builds, status.total_builds) == (1, 1)
        assert list(iter_events(logs, "server_failure_reported")) == []


class TestBuildsNotCounted:
    """A build stopped or cancelled between its steps does not count as a build of its
    server, and the server goes back idle without a health check."""

    def test_a_stopped_build_does_not_count(
        self, tmp_path: Path, farm: SimFarm, pools: list[ServerPool]
    ) -> None:
        farm.add()
        seen = farm.faults[0].seen
        result, status, logs = _run(
            tmp_path, farm, pools,
            lambda runner, build: "lease lost" if "auto_support" in seen else None)
        outcome = _only(result)
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED, "lease lost")
        assert [(a.server, a.error) for a in outcome.attempts] == [("lab", None)]
        assert (status.state, status.builds, status.total_builds) == (ServerState.IDLE, 0, 0)
        assert list(iter_events(logs, "server_failure_reported")) == []

    def test_a_cancelled_build_does_not_count(
        self, tmp_path: Path, farm: SimFarm, pools: list[ServerPool]
    ) -> None:
        farm.add()
        seen = farm.faults[0].seen

        def cancel_after_support(runner: Runner, build: str) -> str | None:
            if "auto_support" in seen:
                runner.cancel()
            return None

        result, status, logs = _run(tmp_path, farm, pools, cancel_after_support)
        outcome = _only(result)
        assert (outcome.status, outcome.reason) == (BuildStatus.CANCELLED,
                                                    "the run was interrupted")
        assert [(a.server, a.error) for a in outcome.attempts] == [("lab", None)]
        assert (status.builds, status.total_builds) == (0, 0)
        assert list(iter_events(logs, "server_failure_reported")) == []


class TestServerFault:
    """A server fault (a 500) has the server health-checked with the error, is logged with
    the attempt, the error and its type, and the retry on the checked server counts once."""

    def test_a_server_fault_is_reported_with_its_error_and_the_retry_counts(
        self, tmp_path: Path, farm: SimFarm, pools: list[ServerPool]
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        result, status, logs = _run(tmp_path, farm, pools)
        outcome = _only(result)
        assert outcome.status is BuildStatus.SUCCEEDED
        (first, second) = outcome.attempts
        assert (first.server, first.error_type, second.error) == (
            "lab", "ServerInternalError", None)
        assert first.error is not None and "scripted fault in auto_layout" in first.error
        (failed,) = iter_events(logs, "build_attempt_failed")
        assert (failed["attempt"], failed["error"], failed["error_type"]) == (
            1, first.error, "ServerInternalError")
        (reported,) = iter_events(logs, "server_failure_reported")
        assert (reported["server"], reported["error"], reported["error_type"]) == (
            "lab", first.error, "ServerInternalError")
        (retrying,) = iter_events(logs, "build_retrying")
        assert retrying["reason"].startswith("autoLayout failed on lab: server answered 500 ")
        assert (status.state, status.builds, status.total_builds) == (ServerState.IDLE, 1, 1)
