"""When an overflow is carried on and when it fails the build, run whole in session 14: only
an auto_layout of several models under ``on_overflow: split`` takes models out; a build of
one model that never fits fails with the count of attempts and the last spacing, and an SLS
pack that never fits is halved by the runner."""

from __future__ import annotations

from pathlib import Path

import test_executor_blocking_steps as blocking_tests
from test_executor_steps_preflight import FUSE_HEAD
from test_executor_steps_requests import ProgressRecorder, _run
from test_executor_steps_scene_layout import NEVER_FITS, _one_build, _receiving

from preform_pipeline.executor import BuildStatus
from tests.unit.executor.executor_support import (
    HANG_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    plan_for,
    plan_without_rafts,
    run,
    write_box,
    write_recipe,
)


class TestNothingToCarry:
    """A single model that never fits, even under ``on_overflow: split``, fails the build
    with the layout's own reason (attempts, last spacing): there is no other model to carry
    on, so no model is taken out first."""

    def test_the_reason_counts_the_attempts(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 2", attempts=2, overflow="split"))
        # Fits the 200 mm platform bare, never with its raft.
        box = write_box(tmp_path / "m", "wide", 199, 100, 10)
        result = run(plan_without_rafts(recipe, [box]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        (outcome,) = result.outcomes
        refusal = engine.refusals["auto_layout"]
        assert outcome.status is BuildStatus.FAILED
        # The runner names the model; the layout step's own reason follows.
        assert outcome.reason == (
            "wide.stl does not fit an empty platform: 1 model does not fit after 2 layout "
            f"attempts (last spacing 1 mm): {refusal}")
        assert [b["model_spacing_mm"] for b in engine.bodies("auto_layout")] == [2.0, 1.0]
        assert outcome.children == ()
        assert engine.bodies("delete_model") == []


class TestPackNeverCarried:
    """An SLS auto_pack that never fits is handed back to the runner, which halves the build,
    even under ``on_overflow: split``: no model is taken out of its scene to be carried on."""

    def test_the_build_is_halved_without_deleting_models(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_pack:\n      model_spacing_mm: 2\n  - save_form\n"
            "batching:\n  layout_attempts: 1\n  on_overflow: split\n",
            head=FUSE_HEAD,
        )
        boxes = [write_box(tmp_path / "m", f"tall{i}", 150, 150, 200) for i in range(2)]
        plan = _one_build(plan_without_rafts(recipe, boxes))
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        outcome = result.outcome("unit-001")
        # The step hands the overflow to the runner, which halves the build: nothing is
        # taken out of the scene and carried on as a "+1" build.
        assert outcome.status is BuildStatus.SPLIT
        assert outcome.children == ("unit-001.1", "unit-001.2")
        assert (outcome.reason or "").startswith(
            "2 models do not fit after 1 layout attempt (last spacing 2 mm): ")
        assert engine.bodies("delete_model") == []


class TestPackPolledAfterTheRequestLimit:
    """An SLS auto_pack the request limit cut short is polled on the retry, on the next
    server, and its bar moves while it is polled."""

    def test_the_retry_polls_the_pack(self, tmp_path: Path, farm: SimFarm) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 30, 30, 20) for i in range(2)]
        recipe = write_recipe(
            tmp_path, "steps:\n  - auto_pack\n  - save_form\n"
            "batching:\n  max_models_per_build: 2\n", head=FUSE_HEAD,
        )
        farm.add(ScriptedFaults(hang=frozenset({"auto_pack"})))
        farm.add()
        recorder = ProgressRecorder()
        outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out", recorder,
                       request_timeout_s=HANG_LIMIT_S)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.error_type) for a in outcome.attempts] == [
            ("server-1", "ServerTimeoutError"), ("server-2", None)
        ]
        steps = {"auto_pack", "save_form_file"}
        assert blocking_tests._polled(farm.faults[1].seen) & steps == {"auto_pack"}
        # Polled, the pack's bar reaches its end (a bar fed by the operation's own progress).
        assert recorder.fractions.get("auto_pack", [])[-1:] == [1.0]
