"""Two blocking requests of the steps are bounded by the step's time limit, not by the request
limit: a Fuse build's pack and cage, and the rename of the model a dental scan became. A
server that never answers either fails the build's attempt once the step's limit has passed,
instead of holding the build (and its server) until the request limit, ten minutes by
default, ends the request."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_executor_model_edits import SCANS_HEAD
from test_executor_steps_preflight import FUSE_HEAD
from test_executor_steps_requests import ReceivingEngine, _serve

from preform_pipeline.plan.builds import Plan
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.unit.executor.executor_support import (
    HANG_LIMIT_S,
    SimFarm,
    only_attempt_timed_out,
    plan_for,
    run_held,
    write_box,
    write_recipe,
)

__all__: list[str] = []

#: The run's step limit: long enough for the simulator's steps before the held request on a
#: loaded machine (HANG_LIMIT_S; 5 s was five times the slowest seen at load 9-10), short
#: beside the request limit.
STEP_LIMIT_S = HANG_LIMIT_S
#: The run's request limit: what bounds the pack if the step's limit is not handed to it.
REQUEST_LIMIT_S = 300.0
#: How long the test waits for the run to end: many step limits, far short of the request
#: limit, so only a pack bounded by the request limit keeps the run going past it.
RUN_BOUND_S = 60.0


class SilentEngine(ReceivingEngine):
    """A receiving engine that does not answer one operation until the test lets it (a server
    stuck in it); the other operations answer at once."""

    def __init__(self, silent_on: str, **options: Any) -> None:
        super().__init__(**options)
        self.silent_on = silent_on
        #: Set when that operation's request has arrived (the server is now stuck in it).
        self.asked = threading.Event()
        #: Set by the test once it has seen what the run did, so the server's thread ends.
        self.answer = threading.Event()

    def call(
        self, operation_id: str, params: dict[str, str], body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == self.silent_on:
            self.asked.set()
            self.answer.wait(REQUEST_LIMIT_S)
        return super().call(operation_id, params, body, progress)


def _pack_build(tmp_path: Path, _models: Path) -> Plan:
    box = write_box(tmp_path / "m", "box", 20, 20, 10)
    recipe = write_recipe(
        tmp_path, "steps:\n  - pack_and_cage:\n      packing_type: PACK_HEIGHT\n",
        head=FUSE_HEAD,
    )
    return plan_for(recipe, [box])


def _scan_build(tmp_path: Path, models: Path) -> Plan:
    case = tmp_path / "scans" / "C-7"
    case.mkdir(parents=True)
    shutil.copy(models / "dental" / "arch_scan_open.stl", case / "upper.stl")
    recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=SCANS_HEAD)
    return plan_for(recipe, [case])


class TestBlockingRequestsBoundedByTheStepLimit:
    """A pack and cage, or a scanned model's rename, that the server never answers fails its
    build after the step's limit."""

    @pytest.mark.parametrize(("build", "operation"), [
        pytest.param(_pack_build, "pack_and_cage", id="pack_and_cage"),
        pytest.param(_scan_build, "update_model", id="scan_to_model_rename"),
    ])
    def test_the_attempt_fails_at_the_step_limit_not_the_request_limit(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path,
        build: Callable[[Path, Path], Plan], operation: str,
    ) -> None:
        silent = SilentEngine(operation, scene_cache_size=100, fleet_dir=farm.fleet_dir,
                              work_dir=farm.folder / "work-silent")
        _serve(farm, silent)
        plan = build(tmp_path, sample_models_dir)
        with capture_logs() as logs:
            result = run_held(plan, farm, tmp_path / "out", silent.answer, bound_s=RUN_BOUND_S,
                              held_in=operation, step_timeout_s=STEP_LIMIT_S,
                              request_timeout_s=REQUEST_LIMIT_S)
        assert only_attempt_timed_out(result, logs).outputs == ()
        assert silent.asked.is_set()  # the attempt failed in that request, not before it
