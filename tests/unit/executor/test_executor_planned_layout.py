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
from preform_pipeline.simulator.protocol import SimError
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


#: Where the position of :class:`OriginEngine` stands from a model's box centre.
OFFSET = (7.0, -4.0)


class OriginEngine(WatchingEngine):
    """The simulator, whose model position is a point 7 mm right of and 4 mm nearer than
    its bounding box's centre (a mesh's origin, say), in what it is sent and what it says:
    the contract does not say which point of a model its position is."""

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "update_model" and "position" in body:
            with self.scenes.use(params["scene_id"]) as scene:
                model = scene.model(params["id"])
                x, y, z = model.position
                model.position = (x - OFFSET[0], y - OFFSET[1], z)
        for model in answer.get("models", []) if operation_id == "get_scene" else []:
            model["position"]["x"] += OFFSET[0]
            model["position"]["y"] += OFFSET[1]
        super().after(operation_id, params, body, answer)


class TestAPositionThatIsNotTheBoxCentre:
    """On a server whose position is another point of the model than its box's centre, each
    model's box still stands centred where the plan put it."""

    def test_each_box_is_centred_on_its_planned_spot(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = OriginEngine(crowded=False, **engine_options(farm))
        _serve(farm, engine)
        plan = _plan(tmp_path)
        result, logs = _run(plan, farm, tmp_path / "out")
        assert result.outcome("unit-001").status is BuildStatus.SUCCEEDED
        (recentred,) = iter_events(logs, "layout_planned_positions_recentred")
        assert recentred["models"] == len(SIZES)
        assert list(iter_events(logs, "layout_planned_positions_used"))
        judged = {m["name"]: m["bounding_box"] for m in engine.judged["models"]}
        for name, (x, y, _) in _planned(plan).items():
            low, high = judged[name]["min_corner"], judged[name]["max_corner"]
            assert math.isclose((low["x"] + high["x"]) / 2, x, abs_tol=1e-3)
            assert math.isclose((low["y"] + high["y"]) / 2, y, abs_tol=1e-3)


class UncheckingEngine(WatchingEngine):
    """The simulator, whose interference check is refused outright (400), as a server
    without it, or one that will not judge this scene, answers."""

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        super().after(operation_id, params, body, answer)
        if operation_id == "get_scene_interferences":
            raise SimError(400, "INVALID_REQUEST", "interferences are not available")


class TestARefusalInsideThePlannedLayout:
    """A server that refuses a request of the planned layout gets every model back where it
    stood, and the build goes on to carry its overflow as it would have without it."""

    def test_the_models_go_back_and_the_overflow_is_carried(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = UncheckingEngine(crowded=False, **engine_options(farm))
        _serve(farm, engine)
        result, logs = _run(_plan(tmp_path), farm, tmp_path / "out")
        assert result.outcome("unit-001").status is BuildStatus.SUCCEEDED
        assert result.outcome("unit-001+1").models == ("b3.stl",)
        (failed,) = iter_events(logs, "layout_planned_positions_failed")
        assert failed["models"] == 4 and "not available" in failed["error"]
        placing, restoring = engine.moves[:4], engine.moves[4:8]
        assert [model_id for model_id, _ in restoring] == [model_id for model_id, _ in placing]
        by_id = {m["id"]: m for m in engine.before.values()}
        for model_id, body in restoring:
            assert body["position"] == by_id[model_id]["position"]


def _recipe_with(tmp_path: Path, text: str) -> Plan:
    recipe = write_recipe(tmp_path, text)
    boxes = [write_box(tmp_path / "m", name, sx, sy, 10) for name, (sx, sy) in SIZES.items()]
    return _one_build(plan_for(recipe, boxes))


class TestLayoutsThePlanDidNotMake:
    """A layout step with ``custom_bounds`` asks for another layout than the plan's (the plan
    used the whole platform): nothing is moved, the overflow is carried as before."""

    def test_custom_bounds_move_nothing(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = _serve_watching(farm, crowded=False)
        bounded = RECIPE.replace(
            "      model_spacing_mm: 2\n",
            "      model_spacing_mm: 2\n      custom_bounds:\n        x_min_mm: -70\n"
            "        x_max_mm: 70\n        y_min_mm: -60\n        y_max_mm: 60\n",
        )
        result, logs = _run(_recipe_with(tmp_path, bounded), farm, tmp_path / "out")
        (absent,) = iter_events(logs, "layout_planned_positions_absent")
        assert absent["models"] == 4
        assert engine.moves == []
        assert engine.bodies("get_scene_interferences") == []
        assert result.outcome("unit-001+1").status is BuildStatus.SUCCEEDED


class TestLockedRotation:
    """With ``lock_rotation`` (so a plan without turns) the models are moved, never turned."""

    def test_the_models_move_without_a_turn(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = _serve_watching(farm, crowded=False)
        locked = RECIPE.replace("allow_rotation: true", "allow_rotation: false").replace(
            "      model_spacing_mm: 2\n", "      model_spacing_mm: 2\n      lock_rotation: true\n"
        )
        plan = _recipe_with(tmp_path, locked)
        assert not any(turn for _, _, turn in _planned(plan).values())
        result, logs = _run(plan, farm, tmp_path / "out")
        assert result.outcome("unit-001").status is BuildStatus.SUCCEEDED
        (used,) = iter_events(logs, "layout_planned_positions_used")
        assert used["turned"] == 0
        assert len(engine.moves) == len(SIZES)
        assert all("orientation" not in body for _, body in engine.moves)
