"""``layout`` as the server and the person reading the outcome see it: how many layout
requests go out and at which spacing, when the halving stops at the run's floor, what a build
that never fits says, that a refusal other than "does not fit" is not retried, and when the
overflow is carried on instead of failing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
from test_executor_steps_drain_holes import engine_options
from test_executor_steps_preflight import FUSE_HEAD
from test_executor_steps_requests import ReceivingEngine, _run, _serve

from preform_pipeline.executor import BuildStatus
from preform_pipeline.plan.builds import Plan
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.simulator.protocol import ProgressCallback, SimError
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    iter_events,
    plan_without_rafts,
    run,
    write_box,
    write_recipe,
)

#: Four 90 x 60 mm boxes fit the platform in two rows bare, never with their rafts: the
#: planner puts them in one build, the server's layout refuses them at any spacing.
NEVER_FITS = """\
steps:
  - auto_support
  - auto_layout:{spacing}
  - save_form
batching:
  spacing_mm: 4
  margin_mm: 0
  layout_attempts: {attempts}
  on_overflow: {overflow}
"""


def _boxes(folder: Path, count: int) -> list[Path]:
    return [write_box(folder, f"box{i}", 90, 60, 10) for i in range(count)]


def _one_build(plan: Plan) -> Plan:
    """``plan`` with all of its models in its first build."""
    models = tuple(m for b in plan.builds for m in b.models)
    joined = replace(plan.builds[0], models=models,
                     placements=tuple(p for b in plan.builds for p in b.placements),
                     graph=compile_graph(plan.recipe, models))
    return replace(plan, builds=(joined,))


def _receiving(farm: SimFarm) -> ReceivingEngine:
    engine = ReceivingEngine(**engine_options(farm))
    _serve(farm, engine)
    return engine


class TestNeverFits:
    """A layout that fails every attempt halves the spacing each time and then fails the
    build with the count of models and attempts, the last spacing and the server's reason."""

    def test_the_reason_counts_the_attempts_and_names_the_last_spacing(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 3", attempts=2, overflow="fail"))
        with capture_logs() as logs:
            outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 4))), farm,
                           tmp_path / "out")
        refusal = engine.refusals["auto_layout"]
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == (
            f"4 models do not fit after 2 layout attempts (last spacing 1.5 mm): {refusal} "
            "(the recipe says on_overflow: fail)"
        )
        assert [b["model_spacing_mm"] for b in engine.bodies("auto_layout")] == [3.0, 1.5]
        assert outcome.layout_calls == 2
        assert [{k: e[k] for k in ("attempt", "of", "spacing_mm", "previous_spacing_mm",
                                   "reason")} for e in iter_events(logs, "layout_retry")] == [
            {"attempt": 2, "of": 2, "spacing_mm": 1.5, "previous_spacing_mm": 3.0,
             "reason": refusal}
        ]

    def test_one_attempt_is_one_request_and_said_in_the_singular(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 3", attempts=1, overflow="fail"))
        with capture_logs() as logs:
            outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 4))), farm,
                           tmp_path / "out")
        assert outcome.reason is not None
        assert outcome.reason.startswith(
            "4 models do not fit after 1 layout attempt (last spacing 3 mm): ")
        assert len(engine.bodies("auto_layout")) == 1
        assert list(iter_events(logs, "layout_retry")) == []

    def test_without_a_spacing_the_retry_halves_the_servers_default(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(spacing=" {}", attempts=2,
                                                          overflow="fail"))
        outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 4))), farm,
                       tmp_path / "out")
        first, second = engine.bodies("auto_layout")
        assert "model_spacing_mm" not in first
        assert second["model_spacing_mm"] == 1.0
        assert "(last spacing 1 mm)" in (outcome.reason or "")


class TestSpacingFloor:
    """The halving stops at the run's smallest spacing (or at the recipe's own, if that is
    smaller): no request is sent twice at the same spacing, whatever attempts are left."""

    def test_the_halving_stops_at_half_a_millimetre(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 1", attempts=5, overflow="fail"))
        outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 4))), farm,
                       tmp_path / "out")
        assert [b["model_spacing_mm"] for b in engine.bodies("auto_layout")] == [1.0, 0.5]
        assert outcome.layout_calls == 2
        assert (outcome.reason or "").startswith(
            "4 models do not fit after 2 layout attempts (last spacing 0.5 mm): ")

    def test_a_floor_above_the_recipes_spacing_keeps_the_recipes(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 1", attempts=5, overflow="fail"))
        outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 4))), farm,
                       tmp_path / "out", min_layout_spacing_mm=2.0)
        assert [b["model_spacing_mm"] for b in engine.bodies("auto_layout")] == [1.0]
        assert (outcome.reason or "").startswith(
            "4 models do not fit after 1 layout attempt (last spacing 1 mm): ")


class LockedEngine(ReceivingEngine):
    """A server that refuses every layout with a 400 answer that is not "does not fit"."""

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "auto_layout":
            with self._lock:
                self.received.append((operation_id, body))
            raise SimError(400, "LAYOUT_FAILED", "the scene is locked")
        return super().call(operation_id, params, body, progress)


class TestOtherRefusals:
    """A layout refused for another reason than "does not fit" is not retried at a smaller
    spacing: the build fails with the server's reason."""

    def test_a_refusal_that_is_not_overflow_is_sent_once(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = LockedEngine(**engine_options(farm))
        _serve(farm, engine)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 3", attempts=3, overflow="fail"))
        with capture_logs() as logs:
            outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 2))), farm,
                           tmp_path / "out", max_build_attempts=1)
        assert outcome.status is BuildStatus.FAILED
        assert "the scene is locked" in (outcome.reason or "")
        assert "do not fit" not in (outcome.reason or "")
        assert len(engine.bodies("auto_layout")) == 1
        assert list(iter_events(logs, "layout_retry")) == []


class TestCarriedOn:
    """With ``on_overflow: split`` an auto_layout that still does not fit takes models out
    and lays out the rest at the recipe's own spacing, even when only two models are in the
    build."""

    def test_two_models_that_do_not_fit_together_are_carried_apart(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(tmp_path, NEVER_FITS.format(
            spacing="\n      model_spacing_mm: 2", attempts=2, overflow="split"))
        # Side by side bare (2 x 97 mm and the spacing: 198 of the platform's 200 mm) but
        # not with their rafts, and too deep (100 mm) for two rows. One build, whatever the
        # planner's time-boxed search found on a loaded machine.
        boxes = [write_box(tmp_path / "m", f"box{i}", 97, 100, 10) for i in range(2)]
        plan = _one_build(plan_without_rafts(recipe, boxes))
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.SUCCEEDED, parent.reason
        assert parent.children == ("unit-001+1",)
        spacings = [b["model_spacing_mm"] for b in engine.bodies("auto_layout")]
        # Two attempts at the recipe's spacing and half of it, then the rest at the
        # recipe's spacing again (and the carried build's own layout).
        assert spacings[:3] == [2.0, 1.0, 2.0]


class TestLayoutRequests:
    """The layout's options reach the server as the recipe writes them: a region of the
    platform for auto_layout, and the spacing of an SLS auto_pack."""

    def test_an_auto_layout_region_and_flags_are_sent(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_layout:\n      model_spacing_mm: 1.5\n"
            "      allow_overlapping_supports: true\n      lock_rotation: true\n"
            "      custom_bounds: {x_min_mm: -60, x_max_mm: 60, y_min_mm: -40, y_max_mm: 40}\n"
            "  - save_form\nbatching:\n  allow_rotation: false\n",
        )
        outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 1))), farm,
                       tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("auto_layout")
        assert body == {
            "model_spacing_mm": 1.5, "allow_overlapping_supports": True,
            "lock_rotation": True,
            "custom_bounds": {"x_min_mm": -60.0, "x_max_mm": 60.0, "y_min_mm": -40.0,
                              "y_max_mm": 40.0},
        }
        assert outcome.layout_calls == 1

    def test_an_auto_pack_spacing_is_sent(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = _receiving(farm)
        recipe = write_recipe(
            tmp_path, "steps:\n  - auto_pack:\n      model_spacing_mm: 3\n  - save_form\n",
            head=FUSE_HEAD,
        )
        outcome = _run(_one_build(plan_without_rafts(recipe, _boxes(tmp_path / "m", 1))), farm,
                       tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("auto_pack") == [{"model_spacing_mm": 3.0}]
        assert outcome.layout_calls == 1
