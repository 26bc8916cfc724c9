"""A build that fails through its own fault (a model too large for an empty platform) on the
real pool: the build says which model and why, the runner logs ``model_does_not_fit``, and
the server goes back idle without a health check, since nothing was wrong with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_support import (
    STEP_LIMIT_S,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_without_rafts,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import BuildOutcome, NullReporter, Runner, RunOptions
from preform_pipeline.executor.state import BuildStatus
from preform_pipeline.servers import ServerPool, ServerStatus
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings

#: One layout attempt under ``on_overflow: split``: a single model has nothing to carry on.
NEVER_FITS = """\
steps:
  - auto_support
  - auto_layout
  - save_form
batching:
  spacing_mm: 2
  margin_mm: 0
  layout_attempts: 1
  on_overflow: split
"""


@pytest.fixture
def pool(farm: SimFarm) -> Iterator[ServerPool]:
    """A started pool of one remote server, the farm's first simulator, named ``lab``; no
    periodic health checks, so any check it makes is one a build asked for."""
    farm.add()
    settings = ServerSettings(count=0, health_interval_s=0.0, health_timeout_s=5.0,
                              remote_wait_s=0.0)
    started = ServerPool(
        PoolSettings(servers=settings, remotes=(RemoteServer(farm.servers[0].url + "/",
                                                             name="lab"),)),
        handle_signals=False, env={},
    )
    started.start()
    yield started
    started.close()


def _run_too_wide(
    tmp_path: Path, pool: ServerPool
) -> tuple[BuildOutcome, ServerStatus, list[dict[str, Any]]]:
    """One build of one 199 mm wide box, planned as if it had no raft (so the planner lets
    it through) and laid out with its raft (so it never fits the 200 mm platform)."""
    box = write_box(tmp_path / "m", "wide", 199, 100, 10)
    plan = plan_without_rafts(write_recipe(tmp_path, NEVER_FITS), [box])
    runner = Runner(plan, pool, options=RunOptions(output_root=tmp_path / "out",
                                                   step_timeout_s=STEP_LIMIT_S, cancel_grace_s=2.0),
                    reporter=NullReporter())
    with capture_bound_logs() as logs:
        result = runner.run()
    (outcome,) = result.outcomes
    (status,) = pool.status()
    return outcome, status, logs


class TestModelTooLargeForAnyPlatform:
    """A model that does not fit an empty platform fails its build at once, with a warning
    that names the build and gives the same reason the person reads."""

    def test_the_warning_names_the_build_and_the_reason(
        self, tmp_path: Path, pool: ServerPool
    ) -> None:
        outcome, _, logs = _run_too_wide(tmp_path, pool)
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason is not None
        assert outcome.reason.startswith("wide.stl does not fit an empty platform: ")
        (warning,) = iter_events(logs, "model_does_not_fit")
        assert (warning["build"], warning["reason"], warning["log_level"]) == (
            "unit-001", outcome.reason, "warning")
        assert outcome.children == () and len(outcome.attempts) == 1


class TestBuildFaultKeepsTheServerHealthy:
    """A build that fails through its own fault gives its server back healthy: the pool
    reports no server failure, spends no health check on it, and counts the build."""

    def test_the_server_is_not_reported_and_counts_the_build(
        self, tmp_path: Path, pool: ServerPool
    ) -> None:
        outcome, status, logs = _run_too_wide(tmp_path, pool)
        assert outcome.status is BuildStatus.FAILED and outcome.reason is not None
        (attempt,) = outcome.attempts
        assert attempt.server == "lab" and attempt.error == outcome.reason.split(": ", 1)[1]
        assert list(iter_events(logs, "server_failure_reported")) == []
        assert (status.name, status.builds, status.total_builds) == ("lab", 1, 1)
