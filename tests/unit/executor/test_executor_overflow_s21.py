"""Shedding a build's overflow against two servers the other tests do not meet: one whose
"does not fit" answer carries only its code (the Local API's ErrorModel makes the message
optional), and one that never answers the delete that takes a model out of the scene."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
from test_executor_overflow_shed import SIZES, RefusingEngine, _full, _plan, _run
from test_executor_steps_drain_holes import engine_options
from test_executor_steps_requests import _serve

# The step-limit tests' limits: a step limit far below the request limit and the test's bound.
from test_executor_steps_s16_step_limit import REQUEST_LIMIT_S, RUN_BOUND_S, STEP_LIMIT_S

from preform_pipeline.executor import BuildStatus
from preform_pipeline.simulator.layout import MODELS_DO_NOT_FIT
from preform_pipeline.simulator.protocol import Json, ProgressCallback, SimError
from tests.unit.executor.executor_support import (
    SimFarm,
    iter_events,
    only_attempt_timed_out,
    run_held,
)

__all__: list[str] = []


class CodeOnlyRefusal(SimError):
    """A "does not fit" answer whose ErrorModel holds the code and no message."""

    def __init__(self) -> None:
        super().__init__(400, MODELS_DO_NOT_FIT, "")

    def body(self) -> Json:
        return {"error": {"code": self.code}}


class CodeOnlyEngine(RefusingEngine):
    """The simulator, whose first layout is refused with a code-only answer."""

    def __init__(self, **options: Any) -> None:
        super().__init__([], **options)
        self._refused = False

    def call(
        self, operation_id: str, params: dict[str, str], body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "auto_layout":
            with self._lock:
                refuse, self._refused = not self._refused, True
                if refuse:
                    self.received.append((operation_id, body))
            if refuse:
                raise CodeOnlyRefusal()
        return super().call(operation_id, params, body, progress)


class StuckDeleteEngine(RefusingEngine):
    """The simulator, whose first layout does not fit and which never answers a model's
    delete until the test lets it (a server stuck in it)."""

    def __init__(self, **options: Any) -> None:
        super().__init__([_full()], **options)
        #: Set when the delete has arrived (the server is now stuck in it).
        self.asked = threading.Event()
        #: Set by the test once it has seen what the run did, so the server's thread ends.
        self.answer = threading.Event()

    def call(
        self, operation_id: str, params: dict[str, str], body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "delete_model":
            self.asked.set()
            self.answer.wait(REQUEST_LIMIT_S)
        return super().call(operation_id, params, body, progress)


class TestCodeOnlyAnswer:
    """A "does not fit" answer without a message names no model: the largest is carried."""

    def test_the_largest_part_is_carried_and_the_rest_is_saved(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = CodeOnlyEngine(**engine_options(farm))
        _serve(farm, engine)
        result, logs = _run(_plan(tmp_path, SIZES), farm, tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.SUCCEEDED, parent.reason
        assert sorted(parent.models) == ["mid.stl", "small.stl", "tall.stl"]
        assert [o.name for o in result.outcomes] == ["unit-001", "unit-001+1"]
        carry = result.outcome("unit-001+1")
        assert carry.status is BuildStatus.SUCCEEDED, carry.reason
        assert carry.models == ("wide.stl",)
        assert [(e["carried"], e["staying"]) for e in iter_events(logs, "overflow_carried")] \
            == [(["wide.stl"], 3)]
        assert parent.layout_calls == 2
        assert len(engine.bodies("delete_model")) == 1


class TestStuckDelete:
    """A delete of a shed model that the server never answers fails the build's attempt
    after the step's limit, not the request limit."""

    def test_the_attempt_fails_at_the_step_limit(self, tmp_path: Path, farm: SimFarm) -> None:
        stuck = StuckDeleteEngine(**engine_options(farm))
        _serve(farm, stuck)
        plan = _plan(tmp_path, SIZES)
        with capture_logs() as logs:
            result = run_held(plan, farm, tmp_path / "out", stuck.answer, bound_s=RUN_BOUND_S,
                              held_in="the delete", step_timeout_s=STEP_LIMIT_S,
                              request_timeout_s=REQUEST_LIMIT_S)
        assert only_attempt_timed_out(result, logs).name == "unit-001"
        assert stuck.asked.is_set()  # the attempt failed in the delete, not before it
