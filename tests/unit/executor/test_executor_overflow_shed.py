"""Shedding the overflow of a build whose layout does not fit, as the server and the person
reading the run see it: which models leave the scene (those the answer names, else the largest
footprint), that one always stays, what a part that fits no platform says, and that a refusal
of another kind is not shed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
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
    plan_without_rafts,
    run,
    write_box,
    write_recipe,
)

#: One layout attempt, then shed (no retry at half the spacing to muddle the count).
RECIPE = """\
steps:
  - auto_layout:
      model_spacing_mm: 2
  - save_form
batching:
  spacing_mm: 2
  margin_mm: 0
  allow_rotation: false
  layout_attempts: 1
  on_overflow: split
"""


class RefusingEngine(ReceivingEngine):
    """The simulator, whose next layouts answer as a full platform does, with the messages
    given (a message without a list of names is what a server says that does not name them);
    once it has refused, and ``crowded``, it finds the plan's own layout crowded too (two of
    the models interfere), so the build goes on to shed."""

    def __init__(
        self, refusals: list[tuple[str, str]], crowded: bool = True, **options: Any
    ) -> None:
        super().__init__(**options)
        self._refusals = list(refusals)
        self._crowded = crowded
        self._refused = False

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "auto_layout":
            with self._lock:
                refusal = self._refusals.pop(0) if self._refusals else None
                if refusal is not None:
                    self.received.append((operation_id, body))
                    self._refused = True
            if refusal is not None:
                raise SimError(400, *refusal)
        if operation_id == "get_scene_interferences" and self._refused and self._crowded:
            scene = super().call("get_scene", params, None)
            return [[m["id"] for m in scene["models"][:2]]]
        return super().call(operation_id, params, body, progress)


def _serve_refusing(farm: SimFarm, *refusals: tuple[str, str]) -> RefusingEngine:
    engine = RefusingEngine(list(refusals), **engine_options(farm))
    _serve(farm, engine)
    return engine


def _plan(tmp_path: Path, sizes: dict[str, tuple[float, float]]) -> Plan:
    recipe = write_recipe(tmp_path, RECIPE)
    boxes = [write_box(tmp_path / "m", name, sx, sy, 10) for name, (sx, sy) in sizes.items()]
    return _one_build(plan_without_rafts(recipe, boxes))


def _run(plan: Plan, farm: SimFarm, out: Path) -> tuple[RunResult, list[dict[str, Any]]]:
    with capture_logs() as logs:
        result = run(plan, FakePool([s.url for s in farm.servers]), out)
    return result, logs


def _full(names: str = "") -> tuple[str, str]:
    listed = f" ({names})" if names else ""
    return MODELS_DO_NOT_FIT, f"the models do not fit the build platform{listed}"


#: Four parts of different footprints: the largest is ``wide`` (60 x 40 mm).
SIZES = {"tall": (20.0, 50.0), "wide": (60.0, 40.0), "small": (15.0, 15.0),
         "mid": (40.0, 30.0)}


class TestNamedModels:
    """The models the answer names leave the scene, in the answer's order, and are carried."""

    def test_the_named_models_are_carried_and_the_rest_stay_prepared(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = _serve_refusing(farm, _full("small, 2 more: tall ..., nothing, tall"))
        result, logs = _run(_plan(tmp_path, SIZES), farm, tmp_path / "out")
        parent, carry = result.outcome("unit-001"), result.outcome("unit-001+1")
        assert parent.status is BuildStatus.SUCCEEDED, parent.reason
        assert sorted(parent.models) == ["mid.stl", "wide.stl"]
        assert sorted(carry.models) == ["small.stl", "tall.stl"]
        (carried,) = iter_events(logs, "overflow_carried")
        assert (carried["carried"], carried["staying"]) == (["small.stl", "tall.stl"], 2)
        # The refused layout, the layout after the shed: both count.
        assert parent.layout_calls == 2
        assert len(engine.bodies("auto_layout")) == 2 + carry.layout_calls

    def test_when_every_model_is_named_the_last_named_one_stays(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve_refusing(farm, _full("mid, tall, small, wide"))
        result, logs = _run(_plan(tmp_path, SIZES), farm, tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.SUCCEEDED, parent.reason
        assert parent.models == ("wide.stl",)
        (carried,) = iter_events(logs, "overflow_carried")
        assert (carried["carried"], carried["staying"]) == (
            ["mid.stl", "tall.stl", "small.stl"], 1)


class TestUnnamedModels:
    """An answer that names none sheds the part with the largest shadow, one at a time."""

    def test_the_largest_footprints_go_first_one_per_refusal(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve_refusing(farm, _full(), _full())
        result, logs = _run(_plan(tmp_path, SIZES), farm, tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.SUCCEEDED, parent.reason
        assert sorted(parent.models) == ["small.stl", "tall.stl"]
        assert [(e["carried"], e["staying"]) for e in iter_events(logs, "overflow_carried")] \
            == [(["wide.stl"], 3), (["wide.stl", "mid.stl"], 2)]
        assert parent.layout_calls == 3
        assert sorted(result.outcome("unit-001+1").models) == ["mid.stl", "wide.stl"]

    def test_a_standing_part_is_judged_by_its_shadow_lying_flat(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # A 10 x 80 mm slab 60 mm high covers 800 mm2 as it stands, 4800 mm2 lying flat: it
        # goes before a 50 x 50 mm plate (2500 mm2 either way).
        recipe = write_recipe(tmp_path, RECIPE)
        slab = write_box(tmp_path / "m", "slab", 10, 80, 60)
        plate = write_box(tmp_path / "m", "plate", 50, 50, 5)
        _serve_refusing(farm, _full())
        result, _ = _run(_one_build(plan_without_rafts(recipe, [plate, slab])), farm,
                         tmp_path / "out")
        assert result.outcome("unit-001").models == ("plate.stl",)
        assert result.outcome("unit-001+1").models == ("slab.stl",)

    def test_equal_footprints_shed_the_last_model_of_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = _plan(tmp_path, {f"cube{i}": (30.0, 30.0) for i in range(3)})
        last = plan.builds[0].models[-1].path.name
        _serve_refusing(farm, _full())
        result, _ = _run(plan, farm, tmp_path / "out")
        assert result.outcome("unit-001+1").models == (last,)
        assert last not in result.outcome("unit-001").models

    def test_without_measured_shadows_the_footprint_box_decides(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Model facts made by hand (no shadow): the 40 x 40 mm square (1600 mm2) goes first,
        # before the longer 70 x 20 mm strip (1400) and the deeper 25 x 60 mm post (1500).
        plan = _plan(tmp_path, {"square": (40.0, 40.0), "strip": (70.0, 20.0),
                                "post": (25.0, 60.0)})
        (build,) = plan.builds
        bare = replace(build, models=tuple(replace(m, shadow=None) for m in build.models))
        _serve_refusing(farm, _full())
        result, _ = _run(replace(plan, builds=(bare,)), farm, tmp_path / "out")
        assert sorted(result.outcome("unit-001").models) == ["post.stl", "strip.stl"]
        assert result.outcome("unit-001+1").models == ("square.stl",)


class TestNothingLeftToShed:
    """A part alone that does not fit fails its build naming it and the server's last word;
    what was carried before is still carried."""

    def test_the_last_part_fails_with_the_last_answer_and_the_carry_goes_on(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve_refusing(farm, _full(), (MODELS_DO_NOT_FIT, "still too large: 1 of 1"))
        plan = _plan(tmp_path, {"big": (60.0, 40.0), "little": (20.0, 20.0)})
        result, logs = _run(plan, farm, tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.FAILED
        assert parent.reason is not None
        assert "little.stl does not fit an empty platform: still too large: 1 of 1" \
            in parent.reason
        assert parent.layout_calls == 2
        assert result.outcome("unit-001+1").models == ("big.stl",)
        assert result.outcome("unit-001+1").status is BuildStatus.SUCCEEDED
        assert [e["carried"] for e in iter_events(logs, "overflow_carried")] == [["big.stl"]]

    def test_a_single_part_build_is_not_shed_at_all(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = _serve_refusing(farm, _full("alone"))
        result, logs = _run(_plan(tmp_path, {"alone": (30.0, 30.0)}), farm, tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        reason = outcome.reason or ""
        assert reason.startswith("alone.stl does not fit an empty platform: ")
        assert reason.endswith(": the models do not fit the build platform (alone)")
        assert list(iter_events(logs, "overflow_carried")) == []
        assert len(engine.bodies("auto_layout")) == 1


class TestOtherRefusals:
    """A later layout refused for another reason fails the build with that reason, unshed."""

    def test_a_refusal_that_is_not_overflow_stops_the_shedding(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve_refusing(farm, _full(), ("SCENE_LOCKED", "the scene is being edited elsewhere"))
        result, logs = _run(_plan(tmp_path, SIZES), farm, tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.FAILED
        assert "the scene is being edited elsewhere" in (parent.reason or "")
        assert len(list(iter_events(logs, "overflow_carried"))) == 1
