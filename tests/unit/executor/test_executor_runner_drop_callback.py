"""Who is told when a case leaves its build (``on_model_failure: drop_case``): the run's
``on_model_dropped`` gets the build, each file and the same reason the outcome keeps."""

from __future__ import annotations

from pathlib import Path

from executor_support import FakePool, SimFarm, run
from test_executor_drop_case import _plan

from preform_pipeline.executor import BuildStatus


class TestDropCallback:
    """Each dropped file is handed on with its build's name and the outcome's reason."""

    def test_the_callback_gets_what_the_outcome_records(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = _plan(tmp_path, "drop_case")
        farm.add()
        told: list[tuple[str, Path, str]] = []
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     on_model_dropped=lambda build, path, why: told.append((build, path, why)))
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert sorted(told) == sorted((outcome.name, Path(p), why) for p, why in outcome.dropped)
        assert len(told) == 2 and all(why.startswith("case ") for _, _, why in told)
