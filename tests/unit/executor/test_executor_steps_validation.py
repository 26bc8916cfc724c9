"""The validate and estimate steps against a simulator: which findings and limits fail a
build, which are kept as warnings, and how the reason names the models (cups,
interferences, bounds, many findings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preform_pipeline.executor import BuildOutcome, BuildStatus
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)

#: Hollowing with 2 mm walls: a box thinner than 2 x 2 mm plus the feature size stays solid.
HOLLOW = "  - hollow:\n      wall_thickness_mm: 2\n"
#: Every model of a build in one scene, as the files were given.
ONE_BUILD = "batching:\n  max_models_per_build: 20\n"


def _run_one(
    tmp_path: Path, farm: SimFarm, steps: str, models: list[Path], batching: str = ""
) -> BuildOutcome:
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipe = write_recipe(tmp_path, "steps:\n" + steps + ONE_BUILD + batching)
    if not farm.servers:
        farm.add()
    result = run(plan_for(recipe, models), FakePool([s.url for s in farm.servers]),
                 tmp_path / "out")
    (outcome,) = result.outcomes
    return outcome


class TestCups:
    """A hollowed model without a drain hole is a cup: it fails the build when the recipe
    fails on cups, and is a warning naming its file otherwise."""

    def test_a_closed_hollow_fails_a_build_that_fails_on_cups(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        hollow = write_box(tmp_path / "m", "hollow", 30, 30, 20)
        thin = write_box(tmp_path / "m", "thin", 30, 30, 4)  # too thin: stays solid
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - auto_layout\n  - validate:\n      fail_on: [cups]\n  - save_form\n",
            [hollow, thin],
        )
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == "validation failed (cups: hollow.stl)"
        assert outcome.outputs == ()  # nothing saved after the failed step

    def test_a_closed_hollow_is_a_warning_when_cups_do_not_fail_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        hollow = write_box(tmp_path / "m", "hollow", 30, 30, 20)
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - validate:\n      fail_on: [out_of_bounds]\n  - save_form\n",
            [hollow],
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.warnings == ("validation: cups: hollow.stl",)

    def test_drain_holes_open_the_hollow_and_the_build_passes(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        hollow = write_box(tmp_path / "m", "hollow", 30, 30, 20)
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - add_drain_holes:\n      diameter_mm: 3\n"
            "      placement: {face: bottom, count: 1}\n"
            "  - validate:\n      fail_on: [cups]\n  - save_form\n",
            [hollow],
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.warnings == ()

    def test_the_default_validation_of_an_sla_recipe_fails_on_cups(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        hollow = write_box(tmp_path / "m", "hollow", 30, 30, 20)
        outcome = _run_one(tmp_path, farm, HOLLOW + "  - validate\n", [hollow])
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == "validation failed (cups: hollow.stl)"


class TestManyFindings:
    """A failure names at most five models per finding (then "..."), kinds in name order; a
    warning names at most ten."""

    @pytest.mark.parametrize(("count", "more"), [(7, " ..."), (6, " ..."), (5, "")])
    def test_a_failure_names_five_models_and_says_when_there_are_more(
        self, tmp_path: Path, farm: SimFarm, count: int, more: str
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 30, 30, 20) for i in range(count)]
        outcome = _run_one(
            tmp_path, farm, HOLLOW + "  - auto_layout\n  - validate:\n      fail_on: [cups]\n",
            boxes,
        )
        assert outcome.status is BuildStatus.FAILED
        match = re.fullmatch(rf"validation failed \(cups: (.*?){re.escape(more)}\)",
                             outcome.reason or "")
        assert match is not None, outcome.reason
        named = match.group(1).split(", ")
        assert len(named) == 5 and set(named) <= {f"box{i}.stl" for i in range(count)}

    def test_a_warning_names_ten_models(self, tmp_path: Path, farm: SimFarm) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i:02}", 30, 30, 20) for i in range(12)]
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - validate:\n      fail_on: [out_of_bounds]\n", boxes,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (warning,) = outcome.warnings
        assert warning.startswith("validation: cups: ")
        named = warning.removeprefix("validation: cups: ").split(", ")
        assert len(named) == 10 and set(named) <= {f"box{i:02}.stl" for i in range(12)}


class TestInterferences:
    """Interferences are asked for with the recipe's collision offset, and each pair is
    named by its files (a model the build did not import, such as a plug, by its id)."""

    def test_the_collision_offset_reaches_the_server(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Laid out 2 mm apart: an offset of 5 mm makes them interfere, none does not.
        boxes = [write_box(tmp_path / "m", name, 20, 20, 10) for name in ("a", "b")]
        layout = "  - auto_layout:\n      model_spacing_mm: 2\n"
        close = _run_one(
            tmp_path / "close", farm,
            layout + "  - validate:\n      fail_on: [interferences]\n"
            "      collision_offset_mm: 5\n",
            boxes,
        )
        assert close.status is BuildStatus.FAILED
        assert close.reason in (
            "validation failed (interferences: a.stl / b.stl)",
            "validation failed (interferences: b.stl / a.stl)",
        )
        apart = _run_one(
            tmp_path / "apart", farm,
            layout + "  - validate:\n      fail_on: [interferences]\n", boxes,
        )
        assert apart.status is BuildStatus.SUCCEEDED, apart.reason

    def test_overlapping_models_fail_with_every_failing_kind_in_name_order(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # No layout: both stand at the platform's centre, one inside the other.
        hollow = write_box(tmp_path / "m", "hollow", 30, 30, 20)
        pin = write_box(tmp_path / "m", "pin", 4, 4, 30)
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - validate:\n      fail_on: [interferences, cups]\n",
            [hollow, pin],
        )
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason in (
            "validation failed (cups: hollow.stl; interferences: hollow.stl / pin.stl)",
            "validation failed (cups: hollow.stl; interferences: pin.stl / hollow.stl)",
        )

    def test_models_of_cases_are_named_with_their_case_ids(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Session 47's trial: every dental case holds an upper.stl, and the reason said
        # "interferences: upper.stl / upper.stl", naming no case.
        cases = [tmp_path / "m" / case for case in ("C-2007", "C-2008")]
        for case, width in zip(cases, (30, 20), strict=True):
            write_box(case, "upper", width, width, 10)
        outcome = _run_one(tmp_path, farm, "  - validate:\n      fail_on: [interferences]\n",
                           cases)
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason in (
            "validation failed (interferences: C-2007/upper.stl / C-2008/upper.stl)",
            "validation failed (interferences: C-2008/upper.stl / C-2007/upper.stl)",
        )

    def test_plugs_are_named_by_their_ids(self, tmp_path: Path, farm: SimFarm) -> None:
        # Two holes with plugs: the plugs stand side by side beside the model, so within
        # 50 mm every two of the three touch, the plugs too.
        hollow = write_box(tmp_path / "m", "hollow", 30, 30, 20)
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - add_drain_holes:\n      diameter_mm: 3\n      create_plug: true\n"
            "      placement: {face: bottom, count: 2}\n"
            "  - validate:\n      fail_on: [interferences]\n      collision_offset_mm: 50\n",
            [hollow],
        )
        assert outcome.status is BuildStatus.FAILED
        match = re.fullmatch(r"validation failed \(interferences: (.*)\)", outcome.reason or "")
        assert match is not None, outcome.reason
        pairs = [pair.split(" / ") for pair in match.group(1).split(", ")]
        assert len(pairs) == 3
        plugs = {name for pair in pairs for name in pair} - {"hollow.stl"}
        assert len(plugs) == 2
        assert all(re.fullmatch(r"[0-9a-f-]{32,36}", plug) for plug in plugs), plugs
        assert sorted(pair.count("hollow.stl") for pair in pairs) == [0, 1, 1]


class TestOutOfBounds:
    """A model the supports lift above the build volume is out of bounds: a failure or a
    warning, as the recipe says."""

    #: 205 mm tall: on its supports it rises above the Form 4's 210 mm.
    TALL = (20, 20, 205)

    def test_a_model_lifted_out_of_the_volume_fails_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        tall = write_box(tmp_path / "m", "tall", *self.TALL)
        outcome = _run_one(
            tmp_path, farm, "  - auto_support\n  - validate:\n      fail_on: [out_of_bounds]\n",
            [tall],
        )
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == "validation failed (out_of_bounds: tall.stl)"

    def test_a_plug_outside_the_volume_is_named_by_its_id(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # A plug stands beside its model: beside one 196 mm wide, it leaves the 200 mm platform.
        wide = write_box(tmp_path / "m", "wide", 196, 30, 20)
        outcome = _run_one(
            tmp_path, farm,
            HOLLOW + "  - add_drain_holes:\n      diameter_mm: 3\n      create_plug: true\n"
            "      placement: {face: bottom, count: 1}\n"
            "  - validate:\n      fail_on: [out_of_bounds]\n",
            [wide], batching="  margin_mm: 0\n",
        )
        assert outcome.status is BuildStatus.FAILED
        match = re.fullmatch(r"validation failed \(out_of_bounds: (.*)\)", outcome.reason or "")
        assert match is not None, outcome.reason
        assert re.fullmatch(r"[0-9a-f-]{32,36}", match.group(1)), outcome.reason

    def test_it_is_a_warning_when_bounds_do_not_fail_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        tall = write_box(tmp_path / "m", "tall", *self.TALL)
        outcome = _run_one(
            tmp_path, farm, "  - auto_support\n  - validate:\n      fail_on: [cups]\n", [tall]
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.warnings == ("validation: out_of_bounds: tall.stl",)


class TestEstimateLimits:
    """The estimate records the server's print time and material; a limit the recipe sets
    and the build exceeds fails it, each exceeded limit named."""

    def test_both_limits_exceeded_are_named(self, tmp_path: Path, farm: SimFarm) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        outcome = _run_one(
            tmp_path, farm,
            "  - estimate:\n      max_print_time_s: 999\n      max_material_ml: 0.5\n", [box],
        )
        assert outcome.status is BuildStatus.FAILED
        # 300 s before the first layer and 7 s for each of the 100 layers; 1 ml of resin.
        assert outcome.reason == (
            "estimated print time 1000 s exceeds 999 s; material 1.0 ml exceeds 0.5 ml"
        )

    def test_within_the_limits_the_figures_are_recorded(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        outcome = _run_one(
            tmp_path, farm,
            "  - estimate:\n      max_print_time_s: 1000\n      max_material_ml: 1\n", [box],
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert (outcome.print_time_s, outcome.material_ml) == (1000.0, pytest.approx(1.0))
