"""The final build's intake of carried models: when it takes them, and when it stops."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from preform_pipeline.clock import ManualClock
from preform_pipeline.executor.overflow import FinalIntake
from preform_pipeline.plan.builds import ModelInfo
from tests.unit.plan.planning_factories import make_recipe


def _model(name: str) -> ModelInfo:
    return ModelInfo(
        path=Path("models") / f"{name}.stl", name=name, size_mm=(10.0, 10.0, 10.0),
        footprint_mm=(10.0, 10.0), volume_mm3=1000.0, support_estimate_mm3=0.0,
        triangle_count=12,
    )


def _never() -> bool:
    return False


class TestFinalIntake:
    """Carried models join the final build only while it runs and has not laid out."""

    def test_nothing_is_taken_before_the_final_build_holds_a_server(self) -> None:
        intake = FinalIntake("b2")
        assert not intake.offer([_model("a")])
        intake.holding("b2", True)
        assert intake.offer([_model("a")])

    def test_take_returns_the_carried_models_once_and_closes(self) -> None:
        intake = FinalIntake("b2")
        intake.holding("b2", True)
        first, second = _model("a"), _model("b")
        assert intake.offer([first]) and intake.offer([second])
        assert intake.take(5.0, _never) == [first, second]
        assert not intake.offer([_model("c")])
        assert intake.take(5.0, _never) == []

    def test_a_carry_the_fit_test_refuses_is_not_taken_and_the_test_sees_earlier_ones(
        self,
    ) -> None:
        intake = FinalIntake("b2")
        intake.holding("b2", True)
        asked: list[list[str]] = []

        def two_at_most(models: Sequence[ModelInfo]) -> bool:
            asked.append([m.name for m in models])
            return len(models) <= 2

        first, second, third = _model("a"), _model("b"), _model("c")
        assert intake.offer([first], fits=two_at_most)
        assert intake.offer([second], fits=two_at_most)
        assert not intake.offer([third], fits=two_at_most)
        assert asked == [["a"], ["a", "b"], ["a", "b", "c"]]
        assert intake.take(5.0, _never) == [first, second]

    def test_close_hands_back_what_was_never_taken_in_and_refuses_more(self) -> None:
        intake = FinalIntake("b2")
        intake.holding("b2", True)
        early, late = _model("early"), _model("late")
        assert intake.offer([early])
        assert intake.arrived() == [early]
        assert intake.offer([late])
        assert intake.close() == [late]
        assert not intake.offer([_model("after")])
        assert intake.close() == []

    def test_arrived_hands_over_what_came_so_far_and_stays_open(self) -> None:
        intake = FinalIntake("b2")
        intake.holding("b2", True)
        intake.holding("b1", True)  # still before its layout: arrived does not wait for it
        early, late = _model("early"), _model("late")
        assert intake.offer([early])
        assert intake.arrived() == [early]
        assert intake.arrived() == []
        assert intake.offer([late])
        intake.holding("b1", False)
        assert intake.take(5.0, _never) == [late]

    def test_take_waits_until_no_other_build_is_before_its_layout(self) -> None:
        intake = FinalIntake("b2")
        intake.holding("b2", True)
        intake.holding("b1", True)
        taken: list[list[ModelInfo]] = []
        done = threading.Event()

        def final() -> None:
            taken.append(intake.take(30.0, _never))
            done.set()

        thread = threading.Thread(target=final)
        thread.start()
        assert not done.wait(0.3)  # b1 has not laid out: the final build waits
        carried = _model("late")
        assert intake.offer([carried])
        intake.holding("b1", False)  # b1's layout is done (its carry offered first)
        assert done.wait(10.0)
        thread.join(10.0)
        assert taken == [[carried]]

    def test_the_wait_runs_out_on_the_runs_clock(self) -> None:
        clock = ManualClock()
        intake = FinalIntake("b2", clock=clock)
        intake.holding("b2", True)
        intake.holding("b1", True)  # held before its layout for good
        taken: list[list[ModelInfo]] = []
        done = threading.Event()

        def final() -> None:
            taken.append(intake.take(60.0, _never))
            done.set()

        thread = threading.Thread(target=final)
        thread.start()
        assert not done.wait(0.3)  # the run's clock stands still: the wait goes on
        clock.advance(60.0)
        assert done.wait(10.0)  # seen at the wait's next turn (half a second at most)
        thread.join(10.0)
        assert taken == [[]]
        assert not intake.offer([_model("late")])  # closed: a carry now goes elsewhere

    def test_no_final_build_takes_nothing(self) -> None:
        intake = FinalIntake(None)
        intake.holding("b1", True)
        assert not intake.offer([_model("a")])


class TestIntakeQualifies:
    """Only recipes whose steps before the layout can be repeated for newcomers qualify."""

    def test_orient_and_support_before_the_layout_qualify(self) -> None:
        assert FinalIntake.qualifies(make_recipe())

    def test_a_label_before_the_layout_does_not(self) -> None:
        recipe = make_recipe(steps=("auto_orient", "label", "auto_support", "auto_layout"))
        assert not FinalIntake.qualifies(recipe)

    def test_without_a_layout_or_with_on_overflow_fail_nothing_qualifies(self) -> None:
        assert not FinalIntake.qualifies(make_recipe(steps=("auto_orient", "auto_support")))
        assert not FinalIntake.qualifies(make_recipe(on_overflow="fail"))


class TestAnotherRunningBuildsIntake:
    """A build other than the final one takes carries while it holds a server, until its
    first layout is done; what it never takes in is handed back when it ends."""

    def test_only_a_running_build_before_its_layout_is_offered_carries(self) -> None:
        intake = FinalIntake("b3")
        intake.holding("b3", True)
        assert intake.running_before_layout() == []
        assert not intake.offer_early("b1", [_model("a")])  # holds no server yet
        intake.holding("b1", True)
        intake.holding("b2", True)
        assert intake.running_before_layout() == ["b1", "b2"]  # never the final one
        assert not intake.offer_early("b3", [_model("a")])
        carried = _model("a")
        assert intake.offer_early("b1", [carried])
        assert intake.arrived_early("b1", last=False) == [carried]
        later = _model("b")
        assert intake.offer_early("b1", [later])  # during its layout
        assert intake.arrived_early("b1", last=True) == [later]
        assert not intake.offer_early("b1", [_model("c")])
        assert intake.arrived_early("b2", last=False) == []  # nothing carried into it
        assert intake.running_before_layout() == ["b2"]

    def test_the_fit_test_sees_what_came_before(self) -> None:
        intake = FinalIntake("b3")
        intake.holding("b1", True)
        asked: list[list[str]] = []

        def one_at_most(models: Sequence[ModelInfo]) -> bool:
            asked.append([m.name for m in models])
            return len(models) <= 1

        assert intake.offer_early("b1", [_model("a")], fits=one_at_most)
        assert not intake.offer_early("b1", [_model("b")], fits=one_at_most)
        assert asked == [["a"], ["a", "b"]]

    def test_a_build_that_ends_hands_back_what_it_never_took_in(self) -> None:
        intake = FinalIntake("b3")
        intake.holding("b1", True)
        carried = _model("a")
        assert intake.offer_early("b1", [carried])
        intake.holding("b1", False)  # its attempt failed: kept for a retry
        assert not intake.offer_early("b1", [_model("b")])
        assert intake.close("b1") == [carried]
        assert intake.close("b1") == []
        intake.holding("b1", True)  # closed for good, whatever it reports later
        assert not intake.offer_early("b1", [_model("c")])

    def test_no_other_build_takes_carries_when_the_recipe_allows_no_final_one(self) -> None:
        intake = FinalIntake(None)
        intake.holding("b1", True)
        assert intake.running_before_layout() == []
        assert not intake.offer_early("b1", [_model("a")])
