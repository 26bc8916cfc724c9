"""The scene half of the steps as the server sees it: what an import sends when the recipe
leaves its options out, which model an explicit drain hole goes to, and how the scene's
warnings and refusals name the models by their files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from test_executor_model_edits import SCANS_HEAD, _small_first
from test_executor_steps_drain_holes import engine_options, run_one, scene_models
from test_executor_steps_requests import (
    LosingEngine,
    ProgressRecorder,
    ReceivingEngine,
    _run,
    _serve,
)

from preform_pipeline.executor import BuildStatus
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.unit.executor.executor_support import (
    RECIPE_HEAD,
    ScriptedFaults,
    SimFarm,
    plan_for,
    write_box,
    write_recipe,
)


def serve_receiving(farm: SimFarm) -> ReceivingEngine:
    """A receiving engine, served as one more simulator of the farm."""
    engine = ReceivingEngine(**engine_options(farm))
    _serve(farm, engine)
    return engine


class TestImportDefaults:
    """An import whose recipe names only the units asks the server to refuse a broken mesh
    (``ERROR``) and sends no scale, lock, position or orientation: the server's own."""

    def test_the_request_holds_only_the_file_units_repair_and_name(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = serve_receiving(farm)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        head = RECIPE_HEAD.replace("  repair_behavior: REPAIR\n", "")
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=head)
        outcome = run_one(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("import_model") == [{
            "file": str(box.resolve()), "repair_behavior": "ERROR", "units": "MILLIMETERS",
            "name": "box",
        }]


class TestNearestModel:
    """An explicit hole goes to the model whose bounding box is nearest to it, measured from
    the box's near and far sides alike, also when both are closer than a millimetre."""

    def test_holes_beside_the_small_model_go_to_the_large_one_they_touch(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        # Both stand centred on the origin (no layout): the small one (10 x 10 x 20 mm, the
        # first model) rises out of the middle of the flat large one (60 x 60 x 10 mm).
        small = write_box(tmp_path / "m", "a-small", 10, 10, 20)
        large = write_box(tmp_path / "m", "b-large", 60, 60, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 2\n      drain_holes:\n"
            # On the large one's top, 15 mm to the right of the small one (x up to 5).
            "        - position: {x: 20, y: 0, z: 10}\n"
            "          orientation: {z_direction: [0, 0, 1], x_direction: [1, 0, 0]}\n"
            # On the large one's top, half a millimetre from the small one.
            "        - position: {x: 5.5, y: 0, z: 10}\n"
            "          orientation: {z_direction: [0, 0, 1], x_direction: [1, 0, 0]}\n"
            # On the small one's top, 10 mm above the large one.
            "        - position: {x: 0, y: 0, z: 20}\n"
            "          orientation: {z_direction: [0, 0, 1], x_direction: [1, 0, 0]}\n"
            "  - save_form\n",
        )
        outcome = run_one(_small_first(plan_for(recipe, [small, large])), farm,
                          tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        models = scene_models(outcome)
        assert [(h["position"]["x"], h["position"]["z"])
                for h in models["b-large"].drain_holes] == [(20.0, 10.0), (5.5, 10.0)]
        assert [(h["position"]["x"], h["position"]["z"])
                for h in models["a-small"].drain_holes] == [(0.0, 20.0)]


#: Labels of the case id that fail for a long one (no room to shrink), then the save.
DROPPING = """\
on_model_failure: drop_case
steps:
  - label:
      text: "{case_id}"
      font_size_mm: 3
      depth_mm: 0.5
      placement: {face: front, margin_mm: 1, fit: fail}
  - save_form
batching:
  max_models_per_build: 10
"""


class TestRetryAfterDrop:
    """A retry on another server imports every model but those of a case dropped on the
    first attempt, the ones after it too, and its bar counts the models it imported."""

    def test_the_retry_skips_the_dropped_case_and_imports_the_rest(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        long_case = "case-m" + "y" * 40
        root = tmp_path / "models"
        write_box(root / "case-1", "upper", 30, 20, 15)
        write_box(root / long_case, "lower", 30, 20, 15)
        write_box(root / long_case, "upper", 30, 20, 15)
        write_box(root / "case-z", "upper", 30, 20, 15)
        plan = plan_for(write_recipe(tmp_path, DROPPING),
                        [root / "case-1", root / long_case, root / "case-z"])
        assert [m.case_id for m in plan.builds[0].models] == [
            "case-1", long_case, long_case, "case-z"]
        farm.add(ScriptedFaults(fail={"save_form_file": 1}))
        retry = serve_receiving(farm)
        recorder = ProgressRecorder()
        outcome = _run(plan, farm, tmp_path / "out", recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert [b["name"] for b in retry.bodies("import_model")] == [
            "case-1 upper", "case-z upper"]
        assert sorted(Path(p).name for p, _ in outcome.dropped) == ["lower.stl", "upper.stl"]
        models = scene_models(outcome)
        assert sorted((name, [lab["label"] for lab in m.labels])
                      for name, m in models.items()) == [
            ("case-1 upper", ["case-1"]), ("case-z upper", ["case-z"])]
        # Four models on the first attempt, then the two imported of the four.
        assert recorder.fractions["import_models"] == [0.25, 0.5, 0.75, 1.0, 0.25, 1.0]


class ScanLosingEngine(ReceivingEngine):
    """A server whose scan-to-model answers success but keeps no model: the fault the
    step's count of new models is there for."""

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        answer = super().call(operation_id, params, body, progress)
        if operation_id == "scan_to_model":
            made = answer["models"][-1]["id"]
            super().call("delete_model", {**params, "id": made}, None)
            answer = {**answer, "models": answer["models"][:-1]}
        return answer


class TestScans:
    """Each scan of a case becomes one model named after its case and file, the bar moves
    one scan at a time, and a scan the server answers without a new model fails the attempt
    naming the file."""

    def _case(self, tmp_path: Path, sample_models_dir: Path) -> Path:
        case = tmp_path / "scans" / "C-7"
        case.mkdir(parents=True)
        for name in ("lower", "upper"):
            shutil.copy(sample_models_dir / "dental" / "arch_scan_open.stl",
                        case / f"{name}.stl")
        return case

    def test_two_scans_become_two_named_models(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path
    ) -> None:
        engine = serve_receiving(farm)
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=SCANS_HEAD)
        recorder = ProgressRecorder()
        outcome = _run(plan_for(recipe, [self._case(tmp_path, sample_models_dir)]), farm,
                       tmp_path / "out", recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(b["file"].rsplit("/", 1)[1], b["cutoff_height_mm"])
                for b in engine.bodies("scan_to_model")] == [
            ("lower.stl", 0.5), ("upper.stl", 0.5)]
        assert [b["name"] for b in engine.bodies("update_model")] == [
            "C-7 lower", "C-7 upper"]
        assert sorted(scene_models(outcome)) == ["C-7 lower", "C-7 upper"]
        assert recorder.fractions["scan_to_model"] == [0.5, 1.0]

    def test_a_scan_that_made_no_model_fails_the_attempt(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path
    ) -> None:
        _serve(farm, ScanLosingEngine(**engine_options(farm)))
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=SCANS_HEAD)
        outcome = _run(plan_for(recipe, [self._case(tmp_path, sample_models_dir)]), farm,
                       tmp_path / "out", max_build_attempts=1)
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == (
            "gave up after 1 attempt; last: on server-1: scan-to-model of "
            "lower.stl added 0 models, expected 1 (the build is retried, on another server "
            "if it happens again)"
        )


class TestLostImports:
    """Imports the server answered but did not keep are counted, and the first five of them
    named by file, in the attempt's error."""

    def test_the_error_counts_them_and_names_the_first_five(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve(farm, LosingEngine(**engine_options(farm)))
        kept = write_box(tmp_path / "m", "kept", 10, 10, 10)
        lost = [write_box(tmp_path / "m", f"{c}-lost", 10, 10, 10) for c in "abcdef"]
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\nbatching:\n"
                              "  max_models_per_build: 10\n")
        plan = _small_first(plan_for(recipe, [kept, *lost]))  # in file-name order
        outcome = _run(plan, farm, tmp_path / "out", max_build_attempts=1)
        assert outcome.status is BuildStatus.FAILED
        assert ": the server answered success for 6 imports but scene " in (
            outcome.reason or "")
        assert (outcome.reason or "").endswith(
            " lacks them: a-lost.stl, b-lost.stl, c-lost.stl, d-lost.stl, e-lost.stl (the "
            "build is retried, on another server if it happens again)")


class TestHollowRequest:
    """The recipe's hollowing options reach the server, not its defaults (2 mm walls)."""

    def test_the_walls_are_as_thick_as_the_recipe_says(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = serve_receiving(farm)
        box = write_box(tmp_path / "m", "box", 30, 30, 20)
        recipe = write_recipe(tmp_path, "steps:\n  - hollow:\n      wall_thickness_mm: 1.5\n"
                              "      feature_size_mm: 0.4\n  - save_form\n")
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("hollow_model") == [
            {"wall_thickness_mm": 1.5, "feature_size_mm": 0.4}]
        assert scene_models(outcome)["box"].hollow["wall_thickness_mm"] == 1.5
