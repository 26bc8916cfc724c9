"""The output steps and the step dispatch, run whole in session 14: the screenshot request
carries the recipe's options and nothing the recipe left out, output templates of steps the
recipe does not run are never rendered, and a node of a kind no step function runs fails the
build attempt with a reason naming it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_executor_steps_requests import ReceivingEngine, _run, _serve
from test_executor_steps_requests import engine as engine  # the fixture

from preform_pipeline.api import PreFormClient
from preform_pipeline.executor import BuildStatus
from preform_pipeline.executor.steps import BuildFacts, StepContext, StepFailure, run_step
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.plan.graph import StepNode
from preform_pipeline.recipes.validate import load_recipe
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.unit.executor.executor_support import (
    SimFarm,
    plan_for,
    staged_name,
    write_box,
    write_recipe,
)


class StillWebpEngine(ReceivingEngine):
    """A receiving engine that writes a still .webp screenshot as PreFormServer does (the
    simulator itself refuses .webp): the picture it would have written as PNG, saved as WebP,
    with a copy of the file kept as the server left it."""

    def __init__(self, keep: Path, **options: Any) -> None:
        super().__init__(**options)
        self.keep = keep

    def call(
        self, operation_id: str, params: dict[str, str], body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id != "save_screenshot" or not str(body.get("file", "")).endswith(".webp"):
            return super().call(operation_id, params, body, progress)
        target = Path(body["file"])
        png = self.keep.with_suffix(".png")
        answer = super().call(operation_id, params, {**body, "file": str(png)}, progress)
        with Image.open(png) as image:
            image.save(target, "WEBP", lossless=True)
        shutil.copyfile(target, self.keep)
        return answer


class TestScreenshotRequest:
    """The screenshot request holds the file and exactly the options the recipe wrote: a
    recipe that names no models sends none (the server's default is every model)."""

    def test_only_the_recipes_options_are_sent(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - screenshot:\n      image_size_px: 320\n      yaw: 15\n"
            "outputs:\n  screenshot: \"{build}.png\"\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("save_screenshot")
        shot = (tmp_path / "out" / "unit-001.png").resolve()
        assert staged_name(body.pop("file"), tmp_path / "out") == shot.name
        assert body == {"image_size_px": 320, "yaw": 15.0}
        assert outcome.outputs == (shot,)
        assert shot.stat().st_size > 0

    def test_all_models_written_out_is_sent_as_written(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(
            tmp_path, "steps:\n  - screenshot:\n      image_size_px: 320\n      models: ALL\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("save_screenshot")
        assert body["models"] == "ALL"


class TestUnusedOutputTemplates:
    """An output path template whose step the recipe does not run is never rendered: fields
    it names need no value, and the build runs."""

    @pytest.mark.parametrize(
        ("steps", "outputs", "made"),
        [
            pytest.param("  - save_form\n", "  screenshot: \"{case_id}.png\"\n",
                         "unit-001.form", id="screenshot-unused"),
            pytest.param("  - screenshot:\n      image_size_px: 200\n",
                         "  form: \"{case_id}.form\"\n", "unit-001.png", id="form-unused"),
        ],
    )
    def test_the_build_succeeds_with_its_own_output(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine, steps: str,
        outputs: str, made: str,
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        # One model per build, so a model field may be used; the loose model has no case id.
        recipe = write_recipe(tmp_path, "steps:\n" + steps + "outputs:\n" + outputs
                              + "batching:\n  max_models_per_build: 1\n")
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [p.name for p in outcome.outputs] == [made]


class TestUnknownStepKind:
    """A graph node whose kind no step function runs ends the attempt as a permanent
    failure naming the node and its kind, before anything is sent."""

    def test_the_failure_names_the_node_and_kind(self, tmp_path: Path) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe_path = write_recipe(tmp_path, "steps:\n  - save_form\n")
        (build,) = plan_for(recipe_path, [box]).builds
        # No server: a request would fail on the closed port, not with this failure.
        client = PreFormClient("http://127.0.0.1:9", timeout=1.0)
        ctx = StepContext(client=client, recipe=load_recipe(recipe_path), build=build,
                          values={}, output_root=tmp_path / "out", facts=BuildFacts())
        with pytest.raises(StepFailure) as caught:
            run_step(ctx, StepNode(id="s7", kind="engrave"), None)
        assert (caught.value.kind, caught.value.reason) == (
            "permanent", "step 's7': unknown step kind 'engrave'"
        )
        assert str(caught.value) == "step 's7': unknown step kind 'engrave'"
        assert not (tmp_path / "out").exists()


class TestStillWebp:
    """A still screenshot saved as .webp is left exactly as the server wrote it: the legend
    is drawn on PNG screenshots only."""

    def test_the_file_is_the_servers_own(self, tmp_path: Path, farm: SimFarm) -> None:
        engine = StillWebpEngine(tmp_path / "kept.webp", fleet_dir=farm.fleet_dir,
                                 work_dir=farm.folder / "work")
        _serve(farm, engine)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - screenshot:\n      image_size_px: 200\n"
                                        "outputs:\n  screenshot: \"{build}.webp\"\n")
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (shot,) = outcome.outputs
        assert shot == (tmp_path / "out" / "unit-001.webp").resolve()
        assert shot.read_bytes() == (tmp_path / "kept.webp").read_bytes()
        assert outcome.warnings == ()


class TestAnimationOfTooFewFrames:
    """An animation of fewer than one frame (the recipe schema refuses it; a recipe made in
    code can still carry one) fails the build with the option's own message, before the
    server is asked for the screenshot."""

    def test_the_build_fails_naming_the_frame_count(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = load_recipe(write_recipe(
            tmp_path,
            "steps:\n  - screenshot:\n      flyaround_transform:\n        transform:\n"
            "          - {yaw: 0, pitch: 30}\n          - {yaw: 90, pitch: 45}\n"
            "        frame_count: 2\n"
            "outputs:\n  screenshot: \"{build}.webp\"\n",
        ))
        (shot,) = recipe.steps
        fly = {**shot.options["flyaround_transform"], "frame_count": 0.5}
        made = replace(recipe, steps=(replace(shot, options={**shot.options,
                                                             "flyaround_transform": fly}),))
        plan = plan_builds(made, read_models([box], import_spec=made.import_options))
        outcome = _run(plan, farm, tmp_path / "out")
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == "frame_count must be >= 1, got 0.5"
        assert engine.bodies("save_screenshot") == []
        assert not (tmp_path / "out" / "unit-001.webp").exists()
