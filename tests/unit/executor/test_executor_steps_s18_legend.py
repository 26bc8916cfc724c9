"""The screenshot's legend when the server's scene, read after the screenshot, lacks one of
the build's models: every model is still listed, none is marked, and the build succeeds
(a real simulator behind loopback HTTP; the scene answer is the one seam)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from test_executor_steps_requests import _run, _serve
from test_executor_steps_tail_outputs import KeepingEngine

from preform_pipeline.executor import BuildStatus
from preform_pipeline.executor.steps import import_names
from preform_pipeline.legend import CameraView, ModelMark, add_legend
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.unit.executor.executor_support import SimFarm, plan_for, write_box, write_recipe


class ForgettingEngine(KeepingEngine):
    """Once a screenshot is saved, the scene it answers leaves out the model ``forgotten``
    (as a server that lost a model between the screenshot and the next read would)."""

    def __init__(self, keep: Path, forgotten: str, **options: Any) -> None:
        super().__init__(keep, **options)
        self.forgotten = forgotten
        self.scene_read: dict[str, Any] | None = None

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        answer = super().call(operation_id, params, body, progress)
        if operation_id != "get_scene" or not self.kept:
            return answer
        answer = copy.deepcopy(answer)
        answer["models"] = [m for m in answer["models"] if m["name"] != self.forgotten]
        self.scene_read = answer
        return answer


def _pixels(path: Path) -> np.ndarray[Any, Any]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class TestAModelTheSceneNoLongerHolds:
    """A model missing from the scene read for the legend is listed without a mark (so no
    model is marked), and the build still succeeds with its screenshot and no warning."""

    def test_the_legend_lists_every_model_and_marks_none(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        models = tmp_path / "models"
        first = write_box(models, "first", 20, 12, 8)
        second = write_box(models, "second", 30, 10, 6)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_layout\n  - screenshot:\n      image_size_px: 400\n"
            "outputs:\n  screenshot: \"{date}/{build}.png\"\n",
        )
        plan = plan_for(recipe, [first, second])
        (build,) = plan.builds
        names = import_names(build)
        engine = ForgettingEngine(tmp_path / "kept", names[1], fleet_dir=farm.fleet_dir,
                                  work_dir=farm.folder / "work")
        _serve(farm, engine)

        outcome = _run(plan, farm, tmp_path / "out")

        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.warnings == ()
        (shot,) = outcome.outputs
        assert engine.scene_read is not None
        assert [m["name"] for m in engine.scene_read["models"]] == [names[0]]
        # What the legend module draws for that scene: the second model without a box.
        kept = engine.scene_read["models"][0]
        low, high = kept["bounding_box"]["min_corner"], kept["bounding_box"]["max_corner"]
        marks = [
            ModelMark(number=1, text=build.models[0].path.name,
                      box=((low["x"], low["y"], low["z"]), (high["x"], high["y"], high["z"])),
                      supported=bool(kept["has_supports"])),
            ModelMark(number=2, text=build.models[1].path.name),
        ]
        (raw,) = engine.kept
        expected = tmp_path / "expected.png"
        shutil.copyfile(raw, expected)
        add_legend(expected, title=build.name, subtitle=shot.parent.name, marks=marks,
                   view=CameraView())
        assert np.array_equal(_pixels(shot), _pixels(expected))
