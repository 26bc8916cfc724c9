"""A screenshot's memory is the picture's, whatever the size of the models in it.

Measured with the process's own allocation tracer (numpy reports its arrays to
``tracemalloc``), not by timing: the peak of one ``save_screenshot`` call.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from test_engine_files import FORM4, read_png

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles

#: Far above what a default-size screenshot needs (some 40 to 90 MB), far below what one cost
#: when the samples of every covered pixel were made at once (360 MB for a 10 mm cube, 970 MB
#: for a supported metre-wide one).
PEAK_BOUND_MB = 150


def screenshot_peak_mb(
    engine: SimEngine, scene: dict[str, str], path: Path, **view: object
) -> float:
    tracemalloc.start()
    try:
        engine.call("save_screenshot", scene, {"file": str(path), **view})
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


class TestAScreenshotsMemory:
    """A default-size screenshot stays within a bound set by its pixels, not its models."""

    @pytest.mark.parametrize("scale", [1, 100], ids=["a 10 mm cube", "a metre-wide cube"])
    @pytest.mark.parametrize("supported", [False, True], ids=["bare", "supported"])
    def test_the_peak_is_bounded_whatever_the_models_size(
        self, tmp_path: Path, scale: int, supported: bool
    ) -> None:
        engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        cube = tmp_path / "cube.stl"
        write_stl(cube, box_triangles((0, 0, 0), (10, 10, 10)))
        model = engine.call("import_model", scene, {"file": str(cube)})["id"]
        engine.call("update_model", {**scene, "id": model}, {"scale": scale})
        if supported:
            engine.call("auto_support", scene, {"models": [model]})
        shot = tmp_path / "shot.png"

        peak = screenshot_peak_mb(engine, scene, shot)

        assert peak < PEAK_BOUND_MB, f"{peak:.0f} MB"
        width, height, pixels = read_png(shot)
        assert max(width, height) == 820
        assert len({tuple(p) for p in pixels.reshape(-1, 3)[::97]}) > 3  # a picture, not a blank
