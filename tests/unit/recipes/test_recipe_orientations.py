"""Orientations in a recipe (a label's, a drain hole's) as ``validate`` reports them (session
32): a wrong element is named by its row and column with the recipe's line, and a value the
server would refuse (not finite, a matrix that is no rotation, directions not at right
angles) is refused here, where it was taken and failed at the step with the request's path.
Numbers that are not finite are the loader's to refuse, anywhere in a recipe."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preform_pipeline.recipes.orientation import orientation_problems
from tests.unit.recipes.recipe_cases import validate_text
from tests.unit.recipes.test_recipe_semantic import sla

BEYOND_FLOAT = "1" + "0" * 400
NOT_FINITE = ("is not a finite number; NaN, infinities and numbers beyond about 1.8e308 are "
              "of no use in a recipe")


def label_with(orientation: str) -> str:
    return sla("  - label:\n      text: x\n      font_size_mm: 4\n      depth_mm: 1\n"
               "      position: {x: 0, y: 0, z: 5}\n      orientation:\n" + orientation)


MATRIX = "        linear:\n          - [1, 0, 0]\n          - [0, {}, 0]\n          - [0, 0, 1]\n"
AT_ELEMENT = "recipe.yaml:14:17: $.steps[0].label.orientation.linear[1][1]: "


class TestLabelMatrix:
    """A label's ``linear`` matrix: each element by its place, then the matrix as a whole."""

    @pytest.mark.parametrize(("value", "said"), [
        (BEYOND_FLOAT, f"'{BEYOND_FLOAT[:100]}...' {NOT_FINITE}"),
        (".nan", f"'.nan' {NOT_FINITE}"),
        (".inf", f"'.inf' {NOT_FINITE}"),
        ("1e999", "'1e999' is not of type number"),
        ("'x'", "'x' is not of type number"),
    ], ids=["beyond-a-float", "nan", "infinity", "not-a-yaml-float", "text"])
    def test_a_bad_element_is_named_by_row_and_column(
        self, tmp_path: Path, value: str, said: str
    ) -> None:
        report = validate_text(tmp_path, label_with(MATRIX.format(value)))
        assert [str(p) for p in report.problems] == [AT_ELEMENT + said]

    @pytest.mark.parametrize("matrix", [
        "[[1, 0, 0], [0, 2, 0], [0, 0, 1]]",      # stretched
        "[[1, 0, 0], [0, 1, 0], [0, 0, -1]]",     # mirrored: determinant -1
        "[[1, 0, 0], [1, 0, 0], [0, 0, 1]]",      # two rows alike
    ], ids=["stretched", "mirrored", "rows-alike"])
    def test_a_matrix_that_is_no_rotation_is_refused(self, tmp_path: Path, matrix: str) -> None:
        report = validate_text(tmp_path, label_with(f"        linear: {matrix}\n"))
        assert [str(p) for p in report.problems] == [
            "recipe.yaml:12:9: $.steps[0].label.orientation.linear: is not a rotation: its "
            "rows must be unit vectors at right angles, with determinant +1 (the Local API "
            "takes the linear part of a rigid transform)"]

    def test_a_rotation_written_to_four_decimals_is_taken(self, tmp_path: Path) -> None:
        turned = "[[0.7071, -0.7071, 0], [0.7071, 0.7071, 0], [0, 0, 1]]"
        report = validate_text(tmp_path, label_with(f"        linear: {turned}\n"))
        assert report.valid, [str(p) for p in report.problems]


class TestDrainHoleDirections:
    """A drain hole's direction vectors: finite, not zero, at right angles."""

    @staticmethod
    def hole(orientation: str) -> str:
        return sla("  - hollow\n  - add_drain_holes:\n      drain_holes:\n"
                   "        - position: {x: 0, y: 0, z: 1}\n"
                   f"          orientation: {orientation}\n")

    @pytest.mark.parametrize(("orientation", "where", "said"), [
        ("{z_direction: [0, 0, 0], x_direction: [1, 0, 0]}", "z_direction",
         "must not be zero: it is a direction"),
        ("{z_direction: [0, 0, 1], x_direction: [1, 0, 1]}", "x_direction",
         "must be at right angles to z_direction (they are 45.0 degrees apart)"),
        ("{z_direction: [0, 0, 1], x_direction: [1, .nan, 0]}", "x_direction[1]",
         f"'.nan' {NOT_FINITE}"),
        ("{x: 0, y: .inf, z: 0}", "y", f"'.inf' {NOT_FINITE}"),
    ], ids=["zero", "not-at-right-angles", "nan", "euler-infinity"])
    def test_each_problem_names_its_vector(
        self, tmp_path: Path, orientation: str, where: str, said: str
    ) -> None:
        report = validate_text(tmp_path, self.hole(orientation))
        problems = [p for p in report.problems if "orientation" in (p.json_path or "")]
        assert [(p.json_path, p.message) for p in problems] == [
            (f"$.steps[1].add_drain_holes.drain_holes[0].orientation.{where}", said)]
        assert problems[0].line == 10


def _rotation(w: float, x: float, y: float, z: float) -> list[list[float]]:
    """The rotation of a (not necessarily unit) quaternion, rounded as a person writes it."""
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    rows = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    return [[round(v, 6) for v in row] for row in rows]


quaternions = st.tuples(*[st.floats(-1, 1)] * 4).filter(
    lambda q: sum(v * v for v in q) > 0.01)


class TestTheRule:
    """The rule alone, on values a YAML file cannot hold or the schema refuses."""

    def test_values_of_the_wrong_type_or_not_finite_are_left_to_others(self) -> None:
        assert list(orientation_problems({"linear": [[1, 0], "x", None]}, ())) == []
        assert list(orientation_problems({"z_direction": True, "x_direction": [1, 0, 0]},
                                         ())) == []
        rows = [[10**400, 0, 0], [0, 1, 0], [0, 0, 1]]
        assert list(orientation_problems({"linear": rows}, ())) == []
        rows = [[1, 0, 0], [0, math.nan, 0], [0, 0, 1]]
        assert list(orientation_problems({"linear": rows}, ())) == []

    @settings(max_examples=200, deadline=None)
    @given(quaternions)
    def test_any_rotation_is_taken_and_its_mirror_refused(
        self, q: tuple[float, float, float, float]
    ) -> None:
        rows = _rotation(*q)
        assert list(orientation_problems({"linear": rows}, ())) == []
        for n in range(3):
            mirrored = [[-v for v in row] if i == n else row for i, row in enumerate(rows)]
            assert [p for p, _ in orientation_problems({"linear": mirrored}, ())] == [
                ("linear",)]

    def test_a_zero_x_direction_is_named(self) -> None:
        problems = list(orientation_problems(
            {"z_direction": [0, 0, 1], "x_direction": [0, 0, 0]}, ("o",)))
        assert problems == [(("o", "x_direction"), "must not be zero: it is a direction")]

    @pytest.mark.parametrize(("sign", "degrees"), [(1, "0.0"), (-1, "180.0")])
    def test_directions_whose_cosine_rounds_past_one_are_said_apart(
        self, sign: int, degrees: str
    ) -> None:
        # Parallel in fact; in floating point their cosine is 1.0000000000000002 (or its
        # negative), where acos raises: the rule clamps it.
        z = [0.343, -0.872, 0.516]
        x = [sign * v for v in (0.6208300000000001, -1.57832, 0.93396)]
        assert list(orientation_problems({"z_direction": z, "x_direction": x}, ())) == [
            (("x_direction",), f"must be at right angles to z_direction (they are {degrees} "
                               "degrees apart)")]
