"""``drain_hole_positions``, the placement rule a recipe's ``placement`` names: where the holes
sit on each face of a bounding box away from the origin, how ``count`` spreads them, how an
inset out of range is clamped, which face ``largest_side`` means, and the error for a face
that does not exist."""

from __future__ import annotations

import pytest

from preform_pipeline.executor.steps import drain_hole_positions

#: A 40 x 60 x 30 mm box whose corner is not at the origin, so that a size computed from the
#: corners the wrong way, or a point taken from the wrong corner, shows.
LOW = (10.0, 20.0, 5.0)
HIGH = (50.0, 80.0, 35.0)


class TestFaces:
    """With the defaults (two holes, 3 mm in) each face gets its holes on its own plane,
    pointing out of it: low on a side face, on the centre line of the top and bottom."""

    @pytest.mark.parametrize(
        ("face", "expected"),
        [
            ("front", [((13.0, 20.0, 8.0), (0.0, -1.0, 0.0)),
                       ((47.0, 20.0, 8.0), (0.0, -1.0, 0.0))]),
            ("back", [((13.0, 80.0, 8.0), (0.0, 1.0, 0.0)),
                      ((47.0, 80.0, 8.0), (0.0, 1.0, 0.0))]),
            ("left", [((10.0, 23.0, 8.0), (-1.0, 0.0, 0.0)),
                      ((10.0, 77.0, 8.0), (-1.0, 0.0, 0.0))]),
            ("right", [((50.0, 23.0, 8.0), (1.0, 0.0, 0.0)),
                       ((50.0, 77.0, 8.0), (1.0, 0.0, 0.0))]),
            ("top", [((13.0, 50.0, 35.0), (0.0, 0.0, 1.0)),
                     ((47.0, 50.0, 35.0), (0.0, 0.0, 1.0))]),
            ("bottom", [((13.0, 50.0, 5.0), (0.0, 0.0, -1.0)),
                        ((47.0, 50.0, 5.0), (0.0, 0.0, -1.0))]),
        ],
    )
    def test_the_default_holes_sit_on_the_face_three_millimetres_in(
        self, face: str, expected: list[tuple[tuple[float, ...], tuple[float, ...]]]
    ) -> None:
        assert drain_hole_positions(LOW, HIGH, face) == expected


class TestCount:
    """Holes are spread evenly from end to end; a single hole is in the middle."""

    def test_three_holes_are_evenly_spread(self) -> None:
        holes = drain_hole_positions(LOW, HIGH, "left", count=3, inset_mm=5)
        assert [point for point, _ in holes] == [
            (10.0, 25.0, 10.0), (10.0, 50.0, 10.0), (10.0, 75.0, 10.0)
        ]

    def test_a_single_hole_is_in_the_middle_of_the_face(self) -> None:
        holes = drain_hole_positions(LOW, HIGH, "back", count=1, inset_mm=5)
        assert holes == [((30.0, 80.0, 10.0), (0.0, 1.0, 0.0))]

    def test_no_holes_asked_gives_none(self) -> None:
        assert drain_hole_positions(LOW, HIGH, "front", count=0) == []


class TestInsetOutOfRange:
    """A negative inset puts the holes on the face's edges, and one larger than half the face
    puts them in its middle: never off the face."""

    def test_a_negative_inset_puts_the_holes_on_the_edges(self) -> None:
        holes = drain_hole_positions(LOW, HIGH, "front", count=2, inset_mm=-2)
        assert [point for point, _ in holes] == [(10.0, 20.0, 5.0), (50.0, 20.0, 5.0)]

    def test_an_inset_past_the_middle_stops_at_the_middle(self) -> None:
        holes = drain_hole_positions(LOW, HIGH, "front", count=2, inset_mm=40)
        # Across: half of 40 mm; up: half of 30 mm.
        assert [point for point, _ in holes] == [(30.0, 20.0, 20.0), (30.0, 20.0, 20.0)]

    def test_the_height_of_a_side_hole_has_its_own_limit(self) -> None:
        # 25 mm in fits the 60 mm deep face across, but not the 30 mm height.
        holes = drain_hole_positions(LOW, HIGH, "right", count=1, inset_mm=25)
        assert holes == [((50.0, 50.0, 20.0), (1.0, 0.0, 0.0))]


class TestLargestSide:
    """``largest_side`` is the front when the model is at least as wide as deep."""

    def test_a_square_footprint_gets_the_front(self) -> None:
        holes = drain_hole_positions((0, 0, 0), (30, 30, 10), "largest_side", count=1)
        assert holes == [((15.0, 0.0, 3.0), (0.0, -1.0, 0.0))]

    def test_the_footprint_is_measured_between_the_corners(self) -> None:
        # 40 wide and 30 deep (the corners' own coordinates, 50 and 80, say otherwise).
        holes = drain_hole_positions((10, 50, 0), (50, 80, 10), "largest_side", count=1)
        assert holes == [((30.0, 50.0, 3.0), (0.0, -1.0, 0.0))]


class TestUnknownFace:
    """A face that does not exist is refused with the names of those that do."""

    def test_the_error_lists_the_faces(self) -> None:
        with pytest.raises(ValueError) as raised:
            drain_hole_positions(LOW, HIGH, "side")
        assert str(raised.value) == (
            "drain hole face 'side' is not one of front, back, left, right, top, bottom"
        )
