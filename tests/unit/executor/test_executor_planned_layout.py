"""A build whose auto-layout the server refuses, laid out as the plan laid it out: each model
moved and turned to its planned place through the Local API, kept when the server's own
interference check and bounds find it clean, put back (and the overflow shed as before)
when they do not, and supported again when a server drops the supports of a turned model."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
from test_executor_overflow_shed import RefusingEngine
from test_executor_steps_drain_holes import engine_options
from test_executor_steps_requests import ReceivingEngine, _serve
from test_executor_steps_scene_layout import _one_build

from preform_pipeline.executor import BuildStatus, RunResult
from preform_pipeline.plan.builds import Plan
from preform_pipeline.simulator.layout import MODELS_DO_NOT_FIT
from preform_pipeline.simulator.protocol import ProgressCallback, SimError
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

#: Supports with full rafts before the layout, as a production recipe has them; one layout
#: attempt, so the refusal goes straight to the plan's layout.
RECIPE = """\
steps:
  - auto_support
  - auto_layout:
      model_spacing_mm: 2
  - save_form
batching:
  spacing_mm: 2
  margin_mm: 0
  layout_attempts: 1
  on_overflow: split
"""
#: Two bars and two blocks: the planner turns three of the four (90 and 270 degrees).
SIZES = {"b0": (110.0, 20.0), "b1": (110.0, 20.0), "b2": (30.0, 80.0), "b3": (30.0, 80.0)}
FULL = (MODELS_DO_NOT_FIT, "the models do not fit the build platform (b3)")


class GivingUpEngine(ReceivingEngine):
    """The simulator, whose first layout gives up (as a server's search may on a build the
    plan packed); it keeps the scene as its interference check judged it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._gave_up = False
        #: The scene as it stood when the layout was refused, and as it was judged.
        self.refused: dict[str, Any] = {}
        self.judged: dict[str, Any] = {}

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "auto_layout" and not self._gave_up:
            self._gave_up = True
            scene = super().call("get_scene", params, None)
            self.refused = {m["name"]: m for m in scene["models"]}
            raise SimError(400, *FULL)
        return super().call(operation_id, params, body, progress)

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "get_scene_interferences":
            self.judged = super().call("get_scene", params, None)


class RememberingEngine(RefusingEngine):
    """A full platform (:class:`RefusingEngine`) that remembers each model as it stood
    before the first move, and every move (model id, body) in order."""

    def __init__(self, refusals: list[tuple[str, str]], **options: Any) -> None:
        super().__init__(refusals, **options)
        self.before: dict[str, Any] = {}
        self.moves: list[tuple[str, Any]] = []

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "update_model":
            if not self.before:
                scene = super().call("get_scene", {"scene_id": params["scene_id"]}, None)
                self.before = {m["id"]: m for m in scene["models"]}
            self.moves.append((params["id"], body))
        return super().call(operation_id, params, body, progress)


class TurnDropsSupportsEngine(GivingUpEngine):
    """A server whose update-model drops a model's supports on any new orientation."""

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        answer = super().call(operation_id, params, body, progress)
        if operation_id == "update_model" and "orientation" in body:
            with self.scenes.use(params["scene_id"]) as scene:
                scene.model(params["id"]).clear_supports()
        return answer


def _plan(tmp_path: Path) -> Plan:
    recipe = write_recipe(tmp_path, RECIPE)
    boxes = [write_box(tmp_path / "m", name, sx, sy, 10) for name, (sx, sy) in SIZES.items()]
    return _one_build(plan_for(recipe, boxes))


def _run(plan: Plan, farm: SimFarm, out: Path) -> tuple[RunResult, list[dict[str, Any]]]:
    with capture_logs() as logs:
        result = run(plan, FakePool([s.url for s in farm.servers]), out)
    return result, logs


def _planned(plan: Plan) -> dict[str, tuple[float, float, float]]:
    return {p.path.stem: (p.x_mm, p.y_mm, p.angle_deg) for p in plan.builds[0].placements}


def _turn(model: dict[str, Any]) -> float:
    return model["orientation"]["z"] % 360.0


class TestCleanPlannedLayout:
    """The server finds the planned layout clean: it is kept, nothing is carried."""

    def test_each_model_stands_where_the_plan_put_it_with_its_supports(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = GivingUpEngine(**engine_options(farm))
        _serve(farm, engine)
        plan = _plan(tmp_path)
        planned = _planned(plan)
        assert sum(1 for _, _, turn in planned.values() if turn) >= 2
        result, logs = _run(plan, farm, tmp_path / "out")
        outcome = result.outcome("unit-001")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert sorted(outcome.models) == [f"{name}.stl" for name in SIZES]
        assert [o.name for o in result.outcomes] == ["unit-001"]
        (used,) = iter_events(logs, "layout_planned_positions_used")
        assert (used["models"], used["spacing_mm"]) == (4, 2.0)
        assert not list(iter_events(logs, "overflow_carried"))
        assert engine.bodies("get_scene_interferences") == [{"collision_offset_mm": 2.0}]
        judged = {m["name"]: m for m in engine.judged["models"]}
        for name, (x, y, turn) in planned.items():
            model = judged[name]
            # On its raft, as high as its supports put it.
            stood = engine.refused[name]["position"]["z"]
            assert model["position"] == {"x": x, "y": y, "z": stood} and stood > 0
            assert math.isclose(_turn(model), turn % 360.0, abs_tol=1e-6)
            assert model["has_supports"] is True
            assert model["in_bounds"] is True


class TestRefusedPlannedLayout:
    """The server finds the planned layout crowded: every model goes back where it stood,
    then the overflow is shed as before."""

    def test_the_models_go_back_and_the_overflow_is_carried(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = RememberingEngine([FULL], **engine_options(farm))
        _serve(farm, engine)
        result, logs = _run(_plan(tmp_path), farm, tmp_path / "out")
        assert result.outcome("unit-001+1").models == ("b3.stl",)
        (refused,) = iter_events(logs, "layout_planned_positions_refused")
        assert refused["models"] == 4 and len(refused["interfering"]) == 2
        assert not list(iter_events(logs, "layout_planned_positions_used"))
        placing, restoring = engine.moves[:4], engine.moves[4:]
        assert [model_id for model_id, _ in restoring] == [model_id for model_id, _ in placing]
        for model_id, body in restoring:
            stood = engine.before[model_id]
            assert body["position"] == stood["position"]
            if "orientation" in body:
                assert body["orientation"] == stood["orientation"]
        turned_back = [body for _, body in restoring if "orientation" in body]
        assert len(turned_back) == sum(1 for _, body in placing if "orientation" in body) > 0


class TestOutsideThePlatform:
    """A planned layout with a model past the platform's edge (a plan made for a larger
    platform) is not kept, even though no two models interfere."""

    def test_the_scene_s_own_bounds_refuse_it(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = GivingUpEngine(**engine_options(farm))
        _serve(farm, engine)
        plan = _plan(tmp_path)
        build = plan.builds[0]
        moved = tuple(
            replace(p, x_mm=p.x_mm + 300.0) if p.path.stem == "b2" else p
            for p in build.placements
        )
        plan = replace(plan, builds=(replace(build, placements=moved),))
        result, logs = _run(plan, farm, tmp_path / "out")
        (refused,) = iter_events(logs, "layout_planned_positions_refused")
        assert (refused["interfering"], refused["outside"]) == ([], ["b2.stl"])
        assert result.outcome("unit-001").status is BuildStatus.SUCCEEDED


class TestSupportsDroppedByATurn:
    """A server that drops the supports of a turned model gets them drawn again where the
    model now stands, with the recipe's options, before the layout is judged."""

    def test_the_turned_models_are_supported_again(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = TurnDropsSupportsEngine(**engine_options(farm))
        _serve(farm, engine)
        plan = _plan(tmp_path)
        turned = sum(1 for _, _, turn in _planned(plan).values() if turn)
        result, logs = _run(plan, farm, tmp_path / "out")
        assert result.outcome("unit-001").status is BuildStatus.SUCCEEDED
        (redrawn,) = iter_events(logs, "layout_planned_supports_redrawn")
        assert redrawn["models"] == turned
        supports = engine.bodies("auto_support")
        assert len(supports) == 2 and len(supports[1]["models"]) == turned
        assert all(m["has_supports"] for m in engine.judged["models"])
        assert list(iter_events(logs, "layout_planned_positions_used"))
