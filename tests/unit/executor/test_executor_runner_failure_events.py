"""What a build's step failure leaves behind: the event a log reader filters on, the attempt
in the build's report, and, for a print without an answer, the cause the pool is told."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from executor_support import (
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import BuildStatus
from tests.recipe_texts import full_steps


@pytest.fixture
def parts(sample_models_dir: Path) -> Iterator[list[Path]]:
    """Three small batch parts: one build."""
    yield sorted((sample_models_dir / "batch").glob("part_*.stl"))[:3]


class TestAPrintWithoutAnAnswer:
    """An unanswered print is logged as an error, recorded on its attempt, and its cause is
    what the pool hears about the server."""

    def test_the_event_the_attempt_and_the_pool_s_cause(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        farm.add(ScriptedFaults(fail={"print": 1}))
        pool = FakePool([s.url for s in farm.servers])
        with capture_bound_logs() as logs:
            result = run(plan_for(write_recipe(tmp_path, full_steps(3)), parts), pool,
                         tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.PRINT_UNCONFIRMED
        (event,) = iter_events(logs, "print_unconfirmed")
        assert (event["log_level"], event["reason"]) == ("error", outcome.reason)
        (attempt,) = outcome.attempts
        assert (attempt.error_type, attempt.error) == ("StepFailure", outcome.reason)
        assert pool.failures == [("server-1", "ServerInternalError")]


class TestAFailedStep:
    """A build whose step fails for good logs one ``build_failed`` with the build's reason."""

    def test_one_warning_with_the_reason_the_report_gives(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - estimate:\n"
                                        "      max_print_time_s: 1\n")
        box = write_box(tmp_path / "m", "box0", 10, 10, 10)
        with capture_bound_logs() as logs:
            result = run(plan_for(recipe, [box]), FakePool([s.url for s in farm.servers]),
                         tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        (failed,) = iter_events(logs, "build_failed")
        assert (failed["log_level"], failed["reason"]) == ("warning", outcome.reason)
