"""Label placement: the label sits on the named face, faces outward, reads upright, fits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from preform_pipeline.errors import LabelDoesNotFitError, PlanningError, TemplateError
from preform_pipeline.plan.labels import label_request, place_label
from preform_pipeline.recipes.model import frozen_mapping
from tests.openapi_contract import local_api_contract

LOW = (-20.0, -10.0, 0.0)
HIGH = (20.0, 10.0, 30.0)  # 40 wide (x), 20 deep (y), 30 tall (z), centred on x = y = 0


class TestFaces:
    """Each face gets the label on that face of the box, normal pointing out of the model."""

    @pytest.mark.parametrize(
        ("face", "position", "normal", "reading"),
        [
            ("front", (0.0, -10.0, 15.0), (0, -1, 0), (1, 0, 0)),
            ("back", (0.0, 10.0, 15.0), (0, 1, 0), (-1, 0, 0)),
            ("left", (-20.0, 0.0, 15.0), (-1, 0, 0), (0, -1, 0)),
            ("right", (20.0, 0.0, 15.0), (1, 0, 0), (0, 1, 0)),
            ("top", (0.0, 0.0, 30.0), (0, 0, 1), (1, 0, 0)),
            ("bottom", (0.0, 0.0, 0.0), (0, 0, -1), (-1, 0, 0)),
            ("largest_side", (0.0, -10.0, 15.0), (0, -1, 0), (1, 0, 0)),
        ],
    )
    def test_position_is_the_face_centre_and_orientation_faces_outward(
        self,
        face: str,
        position: tuple[float, float, float],
        normal: tuple[int, int, int],
        reading: tuple[int, int, int],
    ) -> None:
        body = place_label(LOW, HIGH, {"face": face}, "AB")
        got = body["position"]
        assert (got["x"], got["y"], got["z"]) == pytest.approx(position)
        assert body["orientation"]["z_direction"] == list(normal)
        assert body["orientation"]["x_direction"] == list(reading)

    @pytest.mark.parametrize("face", ["front", "back", "left", "right", "top", "bottom"])
    def test_the_frame_is_right_handed_with_text_up_for_the_viewer(self, face: str) -> None:
        body = place_label(LOW, HIGH, {"face": face}, "AB")
        x = np.array(body["orientation"]["x_direction"], dtype=float)
        z = np.array(body["orientation"]["z_direction"], dtype=float)
        assert float(x @ z) == 0.0
        up = np.cross(z, x)  # text's upward direction on the face
        expected_up = [0, 1, 0] if face in ("top", "bottom") else [0, 0, 1]
        assert up.tolist() == expected_up
        centre = (np.array(LOW) + np.array(HIGH)) / 2
        pos = body["position"]
        outward = np.array([pos["x"], pos["y"], pos["z"]]) - centre
        assert float(outward @ z) > 0, "the label must sit on the side its normal points to"

    def test_largest_side_picks_the_right_face_of_a_deep_model(self) -> None:
        body = place_label((0, 0, 0), (10, 40, 10), {"face": "largest_side"}, "A")
        assert body["orientation"]["z_direction"] == [1, 0, 0]
        assert body["position"]["x"] == 10

    @pytest.mark.parametrize(("face", "axis", "moved"), [("front", "z", 20.0), ("top", "y", 5.0)])
    def test_offset_moves_the_label_along_the_face_vertical(
        self, face: str, axis: str, moved: float
    ) -> None:
        body = place_label(LOW, HIGH, {"face": face, "offset_mm": 5.0}, "A")
        assert body["position"][axis] == pytest.approx(moved)

    def test_bounds_may_be_numpy_arrays_and_the_answer_is_plain_json(self) -> None:
        body = place_label(np.array(LOW), np.array(HIGH), {"face": "front"}, "A", model_id="m1")
        assert body["model_id"] == "m1"
        assert all(type(v) is float for v in body["position"].values())


class TestFit:
    """Text too large for its face shrinks down to the minimum font, or fails."""

    def test_a_label_that_fits_keeps_its_font(self) -> None:
        body = place_label(LOW, HIGH, {"face": "front"}, "ABC", font_size_mm=5.0)
        assert body["font_size_mm"] == 5.0

    def test_a_long_label_shrinks_to_fit_the_face_width(self) -> None:
        text = "X" * 20  # 20 x 0.6 x 5 = 60 mm wide at 5 mm: more than the 38 mm room
        body = place_label(LOW, HIGH, {"face": "front", "margin_mm": 1.0}, text, font_size_mm=5)
        assert body["font_size_mm"] < 5.0
        assert len(text) * 0.6 * body["font_size_mm"] <= 38.0

    @pytest.mark.parametrize(
        "rule",
        [
            {"face": "front", "fit": "fail"},
            {"face": "front", "min_font_size_mm": 4.8},
            {"face": "top", "offset_mm": 9.5},
        ],
        ids=["fit-fail", "below-minimum", "offset-off-the-face"],
    )
    def test_a_label_that_cannot_fit_raises_naming_text_and_face(
        self, rule: dict[str, Any]
    ) -> None:
        with pytest.raises(PlanningError) as caught:
            place_label(LOW, HIGH, rule, "CASE-000123456", font_size_mm=5)
        assert "'CASE-000123456'" in str(caught.value)
        assert f"{rule['face']} face" in str(caught.value)

    def test_skip_shrinks_like_shrink_while_the_text_can_fit(self) -> None:
        text = "CASE-0001"
        shrunk = place_label(LOW, HIGH, {"face": "front", "fit": "shrink"}, text, font_size_mm=9)
        skipped = place_label(LOW, HIGH, {"face": "front", "fit": "skip"}, text, font_size_mm=9)
        assert skipped == shrunk
        assert float(skipped["font_size_mm"]) < 9

    @pytest.mark.parametrize("fit", ["shrink", "skip", "fail"])
    def test_a_label_that_cannot_fit_is_a_label_does_not_fit_error(self, fit: str) -> None:
        rule = {"face": "front", "fit": fit, "min_font_size_mm": 4.8}
        if fit == "fail":
            rule.pop("min_font_size_mm")
        with pytest.raises(LabelDoesNotFitError):
            place_label(LOW, HIGH, rule, "CASE-000123456", font_size_mm=5)

    def test_empty_text_is_refused(self) -> None:
        with pytest.raises(PlanningError, match="empty"):
            place_label(LOW, HIGH, {"face": "front"}, "  ")

    def test_an_unknown_face_is_refused(self) -> None:
        with pytest.raises(PlanningError, match="sideways"):
            place_label(LOW, HIGH, {"face": "sideways"}, "A")


class TestRequest:
    """label_request renders the text template and produces a contract-valid body."""

    OPTIONS = frozen_mapping(
        {
            "text": "{case_id}-{stem}",
            "font_size_mm": 4,
            "depth_mm": 0.6,
            "application_mode": "ENGRAVE",
            "placement": {"face": "front", "margin_mm": 1},
        }
    )

    def test_the_text_comes_from_the_template(self) -> None:
        body = label_request(
            self.OPTIONS,
            model_id="abc",
            bounds_min=LOW,
            bounds_max=HIGH,
            values={"case_id": "C7", "stem": "upper"},
        )
        assert body["label"] == "C7-upper"
        assert body["application_mode"] == "ENGRAVE"
        assert body["model_id"] == "abc"

    def test_a_missing_field_is_a_template_error(self) -> None:
        with pytest.raises(TemplateError):
            label_request(
                self.OPTIONS, model_id="abc", bounds_min=LOW, bounds_max=HIGH, values={}
            )

    def test_explicit_position_and_orientation_pass_through(self) -> None:
        options = frozen_mapping(
            {
                "text": "{case_id}",
                "font_size_mm": 3,
                "depth_mm": 1,
                "position": {"x": 1, "y": 2, "z": 3},
                "orientation": {"x": 0, "y": 0, "z": 90},
            }
        )
        body = label_request(
            options, model_id="m", bounds_min=LOW, bounds_max=HIGH, values={"case_id": "K"}
        )
        assert body["position"] == {"x": 1, "y": 2, "z": 3}
        assert body["orientation"] == {"x": 0, "y": 0, "z": 90}

    @pytest.mark.parametrize("face", ["front", "back", "left", "right", "top", "bottom"])
    def test_bodies_conform_to_the_label_part_request_schema(self, face: str) -> None:
        contract = local_api_contract()
        schema = contract.request_schema("/scene/{scene_id}/label/", "post")
        body = place_label(LOW, HIGH, {"face": face}, "C-1", font_size_mm=4, model_id="m")
        contract.assert_valid(body, schema, f"label on {face}")
