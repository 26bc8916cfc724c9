"""Builds balanced over servers: as many builds, each on one platform, their work split evenly."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planning_factories import make_model, make_recipe

from preform_pipeline.plan.balance import (
    BUILD_WORK_MODELS,
    balance_groups,
    build_work,
    model_work,
)
from preform_pipeline.plan.builds import (
    BuildPlan,
    ModelInfo,
    Plan,
    plain_pass_fits,
    plan_builds,
    recipe_machine,
)
from preform_pipeline.plan.footprint import DEFAULT_LAYOUT_SPACING_MM, RAFT_BORDER_MM
from preform_pipeline.plan.schedule import balanced_queues
from preform_pipeline.recipes.model import Recipe

#: Form 4's platform (mm).
PLATFORM = (200.0, 125.0)


def _recipe(**batching: object) -> Recipe:
    # No turns: every placement is the model's own box, which the checks below can redo.
    return make_recipe(allow_rotation=False, margin_mm=0.0, **batching)


def _uneven(smalls: int = 40, case_size: int = 0) -> list[ModelInfo]:
    """Four parts that each need a platform, and small parts the nester piles into the
    builds it still has open: on one server, builds of 1, 31, 11 and 1 models."""
    bigs = [make_model(f"big{i}", (120.0, 100.0, 10.0)) for i in range(4)]
    small = [
        make_model(f"small{i:02d}", (10.0, 10.0 + i % 3, 5.0),
                   case=f"case{i // case_size}" if case_size else None)
        for i in range(smalls)
    ]
    return bigs + small


def _queue_loads(plan: Plan, servers: int) -> list[float]:
    works = [build_work(b) for b in plan.builds]
    return [sum(works[i] for i in q) for q in balanced_queues(works, servers)]


def _rect_gap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Distance between two axis-aligned boxes (x0, y0, x1, y1); 0 when they touch or meet."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return math.hypot(dx, dy)


def assert_laid_out(build: BuildPlan, margin: float = 0.0) -> None:
    """Every model of ``build`` placed once, its raft inside the platform less the margin,
    rafts at least the layout spacing apart (the footprint rules, redone by hand)."""
    raft = RAFT_BORDER_MM["FULL_RAFT"]
    assert sorted(p.path for p in build.placements) == sorted(build.paths)
    boxes = []
    for p in build.placements:
        model = next(m for m in build.models if m.path == p.path)
        assert not p.rotated
        assert (p.width_mm, p.depth_mm) == pytest.approx(model.footprint_mm)
        box = (p.x_mm - p.width_mm / 2 - raft, p.y_mm - p.depth_mm / 2 - raft,
               p.x_mm + p.width_mm / 2 + raft, p.y_mm + p.depth_mm / 2 + raft)
        assert box[0] >= -PLATFORM[0] / 2 + margin - 1e-6, (build.name, p)
        assert box[1] >= -PLATFORM[1] / 2 + margin - 1e-6, (build.name, p)
        assert box[2] <= PLATFORM[0] / 2 - margin + 1e-6, (build.name, p)
        assert box[3] <= PLATFORM[1] / 2 - margin + 1e-6, (build.name, p)
        boxes.append((p.path, box))
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert _rect_gap(box_a, box_b) >= DEFAULT_LAYOUT_SPACING_MM - 1e-6, (build.name, a, b)
    hulls = sum(m.footprint_mm[0] * m.footprint_mm[1] for m in build.models)
    assert build.fill_ratio == pytest.approx(hulls / (PLATFORM[0] * PLATFORM[1]))


class TestUnequalBuildsOnFourServers:
    """A batch planned in builds of 1 to 31 models comes out even on four servers."""

    def test_the_queues_end_within_one_model_of_an_even_split_with_as_many_builds(
        self,
    ) -> None:
        models = _uneven()
        before = plan_builds(_recipe(), models)
        after = plan_builds(_recipe(), models, servers=4)
        assert [len(b.models) for b in before.builds] == [1, 31, 11, 1]  # the premise
        assert len(after.builds) == len(before.builds)
        assert after.model_count == len(models) and after.ok
        mean = sum(build_work(b) for b in after.builds) / 4
        largest = max(model_work(m) for m in models)
        assert max(_queue_loads(before, 4)) > mean + 10 * largest
        assert max(_queue_loads(after, 4)) <= mean + largest
        assert after.servers == 4 and before.servers == 1

    def test_every_build_is_laid_out_on_its_platform_with_its_rafts_apart(self) -> None:
        after = plan_builds(_recipe(), _uneven(), servers=4)
        for build in after.builds:
            assert_laid_out(build)
        assert [b.index for b in after.builds] == [1, 2, 3, 4]
        assert [b.name for b in after.builds] == [f"test-recipe-{i:03d}" for i in (1, 2, 3, 4)]

    def test_cases_move_whole(self) -> None:
        models = _uneven(smalls=39, case_size=3)
        after = plan_builds(_recipe(keep_cases_together=True), models, servers=4)
        before = plan_builds(_recipe(keep_cases_together=True), models)
        homes: dict[str, set[int]] = {}
        for build in after.builds:
            for m in build.models:
                if m.case_id is not None:
                    homes.setdefault(m.case_id, set()).add(build.index)
        assert len(homes) == 13 and all(len(h) == 1 for h in homes.values())
        assert not after.warnings
        assert max(_queue_loads(after, 4)) < max(_queue_loads(before, 4))  # it did move some
        for build in after.builds:
            assert_laid_out(build)

    def test_a_build_never_holds_more_than_the_recipe_allows(self) -> None:
        # 26 small blocks at most 12 a build: 12, 12 and 2. On two servers the queue of a
        # full build and the small one is the longest; only a full build could take more.
        blocks = [make_model(f"small{i:02d}", (10.0, 10.0 + i % 3, 5.0)) for i in range(26)]
        recipe = _recipe(max_models_per_build=12)
        assert [len(b.models) for b in plan_builds(recipe, blocks).builds] == [12, 12, 2]
        after = plan_builds(recipe, blocks, servers=2)
        assert [len(b.models) for b in after.builds] == [12, 12, 2]

    def test_the_same_batch_gives_the_same_plan(self) -> None:
        first = plan_builds(_recipe(), _uneven(), servers=4)
        second = plan_builds(_recipe(), _uneven(), servers=4)
        assert first.builds == second.builds


class TestPlainPassFits:
    """The planner's one test of a build, for models a run wants to add to one."""

    def test_models_that_share_the_platform_fit_and_one_more_large_does_not(self) -> None:
        recipe = _recipe()
        machine = recipe_machine(recipe)
        halves = [make_model(f"half{i}", (90.0, 110.0, 10.0)) for i in range(2)]
        assert plain_pass_fits(recipe, halves, machine)
        assert not plain_pass_fits(recipe, [*halves, make_model("third", (90.0, 110.0, 10.0))],
                                   machine)

    def test_with_no_platform_to_judge_anything_fits(self) -> None:
        huge = [make_model(f"huge{i}", (150.0, 110.0, 10.0)) for i in range(3)]
        recipe = _recipe()
        assert not plain_pass_fits(recipe, huge, recipe_machine(recipe))
        assert plain_pass_fits(recipe, huge, None)
        powder = make_recipe(machine="FS30-1-0", material="FLP12G01", steps=("auto_pack",),
                             technology="SLS")
        assert plain_pass_fits(powder, huge, recipe_machine(powder))
        assert plain_pass_fits(recipe, [], recipe_machine(recipe))


class TestOneServer:
    """One server (the default) plans exactly as before balancing existed."""

    # sha256 of the builds' index, name, fill, volume and placements (repr) for _uneven(),
    # planned by integration at 123a8ae, before this module.
    DIGEST = "e692038a9c1389d911d11d69b253db96686ed9a82ab67faf3936433fa4b54c9c"

    @staticmethod
    def _digest(plan: Plan) -> str:
        text = repr([(b.index, b.name, b.fill_ratio, b.estimated_volume_ml, b.placements)
                     for b in plan.builds])
        return hashlib.sha256(text.encode()).hexdigest()

    def test_the_plan_is_the_one_of_before_bit_for_bit(self) -> None:
        assert self._digest(plan_builds(_recipe(), _uneven(), servers=1)) == self.DIGEST
        assert self._digest(plan_builds(_recipe(), _uneven())) == self.DIGEST

    def test_fewer_than_one_server_is_refused(self) -> None:
        with pytest.raises(ValueError, match="servers must be 1 or more, got 0"):
            plan_builds(_recipe(), _uneven(), servers=0)

    def test_powder_builds_are_not_balanced(self) -> None:
        # Grouped by volume, and the server packs them: there is no layout to redo here.
        base = make_recipe(machine="FS30-1-0", material="FLP12G01", steps=("auto_pack",),
                           technology="SLS")
        recipe = replace(base, batching=replace(base.batching, packing_density=0.1))
        models = [make_model(f"big{i}", (50.0, 50.0, 50.0)) for i in range(20)] + [
            make_model(f"small{i}", (20.0, 20.0, 20.0)) for i in range(20)]
        one = plan_builds(recipe, models)
        four = plan_builds(recipe, models, servers=4)
        assert len({len(b.models) for b in one.builds}) > 1  # unequal builds: the premise
        assert four.builds == one.builds and four.servers == 1


def _fits_up_to(limit: int, calls: list[tuple[int, ...]]) -> Callable[[Sequence[int]], bool]:
    def fits(indices: Sequence[int]) -> bool:
        calls.append(tuple(indices))
        return len(indices) <= limit
    return fits


class TestBalanceGroups:
    """The search itself, on plain indices and a fit test that counts its calls."""

    def test_a_long_build_gives_to_the_short_ones_until_even(self) -> None:
        calls: list[tuple[int, ...]] = []
        result = balance_groups([list(range(30)), [30], [31]], [[i] for i in range(32)],
                                [1.0] * 32, 3, _fits_up_to(100, calls), hulls=[1.0] * 32)
        assert sorted(len(g) for g in result.groups) == [10, 11, 11]
        assert sorted(i for g in result.groups for i in g) == list(range(32))
        assert result.span_before == 30 + BUILD_WORK_MODELS
        assert result.span_after == 11 + BUILD_WORK_MODELS
        assert result.checks == len(calls)

    def test_a_small_build_of_the_longest_queue_keeps_one_unit(self) -> None:
        # Three builds of 20 that can give nothing, and one of two small units: the queue
        # holding it is the longest, and half the gap would take both of its units.
        def fits(indices: Sequence[int]) -> bool:
            return len({i // 20 for i in indices if i < 60}) < 2

        result = balance_groups(
            [list(range(20)), list(range(20, 40)), list(range(40, 60)), [60, 61]],
            [[i] for i in range(62)], [1.0] * 62, 3, fits, hulls=[1.0] * 60 + [0.5, 0.5])
        assert (61,) in result.groups and len(result.groups) == 4
        assert sorted(i for g in result.groups for i in g) == list(range(62))
        assert result.moved == ((60,),)

    @settings(max_examples=60, deadline=None)
    @given(
        sizes=st.lists(st.integers(1, 25), min_size=1, max_size=8),
        servers=st.integers(1, 6),
        room=st.integers(1, 40),
    )
    def test_any_batch_keeps_its_builds_and_models_and_ends_no_later(
        self, sizes: list[int], servers: int, room: int
    ) -> None:
        starts = list(itertools.accumulate(sizes, initial=0))
        groups = [list(range(a, b)) for a, b in itertools.pairwise(starts)]
        count = starts[-1]
        works = [1.0 + (i % 5) / 10 for i in range(count)]
        calls: list[tuple[int, ...]] = []
        result = balance_groups(groups, [[i] for i in range(count)], works, servers,
                                _fits_up_to(max(room, *sizes), calls),
                                hulls=[float(i % 7) for i in range(count)])
        assert len(result.groups) == len(groups) and all(result.groups)
        assert sorted(i for g in result.groups for i in g) == list(range(count))
        assert all(list(g) == sorted(g) for g in result.groups)
        assert result.span_after <= result.span_before + 1e-9
        assert result.checks == len(calls) <= 16

    def test_the_checks_stay_within_the_budget(self) -> None:
        calls: list[tuple[int, ...]] = []
        result = balance_groups([list(range(30)), [30], [31]], [[i] for i in range(32)],
                                [1.0] * 32, 3, _fits_up_to(100, calls), hulls=[1.0] * 32,
                                budget=5)
        assert result.checks == len(calls) == 4  # two moves of two checks; a third won't fit
        assert sorted(len(g) for g in result.groups) == [8, 9, 15]

    def test_a_build_that_refused_a_unit_is_not_offered_a_larger_one(self) -> None:
        calls: list[tuple[int, ...]] = []
        # Build 1 takes nothing more; build 2 takes anything.
        def fits(indices: Sequence[int]) -> bool:
            calls.append(tuple(indices))
            return 20 not in indices or len(indices) == 1
        hulls = [float(i) for i in range(22)]
        result = balance_groups([list(range(20)), [20], [21]], [[i] for i in range(22)],
                                [1.0] * 22, 3, fits, hulls=hulls)
        asked = [c for c in calls if 20 in c]
        assert [len(c) for c in asked] == [10, 5, 3, 2]  # halved, down to one: refused
        assert asked[-1] == (0, 20)  # the smallest unit, once; nothing larger after it
        assert sorted(len(g) for g in result.groups) == [1, 10, 11]

    def test_budget_of_four_makes_two_moves(self) -> None:
        calls: list[tuple[int, ...]] = []
        result = balance_groups([list(range(30)), [30], [31]], [[i] for i in range(32)],
                                [1.0] * 32, 3, _fits_up_to(100, calls), hulls=[1.0] * 32,
                                budget=4)
        assert result.checks == len(calls) == 4
        assert sorted(len(g) for g in result.groups) == [8, 9, 15]


class TestTheOrderOfTries:
    """Which build gives first, and which builds are not asked again: fixed by the rules."""

    def test_a_refusal_holds_for_the_other_builds_of_the_longest_queue(self) -> None:
        # Two servers: builds A and B (7 each) share the longest queue, R (12) is alone.
        # Half the gap is one unit's work. A is the fuller (hull 11 against 5), so it gives
        # first: its smallest unit, which R refuses; B's smallest is as large: not asked.
        a, b, r = [0, 1, 2], [3, 4, 5], list(range(6, 14))
        calls: list[tuple[int, ...]] = []

        def fits(indices: Sequence[int]) -> bool:
            calls.append(tuple(indices))
            return not (set(r) < set(indices))

        hulls = [1.0, 5.0, 5.0, 1.0, 2.0, 2.0] + [1.0] * 8
        result = balance_groups([a, b, r], [[i] for i in range(14)], [1.0] * 14, 2, fits,
                                hulls=hulls)
        assert calls == [(0, *r)]
        assert result.groups == (tuple(a), tuple(b), tuple(r)) and result.checks == 1

    def test_of_two_queues_as_long_the_first_gives_first(self) -> None:
        calls: list[tuple[int, ...]] = []
        result = balance_groups([list(range(10)), list(range(10, 20)), [20]],
                                [[i] for i in range(21)], [1.0] * 21, 3,
                                _fits_up_to(100, calls), hulls=[1.0] * 21)
        assert result.moved[0] == (0,)
        assert result.groups == ((4, 5, 6, 7, 8, 9, 12), (13, 14, 15, 16, 17, 18, 19),
                                 (0, 1, 2, 3, 10, 11, 20))

    def test_units_of_no_work_stay_where_they_are(self) -> None:
        calls: list[tuple[int, ...]] = []
        result = balance_groups([[0, 1], [2, 3]], [[i] for i in range(4)], [0.0] * 4, 2,
                                _fits_up_to(100, calls), hulls=[1.0] * 4)
        assert result.groups == ((0, 1), (2, 3)) and calls == [] and not result.moved

    def test_a_build_that_changed_is_offered_units_it_refused_before(self) -> None:
        # A fit test that, like the nester's, is not monotone: here a build takes at most
        # eight models, and none whose indices sum to a multiple of three. Found by a
        # search over small batches: with a build's refusals kept after it changed, the
        # search stops after three moves at a longest queue of 12.
        def fits(indices: Sequence[int]) -> bool:
            return len(indices) <= 8 and sum(indices) % 3 != 0

        sizes = [4, 2, 5, 7, 6]
        starts = list(itertools.accumulate(sizes, initial=0))
        hulls = [3.0, 3.0, 2.0, 2.0, 2.0, 3.0, 1.0, 2.0, 1.0, 1.0, 3.0, 2.0, 2.0, 3.0, 1.0,
                 1.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0, 1.0, 3.0]
        result = balance_groups([list(range(a, b)) for a, b in itertools.pairwise(starts)],
                                [[i] for i in range(24)], [1.0] * 24, 4, fits, hulls=hulls)
        assert result.moved == ((2,), (3,), (21,), (0,))
        assert result.span_after == 11.0 and result.span_before == 14.0
