"""One rule decides whether a kept-together case fits a platform, for the check and the batch.

A random Hypothesis run found a case the case check kept together (it fitted one platform)
which the batch nesting then called too large, failing the whole batch. The examples here
are that case and the nester-level property behind it.
"""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from planning_factories import make_model, make_recipe
from test_plan_nesting import check, rectangle

from preform_pipeline.plan.builds import plan_builds
from preform_pipeline.plan.nesting import Outline, _Rules, _together, fits_one_platform, nest

FORM_4L = (353.0, 196.0)


class TestTheCaseFoundByHypothesis:
    """The failing example: three long parts of one case on a Form 4L, no rotation."""

    SIZES = ((246.2, 77.4, 10.0), (49.1, 128.9, 10.0), (318.1, 47.3, 10.0))

    def test_the_case_is_planned_into_one_build_not_refused(self) -> None:
        recipe = make_recipe(machine="FORM-4L-0", keep_cases_together=True,
                             allow_rotation=False, margin_mm=0.0)
        models = [make_model(f"m{i}", size, case="case-a") for i, size in enumerate(self.SIZES)]
        plan = plan_builds(recipe, models)
        assert plan.ok and not plan.warnings
        assert [sorted(m.name for m in b.models) for b in plan.builds] == [["m0", "m1", "m2"]]

    def test_other_models_do_not_change_the_answer(self) -> None:
        recipe = make_recipe(machine="FORM-4L-0", keep_cases_together=True,
                             allow_rotation=False, margin_mm=0.0)
        case = [make_model(f"m{i}", size, case="case-a") for i, size in enumerate(self.SIZES)]
        others = [make_model(f"x{i}", (30.0 + i, 20.0, 5.0)) for i in range(12)]
        plan = plan_builds(recipe, [*others, *case])
        assert plan.ok and not plan.warnings
        homes = {b.index for b in plan.builds for m in b.models if m.case_id == "case-a"}
        assert len(homes) == 1 and plan.model_count == 15


class TestAGroupTheFirstRuleCannotPlace:
    """A group that only another rule of the search places gets a platform of its own."""

    GROUP = ((320.4, 14.1), (57.8, 74.8), (49.9, 117.9))

    def _group(self) -> list[Outline]:
        return [Outline(f"g{i}", rectangle(w, d), 1.0, w * d, group="g")
                for i, (w, d) in enumerate(self.GROUP)]

    def test_the_first_rule_alone_cannot_place_it(self) -> None:
        # The premise of this example: the greedy pass's own rule finds no room for it.
        group = self._group()
        rules = _Rules(group, FORM_4L, 0.0, False, 1.0, 15.0, None, 1.0)
        first = rules.nester(0)
        assert not first.place(first.empty(), _together(group))
        assert fits_one_platform(group, FORM_4L, spill=1.0, allow_rotation=False)

    def test_nesting_the_batch_keeps_it_on_one_platform(self) -> None:
        group = self._group()
        others = [Outline(f"o{i}", rectangle(40 + i, 25), 1.0, (40 + i) * 25.0)
                  for i in range(10)]
        bins = nest([*others, *group], FORM_4L, spill=1.0, allow_rotation=False,
                    search_s_per_model=0.0)
        check([*others, *group], bins, FORM_4L, 0.0, 1.0, [])
        homes = [b for b in bins if any(p.key.startswith("g") for p in b.placements)]
        assert len(homes) == 1 and len(homes[0].placements) >= 3


class TestTheCheckAndTheBatchAgree:
    """Whatever the group, fitting one platform alone means the batch places it together."""

    @settings(max_examples=10, deadline=None)
    @given(
        group=st.lists(st.tuples(st.floats(10, 250), st.floats(8, 150)), min_size=2,
                       max_size=4),
        others=st.lists(st.tuples(st.floats(5, 120), st.floats(5, 90)), max_size=8),
        rotate=st.booleans(),
    )
    def test_a_group_that_fits_alone_is_never_refused_in_a_batch(
        self, group: list[tuple[float, float]], others: list[tuple[float, float]],
        rotate: bool,
    ) -> None:
        members = [Outline(f"g{i}", rectangle(w, d), 1.5, w * d, group="g")
                   for i, (w, d) in enumerate(group)]
        rest = [Outline(f"o{i}", rectangle(w, d), 1.5, w * d) for i, (w, d) in enumerate(others)]
        assume(fits_one_platform(members, FORM_4L, spill=1.0, allow_rotation=rotate))
        unfit: list[str] = []
        bins = nest([*rest, *members], FORM_4L, spill=1.0, allow_rotation=rotate, unfit=unfit,
                    search_s_per_model=0.0)
        check([*rest, *members], bins, FORM_4L, 0.0, 1.0, unfit)
        homes = {i for i, b in enumerate(bins) for p in b.placements if p.key.startswith("g")}
        assert len(homes) == 1
