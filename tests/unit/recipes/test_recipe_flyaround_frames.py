"""A flyaround's frame count: the recipe schema refuses what the client's options refuse, at
validation, with the file, line, column and path, so no such recipe loads and fails later at
its screenshot step."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.api.options import CameraAngle, FlyaroundTransform
from tests.unit.recipes.recipe_cases import MARK, SLA_RECIPE, marked_line, validate_text

PATH = "$.steps[3].screenshot.flyaround_transform.frame_count"


def _recipe(frames: str) -> str:
    return SLA_RECIPE + (
        "  - screenshot:\n      flyaround_transform:\n"
        "        transform: [{yaw: 0, pitch: 30}, {yaw: 90, pitch: 30}]\n"
        f"        frame_count: {frames} {MARK}\n"
        'outputs:\n  screenshot: "{build}.webp"\n'
    )


def _client_takes(frames: float) -> bool:
    try:
        FlyaroundTransform([CameraAngle(0, 30), CameraAngle(90, 30)], frame_count=frames)
    except ValueError:
        return False
    return True


class TestFrameCountAtValidation:
    """Fewer than one frame is refused where the recipe says it; one frame or more loads."""

    @pytest.mark.parametrize("frames", ["0.5", "0.999", "0", "-3"])
    def test_fewer_than_one_frame_is_refused_at_its_line_and_column(
        self, tmp_path: Path, frames: str
    ) -> None:
        text = _recipe(frames)
        report = validate_text(tmp_path, text)
        assert report.recipe is None
        (problem,) = report.problems
        assert (problem.json_path, problem.line, problem.column) == (
            PATH, marked_line(text), len("        frame_count: ") + 1)
        assert str(problem) == (f"recipe.yaml:{marked_line(text)}:22: {PATH}: {frames} is less "
                                "than the minimum of 1")

    @pytest.mark.parametrize("frames", ["1", "1.5", "36"])
    def test_one_frame_or_more_loads(self, tmp_path: Path, frames: str) -> None:
        report = validate_text(tmp_path, _recipe(frames))
        assert report.problems == ()
        assert report.recipe is not None

    @pytest.mark.parametrize("frames", [-1.0, 0.0, 0.5, 0.999, 1.0, 1.001, 2.0, 36.0])
    def test_the_schema_and_the_client_s_options_agree(
        self, tmp_path: Path, frames: float
    ) -> None:
        loads = validate_text(tmp_path, _recipe(repr(frames))).recipe is not None
        assert loads == _client_takes(frames)
