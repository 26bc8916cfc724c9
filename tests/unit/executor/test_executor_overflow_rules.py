"""The carry rules: which models a "does not fit" answer names, how a carry is named, built
and joined to a waiting build, and when the final build stops waiting for others."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from preform_pipeline.executor.overflow import (
    FinalIntake,
    carry_build,
    carry_name,
    join_waiting,
    overflow_names,
)
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, ModelPlacement
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.recipes.model import Recipe
from tests.unit.plan.planning_factories import make_model, make_recipe

RECIPE = make_recipe()


def _placement(model: ModelInfo) -> ModelPlacement:
    return ModelPlacement(path=model.path, x_mm=0.0, y_mm=0.0,
                          width_mm=model.footprint_mm[0], depth_mm=model.footprint_mm[1],
                          rotated=False)


def _build(name: str, models: tuple[ModelInfo, ...], *, index: int = 1, fill: float = 0.5,
           volume_ml: float = 10.0, recipe: Recipe = RECIPE) -> BuildPlan:
    return BuildPlan(index=index, name=name, models=models,
                     placements=tuple(_placement(m) for m in models), fill_ratio=fill,
                     estimated_volume_ml=volume_ml, graph=compile_graph(recipe, models))


def _never() -> bool:
    return False


class TestOverflowNames:
    """The models a "does not fit" answer lists, among the build's own, in its order."""

    def test_the_listed_models_come_back_in_the_messages_order(self) -> None:
        message = ("3 models do not fit on the build platform (c.stl, a.stl, b.stl ...); "
                   "use a larger machine")
        assert overflow_names(message, ["a.stl", "b.stl", "c.stl", "d.stl"]) == [
            "c.stl", "a.stl", "b.stl"]

    def test_names_not_in_the_build_and_repeats_are_left_out(self) -> None:
        message = "do not fit (x.stl, a.stl) (a.stl,b.stl...)"
        assert overflow_names(message, ["a.stl", "b.stl"]) == ["a.stl", "b.stl"]

    def test_a_message_without_a_list_names_nothing(self) -> None:
        assert overflow_names("the models do not fit on the platform", ["a.stl"]) == []


class TestCarryName:
    """A carry is NAME+1; the carry of a carry counts on: NAME+2."""

    def test_a_planned_build_gets_plus_one(self) -> None:
        assert carry_name(_build("bench-003", (make_model("a"),))) == "bench-003+1"

    def test_a_carry_of_a_carry_counts_on(self) -> None:
        assert carry_name(_build("bench-003+1", (make_model("a"),))) == "bench-003+2"
        assert carry_name(_build("bench-003+9", (make_model("a"),))) == "bench-003+10"

    def test_a_plus_not_followed_by_a_number_is_part_of_the_name(self) -> None:
        assert carry_name(_build("a+b", (make_model("a"),))) == "a+b+1"
        assert carry_name(_build("a+b-001+1", (make_model("a"),))) == "a+b-001+2"


class TestCarryBuild:
    """The build keeps the models that fit; the carry takes the others, and the resin with
    them, in proportion to their volume."""

    def test_the_models_and_resin_are_shared_by_volume(self) -> None:
        a = make_model("a", volume=1000.0)
        b = make_model("b", volume=3000.0)
        c = make_model("c", volume=4000.0)
        build = _build("r-001", (a, b, c), index=1, fill=0.7, volume_ml=16.0)
        stayed, carry = carry_build(RECIPE, build, [2, 0], 5)
        assert (stayed.name, stayed.index, stayed.models) == ("r-001", 1, (b,))
        assert [p.path for p in stayed.placements] == [b.path]
        assert stayed.fill_ratio == 0.7
        assert stayed.estimated_volume_ml == pytest.approx(6.0)
        assert (carry.name, carry.index, carry.models) == ("r-001+1", 5, (a, c))
        assert carry.placements == () and carry.fill_ratio == 0.0
        assert carry.estimated_volume_ml == pytest.approx(10.0)
        assert carry.graph == compile_graph(RECIPE, (a, c))
        assert stayed.graph == build.graph

    def test_tiny_models_carry_their_share_too(self) -> None:
        a = make_model("a", volume=0.25)
        b = make_model("b", volume=0.25)
        stayed, carry = carry_build(RECIPE, _build("r-001", (a, b), volume_ml=0.5), [1], 2)
        assert stayed.estimated_volume_ml == pytest.approx(0.25)
        assert carry.estimated_volume_ml == pytest.approx(0.25)

    def test_models_without_volume_carry_no_resin(self) -> None:
        a = make_model("a", volume=0.0)
        b = make_model("b", volume=0.0)
        stayed, carry = carry_build(RECIPE, _build("r-001", (a, b), volume_ml=0.0), [1], 2)
        assert (stayed.estimated_volume_ml, carry.estimated_volume_ml) == (0.0, 0.0)


class TestJoinWaiting:
    """A carry joins the least filled build that has not started, when the cap allows."""

    def test_the_least_filled_waiting_build_takes_the_carry(self) -> None:
        carry = _build("r-001+1", (make_model("x"),), index=9, volume_ml=2.0)
        full = _build("r-002", (make_model("a"),), index=2, fill=0.8)
        roomy = _build("r-003", (make_model("b"), make_model("c")), index=3, fill=0.3,
                       volume_ml=5.0)
        joined = join_waiting(RECIPE, carry, [full, roomy])
        assert joined is not None
        assert (joined.name, joined.index, joined.fill_ratio) == ("r-003", 3, 0.3)
        assert [m.name for m in joined.models] == ["b", "c", "x"]
        assert joined.placements == roomy.placements
        assert joined.estimated_volume_ml == pytest.approx(7.0)
        assert joined.graph == compile_graph(RECIPE, joined.models)

    def test_ties_go_to_the_build_with_fewer_models_then_the_earlier_one(self) -> None:
        carry = _build("r-001+1", (make_model("x"),), index=9)
        two = _build("r-002", (make_model("a"), make_model("b")), index=2, fill=0.4)
        later = _build("r-004", (make_model("d"),), index=4, fill=0.4)
        earlier = _build("r-003", (make_model("c"),), index=3, fill=0.4)
        joined = join_waiting(RECIPE, carry, [two, later, earlier])
        assert joined is not None and joined.name == "r-003"

    def test_the_cap_on_models_per_build_is_kept(self) -> None:
        recipe = make_recipe(max_models_per_build=3)
        carry = _build("r-001+1", (make_model("x"), make_model("y")), index=9)
        three = _build("r-002", (make_model("a"), make_model("b")), index=2, fill=0.1)
        one = _build("r-003", (make_model("c"),), index=3, fill=0.9)
        joined = join_waiting(recipe, carry, [three, one])
        assert joined is not None and joined.name == "r-003"
        assert len(joined.models) == 3
        assert join_waiting(recipe, carry, [three]) is None

    def test_a_build_the_planner_cannot_lay_out_with_the_carry_is_passed_over(self) -> None:
        carry = _build("r-001+1", (make_model("x"),), index=9)
        roomy = _build("r-002", (make_model("a"),), index=2, fill=0.2)
        fuller = _build("r-003", (make_model("b"),), index=3, fill=0.6)
        asked: list[list[str]] = []

        def fits(models: Sequence[ModelInfo]) -> bool:
            asked.append([m.name for m in models])
            return "a" not in asked[-1]

        joined = join_waiting(RECIPE, carry, [fuller, roomy], fits=fits)
        assert joined is not None and joined.name == "r-003"
        assert asked == [["a", "x"], ["b", "x"]]  # the roomiest first, with the carry

    def test_no_join_when_the_planner_lays_out_no_waiting_build_with_the_carry(self) -> None:
        carry = _build("r-001+1", (make_model("x"),), index=9)
        waiting = [_build("r-002", (make_model("a"),), index=2)]
        assert join_waiting(RECIPE, carry, waiting, fits=lambda models: False) is None

    def test_no_waiting_build_means_no_join(self) -> None:
        carry = _build("r-001+1", (make_model("x"),), index=9)
        assert join_waiting(RECIPE, carry, []) is None


class TestFinalIntakeWaits:
    """The final build waits for the other builds' layouts, but never past its limit."""

    def test_a_build_that_ended_no_longer_holds_the_final_build_back(self) -> None:
        intake = FinalIntake("final")
        intake.holding("final", True)
        intake.holding("b1", True)
        intake.holding("b1", False)
        started = time.monotonic()
        assert intake.take(30.0, _never) == []
        assert time.monotonic() - started < 5.0

    def test_the_final_build_itself_never_counts_as_another_build(self) -> None:
        intake = FinalIntake("final")
        intake.holding("final", True)
        started = time.monotonic()
        intake.take(30.0, _never)
        assert time.monotonic() - started < 5.0

    def test_the_final_build_holding_no_server_takes_nothing(self) -> None:
        intake = FinalIntake("final")
        intake.holding("final", False)
        assert not intake.offer([make_model("a")])

    def test_the_wait_ends_at_its_limit_and_closes_the_intake(self) -> None:
        intake = FinalIntake("final")
        intake.holding("final", True)
        intake.holding("slow", True)
        carried = make_model("a")
        assert intake.offer([carried])
        started = time.monotonic()
        assert intake.take(0.2, _never) == [carried]
        waited = time.monotonic() - started
        assert 0.2 <= waited < 5.0
        assert not intake.offer([make_model("b")])

    def test_a_cancelled_run_stops_the_wait(self) -> None:
        intake = FinalIntake("final")
        intake.holding("final", True)
        intake.holding("slow", True)
        stop = threading.Event()
        done = threading.Event()

        def final() -> None:
            intake.take(60.0, stop.is_set)
            done.set()

        thread = threading.Thread(target=final)
        thread.start()
        stop.set()  # the wait looks at the run's stop at least every half second
        assert done.wait(10.0)
        thread.join(10.0)
