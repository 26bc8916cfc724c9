"""How a run ends: quietly, with nothing but its own events (no traceback from the threads
its builds ran on)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from executor_support import (
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import BuildStatus


class TestQuietEnd:
    """Builds that end hand their outcome to the run and print no traceback of their own."""

    def test_builds_that_end_leave_no_error_in_the_standard_logging(
        self, tmp_path: Path, farm: SimFarm, caplog: pytest.LogCaptureFixture
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)]
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_layout\nbatching:\n"
                                               "  max_models_per_build: 1\n"), boxes)
        farm.add()
        caplog.set_level(logging.WARNING)
        with capture_bound_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        assert [o.status for o in result.outcomes] == [BuildStatus.SUCCEEDED] * 2
        assert [e["status"] for e in iter_events(logs, "build_finished")] == ["succeeded"] * 2
        # A callback that fails as a build's thread ends is printed with its traceback by
        # the standard library (logger concurrent.futures): none may reach the person.
        assert [(r.name, r.getMessage()) for r in caplog.records] == []
