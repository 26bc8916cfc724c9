"""A build whose auto-layout the server refuses, laid out as the plan laid it out: each model
moved and turned to its planned place through the Local API, kept when the server's own
interference check and bounds find it clean, put back (and the overflow shed as before)
when they do not, and supported again when a server drops the supports of a turned model."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from test_executor_overflow_shed import RECIPE as SHED_RECIPE
from test_executor_overflow_shed import RefusingEngine, _run
from test_executor_steps_drain_holes import engine_options
from test_executor_steps_requests import _serve
from test_executor_steps_scene_layout import _one_build

from preform_pipeline.executor import BuildStatus
from preform_pipeline.plan.builds import Plan
from preform_pipeline.simulator.layout import MODELS_DO_NOT_FIT
from tests.unit.executor.executor_support import (
    SimFarm,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)

#: The shed tests' recipe (one layout attempt: the refusal goes straight to the plan's
#: layout), with supports on full rafts before the layout and turns allowed.
RECIPE = SHED_RECIPE.replace("steps:\n", "steps:\n  - auto_support\n").replace(
    "allow_rotation: false", "allow_rotation: true")
#: Two bars and two blocks: the planner turns three of the four (90 and 270 degrees).
SIZES = {"b0": (110.0, 20.0), "b1": (110.0, 20.0), "b2": (30.0, 80.0), "b3": (30.0, 80.0)}
FULL = (MODELS_DO_NOT_FIT, "the models do not fit the build platform (b3)")


class WatchingEngine(RefusingEngine):
    """The simulator, whose first layout gives up (as a server's search may on a build the
    plan packed); ``crowded``: it finds the planned layout crowded too; ``bare_turns``: its
    update-model drops a model's supports on any new orientation. It remembers the scene
    as it stood before the first move, every move (model id, body), and the scene as its
    interference check judged it."""

    def __init__(self, *, crowded: bool, bare_turns: bool = False, **options: Any) -> None:
        super().__init__([FULL], crowded, **options)
        self._bare_turns = bare_turns
        self.before: dict[str, Any] = {}
        self.moves: list[tuple[str, Any]] = []
        self.judged: dict[str, Any] = {}

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "get_scene" and not self.moves:
            # The planned layout reads the scene just before its first move.
            self.before = {m["name"]: m for m in answer["models"]}
        elif operation_id == "update_model":
            self.moves.append((params["id"], body))
            if self._bare_turns and "orientation" in body:
                with self.scenes.use(params["scene_id"]) as scene:
                    scene.model(params["id"]).clear_supports()
        elif operation_id == "get_scene_interferences":
            self.judged = super().call("get_scene", params, None)


def _serve_watching(farm: SimFarm, **options: bool) -> WatchingEngine:
    engine = WatchingEngine(**options, **engine_options(farm))
    _serve(farm, engine)
    return engine


def _plan(tmp_path: Path) -> Plan:
    recipe = write_recipe(tmp_path, RECIPE)
    boxes = [write_box(tmp_path / "m", name, sx, sy, 10) for name, (sx, sy) in SIZES.items()]
    return _one_build(plan_for(recipe, boxes))


def _planned(plan: Plan) -> dict[str, tuple[float, float, float]]:
    return {p.path.stem: (p.x_mm, p.y_mm, p.angle_deg) for p in plan.builds[0].placements}


def _turn(model: dict[str, Any]) -> float:
    return model["orientation"]["z"] % 360.0


class TestCleanPlannedLayout:
    """The server finds the planned layout clean: it is kept, nothing is carried."""

    def test_each_model_stands_where_the_plan_put_it_with_its_supports(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _serve_watching(farm, crowded=False)
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
            stood = engine.before[name]["position"]["z"]
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
        engine = _serve_watching(farm, crowded=True)
        result, logs = _run(_plan(tmp_path), farm, tmp_path / "out")
        assert result.outcome("unit-001+1").models == ("b3.stl",)
        (refused,) = iter_events(logs, "layout_planned_positions_refused")
        assert refused["models"] == 4 and len(refused["interfering"]) == 2
        assert not list(iter_events(logs, "layout_planned_positions_used"))
        placing, restoring = engine.moves[:4], engine.moves[4:]
        assert [model_id for model_id, _ in restoring] == [model_id for model_id, _ in placing]
        by_id = {m["id"]: m for m in engine.before.values()}
        for model_id, body in restoring:
            stood = by_id[model_id]
            assert body["position"] == stood["position"]
            if "orientation" in body:
                assert body["orientation"] == stood["orientation"]
        turned_back = [body for _, body in restoring if "orientation" in body]
        assert len(turned_back) == sum(1 for _, body in placing if "orientation" in body) > 0


class TestOutsideThePlatform:
    """A planned layout with a model past the platform's edge (a plan made for a larger
    platform) is not kept, even though no two models interfere."""

    def test_the_scene_s_own_bounds_refuse_it(self, tmp_path: Path, farm: SimFarm) -> None:
        _serve_watching(farm, crowded=False)
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
        engine = _serve_watching(farm, crowded=False, bare_turns=True)
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
