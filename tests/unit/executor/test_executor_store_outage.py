"""A build cut off by the job store records whether the store was away or said no."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from executor_support import FakePool, SimFarm, plan_for, run, write_recipe

from preform_pipeline.errors import (
    InvalidTransitionError,
    LeaseLostError,
    StoreConflictError,
    StoreError,
)
from preform_pipeline.executor import BuildOutcome, BuildStatus
from tests.recipe_texts import full_steps


def _failing_after(
    error: Exception, after_step: str, seen: list[str]
) -> Callable[[str], str | None]:
    """A stop check that raises ``error`` once the server has seen ``after_step``, the way
    a store-backed check fails when its database goes away mid-build."""

    def check(build: str) -> str | None:
        if after_step in seen:
            raise error
        return None

    return check


def _last_attempt_after(
    farm: SimFarm, tmp_path: Path, parts: list[Path], error: Exception
) -> tuple[BuildOutcome, SimFarm]:
    """Run one build whose stop check raises ``error`` after the orient step."""
    farm.add(None)
    plan = plan_for(write_recipe(tmp_path, full_steps(3)), parts[:3])
    pool = FakePool([s.url for s in farm.servers])
    check = _failing_after(error, "auto_orient", farm.faults[0].seen)
    result = run(plan, pool, tmp_path / "out", stop_reason=check)
    (outcome,) = result.outcomes
    return outcome, farm


class TestStoreOutageIsRecorded:
    """The attempt says the store was away only when the store could not answer."""

    def test_a_store_that_cannot_be_reached_marks_the_attempt_as_an_outage(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        error = StoreError("cannot reach the PostgreSQL job store while reading build 1")
        outcome, farm = _last_attempt_after(farm, tmp_path, parts, error)
        assert outcome.status is BuildStatus.FAILED
        assert outcome.attempts[-1].store_outage
        assert "cannot reach the PostgreSQL job store" in (outcome.reason or "")
        assert farm.jobs() == []

    @pytest.mark.parametrize(
        "error",
        [
            StoreConflictError("build 1", ["preparing"], "cancelled"),
            LeaseLostError(1, "node-a", 3, why="another node reclaimed it"),
            InvalidTransitionError("build 1", "done", "preparing"),
        ],
        ids=["conflict", "lease-lost", "invalid-transition"],
    )
    def test_a_store_that_answered_no_is_not_an_outage(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path], error: StoreError
    ) -> None:
        outcome, farm = _last_attempt_after(farm, tmp_path, parts, error)
        assert outcome.status is BuildStatus.FAILED
        assert not outcome.attempts[-1].store_outage
        assert farm.jobs() == []
