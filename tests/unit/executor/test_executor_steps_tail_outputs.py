"""The build's files: the screenshot with its legend (each model's number, name, place and
supports, the view, the build and the date, exactly as the legend module draws them from
what the server said), where outputs go, and a form whose save failed leaving nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_executor_steps_requests import ProgressRecorder, ReceivingEngine, _run, _serve

from preform_pipeline.executor import (
    BuildStatus,
)
from preform_pipeline.executor.steps import import_names
from preform_pipeline.legend import CameraView, ModelMark, add_legend
from preform_pipeline.plan.builds import Plan
from tests.unit.executor.executor_support import (
    ScriptedFaults,
    SimFarm,
    plan_for,
    write_box,
    write_recipe,
)


class KeepingEngine(ReceivingEngine):
    """A receiving engine that also keeps a copy of each screenshot as the server wrote it,
    before the pipeline draws on it."""

    def __init__(self, keep: Path, **options: Any) -> None:
        super().__init__(**options)
        self.keep = keep
        self.kept: list[Path] = []

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "save_screenshot":
            self.keep.mkdir(parents=True, exist_ok=True)
            copy = self.keep / f"{len(self.kept)}-{Path(body['file']).name}"
            shutil.copyfile(body["file"], copy)
            self.kept.append(copy)


def _expected_legend(
    engine: KeepingEngine, plan: Plan, date: str, view: CameraView, into: Path
) -> Path:
    """The server's own screenshot with the legend drawn by the legend module from what the
    server last said about the scene: the image the screenshot step must leave."""
    (build,) = plan.builds
    scene = engine.answers("get_scene")[-1]
    by_name = {m["name"]: m for m in scene["models"]}
    marks = []
    for model, name in zip(build.models, import_names(build), strict=True):
        if name not in by_name:
            continue  # not on this platform (dropped with its case)
        info = by_name[name]
        number = len(marks) + 1
        low, high = info["bounding_box"]["min_corner"], info["bounding_box"]["max_corner"]
        marks.append(ModelMark(
            number=number,
            text=f"{model.case_id}/{model.path.name}" if model.case_id else model.path.name,
            box=((low["x"], low["y"], low["z"]), (high["x"], high["y"], high["z"])),
            supported=bool(info["has_supports"]),
        ))
    (raw,) = engine.kept
    expected = into / "expected.png"
    shutil.copyfile(raw, expected)
    return add_legend(expected, title=build.name, subtitle=date, marks=marks, view=view)


def _pixels(path: Path) -> np.ndarray[Any, Any]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class TestLegendDrawn:
    """The screenshot the build leaves is the server's image with every model numbered in
    build order and named (case id and file), placed from the server's boxes and supports,
    for the view the recipe asked, under the build's name and the run's date."""

    @pytest.mark.parametrize(
        ("shot_options", "support", "view"),
        [
            pytest.param("      yaw: 30\n      pitch: 20\n      image_size_px: 480\n",
                         True, CameraView(yaw_deg=30.0, pitch_deg=20.0), id="own-angles"),
            pytest.param("", False, CameraView(), id="defaults"),
            pytest.param("      view_type: FULL_BUILD_VOLUME\n      image_size_px: 400\n",
                         True, CameraView(view_type="FULL_BUILD_VOLUME"), id="whole-volume"),
            pytest.param("      crop_to_models: false\n      image_size_px: 400\n",
                         True, CameraView(crop_to_models=False), id="uncropped"),
        ],
    )
    def test_the_image_is_the_servers_with_the_legend_of_this_build(
        self, tmp_path: Path, farm: SimFarm, shot_options: str, support: bool,
        view: CameraView,
    ) -> None:
        engine = KeepingEngine(tmp_path / "kept", fleet_dir=farm.fleet_dir,
                               work_dir=farm.folder / "work")
        _serve(farm, engine)
        case = tmp_path / "models" / "C-7"
        write_box(case, "crown", 20, 12, 8)
        write_box(case, "bridge", 30, 10, 6)
        loose = write_box(tmp_path / "models", "loose", 10, 10, 25)
        steps = "steps:\n" + ("  - auto_support\n" if support else "") + "  - auto_layout\n"
        recipe = write_recipe(
            tmp_path,
            steps + "  - screenshot:\n" + (shot_options or "      image_size_px: 400\n")
            + "outputs:\n  screenshot: \"{date}/{build}.png\"\n",
        )
        plan = plan_for(recipe, [case, loose])
        outcome = _run(plan, farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (shot,) = outcome.outputs
        assert shot.suffix == ".png" and outcome.warnings == ()
        expected = _expected_legend(engine, plan, shot.parent.name, view, tmp_path)
        got, want = _pixels(shot), _pixels(expected)
        assert got.shape == want.shape
        assert np.array_equal(got, want)
        assert got.shape[0] > _pixels(engine.kept[0]).shape[0]  # the strip was added


class TestLegendAfterADrop:
    """A case dropped from the build is not in its legend: the models left on the platform
    are numbered from 1, each marked on the image."""

    def test_only_the_models_on_the_platform_are_numbered_and_marked(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = KeepingEngine(tmp_path / "kept", fleet_dir=farm.fleet_dir,
                               work_dir=farm.folder / "work")
        _serve(farm, engine)
        root = tmp_path / "models"
        # The first case's name is too long for its label to fit: that case is dropped.
        long_case = "a-case-" + "x" * 40
        write_box(root / long_case, "upper", 30, 20, 15)
        write_box(root / "b-case", "upper", 30, 20, 15)
        write_box(root / "b-case", "lower", 20, 20, 10)
        recipe = write_recipe(
            tmp_path,
            "on_model_failure: drop_case\nsteps:\n"
            "  - label:\n      text: \"{case_id}\"\n      font_size_mm: 3\n      depth_mm: 0.5\n"
            "      placement: {face: front, margin_mm: 1, fit: fail}\n"
            "  - auto_layout\n  - screenshot:\n      image_size_px: 400\n",
        )
        plan = plan_for(recipe, [root / long_case, root / "b-case"])
        outcome = _run(plan, farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [Path(p).parent.name for p, _ in outcome.dropped] == [long_case]
        (shot,) = outcome.outputs
        assert [w for w in outcome.warnings if "legend" in w] == []
        expected = _expected_legend(engine, plan, shot.parent.name, CameraView(),
                                    tmp_path)
        assert np.array_equal(_pixels(shot), _pixels(expected))


class TestOutputFiles:
    """Outputs land where the recipe's templates say, below the output folder (made as
    deep as needed), each one reported by its real path."""

    def test_nested_folders_are_made_and_paths_are_reported_resolved(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        real = tmp_path / "real"
        real.mkdir()
        (tmp_path / "link").symlink_to(real, target_is_directory=True)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - save_form\n  - screenshot\n"
            "outputs:\n  form: \"forms/{recipe}/{build}.form\"\n"
            "  screenshot: \"shots/{recipe}/{build}.png\"\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "link" / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.outputs == (
            real / "out" / "forms" / "unit" / "unit-001.form",
            real / "out" / "shots" / "unit" / "unit-001.png",
        )
        assert all(p.stat().st_size > 0 for p in outcome.outputs)


class TestFailedSave:
    """A save the server failed gives its claimed name back: the retry writes the form under
    the name the recipe asked for, and no empty file is left beside it."""

    def test_the_retry_writes_the_form_under_its_own_name(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"save_form_file": 1}))
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n")
        recorder = ProgressRecorder()
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out",
                       reporter=recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert len(outcome.attempts) == 2
        (form,) = outcome.outputs
        assert form.name == "unit-001.form" and form.stat().st_size > 0
        assert sorted(p.name for p in form.parent.glob("*.form")) == ["unit-001.form"]
        assert recorder.fractions.get("save_form", [])[-1:] == [1.0]
