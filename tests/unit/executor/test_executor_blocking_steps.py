"""A build's operations are single blocking requests on clients shared per server; a step
the request limit may have cut short is polled on its retry."""

from __future__ import annotations

from pathlib import Path

from executor_support import (
    HANG_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    plan_for,
    run,
    write_recipe,
)

from preform_pipeline.executor import BuildStatus
from tests.recipe_texts import full_steps

#: A whole job but the screenshot (slow to draw on a loaded machine), two models per build.
RECIPE = full_steps(2).replace("  - screenshot\n", "")


def _polled(seen: list[str]) -> set[str]:
    """The operations a server saw polled: each one followed by ``get_operation`` requests."""
    polled: set[str] = set()
    last = ""
    for operation in seen:
        if operation == "get_operation":
            polled.add(last)
        else:
            last = operation
    return polled


def _pool(farm: SimFarm, *faults: ScriptedFaults | None) -> FakePool:
    for fault in faults:
        farm.add(fault)
    return FakePool([s.url for s in farm.servers])


class TestNoPolls:
    """Every step of a whole job but the print is awaited in one request, never polled."""

    def test_a_whole_job_sends_no_operation_polls_and_checks_the_version_once(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        assert "screenshot" not in RECIPE
        plan = plan_for(write_recipe(tmp_path, RECIPE), parts[:6])
        assert len(plan.builds) == 3
        pool = _pool(farm, None)

        result = run(plan, pool, tmp_path / "out")

        assert result.ok
        seen = farm.faults[0].seen
        # The print (followed by the printing module's own rules) is the one polled request.
        assert _polled(seen) == {"print"}
        for operation in ("auto_orient", "auto_support", "auto_layout", "get_print_validation",
                          "estimate_print_time"):
            assert seen.count(operation) == 3, operation
        # One server, three builds in turn: its version is read once, not once per build.
        assert seen.count("get_api_version") == 1


class TestRequestLimit:
    """A blocking step cut short by the request limit, not its deadline, is polled next time."""

    def test_the_retry_polls_the_step_that_outlived_the_request_limit(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, RECIPE), parts[:2])
        pool = _pool(farm, ScriptedFaults(hang=frozenset({"auto_support"})), None)

        result = run(plan, pool, tmp_path / "out", request_timeout_s=HANG_LIMIT_S)

        outcome = result.outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert outcome.attempts[0].error_type == "ServerTimeoutError"
        # Only that step kind: the layout after it is still one blocking request.
        assert _polled(farm.faults[1].seen) == {"auto_support", "print"}

    def test_a_hang_within_the_request_limit_is_retried_blocking(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, RECIPE), parts[:2])
        pool = _pool(farm, ScriptedFaults(hang=frozenset({"auto_support"})), None)

        result = run(plan, pool, tmp_path / "out", step_timeout_s=HANG_LIMIT_S)

        outcome = result.outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert outcome.attempts[0].error_type == "ServerTimeoutError"
        assert "deadline" in (outcome.attempts[0].error or "")
        assert _polled(farm.faults[1].seen) == {"print"}
