"""The preparation steps run whole in session 15 (auto_orient, auto_support, scan_to_model):
the options a recipe sets reach the server as written, and an orientation or a scan the
request limit cut short is polled on the retry, as the other long steps are."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_executor_blocking_steps import _polled
from test_executor_model_edits import SCANS_HEAD
from test_executor_steps_requests import ReceivingEngine, _run
from test_executor_steps_requests import engine as engine  # the fixture

from preform_pipeline.executor import BuildStatus
from tests.unit.executor.executor_support import (
    HANG_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)


class TestPreparationOptions:
    """The orientation's and the supports' options are the ones the recipe wrote, in the
    requests the server receives."""

    def test_dental_orientation_and_support_options_reach_the_server(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 20, 10, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_orient:\n      mode: DENTAL\n      tilt: 10\n"
            "  - auto_support:\n      density: 0.8\n      raft_type: MINI_RAFT\n"
            "      touchpoint_size_mm: 0.4\n  - save_form\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("auto_orient") == [{"mode": "DENTAL", "tilt": 10}]
        assert engine.bodies("auto_support") == [
            {"density": 0.8, "raft_type": "MINI_RAFT", "touchpoint_size_mm": 0.4}
        ]


class TestOrientationPolledAfterTheRequestLimit:
    """An orientation sent as one blocking request and ended by the request limit (shorter
    than the step's deadline) is sent with ``?async=true`` and polled on the retry."""

    def test_the_retry_polls_the_orientation(self, tmp_path: Path, farm: SimFarm) -> None:
        box = write_box(tmp_path / "m", "box", 20, 10, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - auto_orient\n  - save_form\n")
        farm.add(ScriptedFaults(hang=frozenset({"auto_orient"})))
        farm.add()
        result = run(plan_for(recipe, [box]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out", request_timeout_s=HANG_LIMIT_S)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert outcome.attempts[0].error_type == "ServerTimeoutError"
        # Only the step the limit cut short: the save after it is still one request.
        assert _polled(farm.faults[1].seen) == {"auto_orient"}
        assert [p.name for p in outcome.outputs] == ["unit-001.form"]


class TestScanPolledAfterTheRequestLimit:
    """A scan-to-model sent as one blocking request and ended by the request limit is
    polled on the retry; the case's scan still becomes its one named model."""

    def test_the_retry_polls_the_scan(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path
    ) -> None:
        case = tmp_path / "scans" / "C-7"
        case.mkdir(parents=True)
        shutil.copy(sample_models_dir / "dental" / "arch_scan_open.stl", case / "upper.stl")
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=SCANS_HEAD)
        farm.add(ScriptedFaults(hang=frozenset({"scan_to_model"})))
        farm.add()
        result = run(plan_for(recipe, [case]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out", request_timeout_s=HANG_LIMIT_S)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert outcome.attempts[0].error_type == "ServerTimeoutError"
        assert _polled(farm.faults[1].seen) == {"scan_to_model"}
        assert outcome.models == ("upper.stl",)
