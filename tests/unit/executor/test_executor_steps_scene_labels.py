"""``label`` as the server and the person reading the outcome see it: a label at an explicit
position is sent as the recipe writes it (any of the three ways to write a rotation) with the
documented defaults; a label that does not fit fails the build naming the model's file unless
the recipe drops its case; a label the server refuses fails the build with the server's
reason under ``fail_build``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_executor_steps_drain_holes import RefusingEngine, engine_options, scene_models
from test_executor_steps_requests import ProgressRecorder, ReceivingEngine, _run, _serve

from preform_pipeline.executor import BuildStatus
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.unit.executor.executor_support import SimFarm, plan_for, write_box, write_recipe

EXPLICIT = """\
steps:
  - label:
      text: "{{stem}}"
      font_size_mm: 4
      depth_mm: 0.6
      position: {{x: 0, y: -10, z: 7.5}}
      orientation: {orientation}
  - save_form
batching:
  max_models_per_build: 2
"""


class TestExplicitPosition:
    """Without a placement rule each model's label goes where the recipe says, turned as it
    says, at the recipe's size and depth, embossed unless the recipe says otherwise."""

    @pytest.mark.parametrize(
        ("written", "sent"),
        [
            # Every component different, so that none can stand in for another.
            ("{x: 90, y: 10, z: 45}", {"x": 90.0, "y": 10.0, "z": 45.0}),
            ("{linear: [[1, 0, 0], [0, 0, -1], [0, 1, 0]]}",
             {"linear": [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]}),
            ("{z_direction: [0, -0.6, 0.8], x_direction: [0.8, 0.48, 0.36]}",
             {"z_direction": [0.0, -0.6, 0.8], "x_direction": [0.8, 0.48, 0.36]}),
        ],
    )
    def test_each_model_gets_the_recipes_position_and_rotation(
        self, tmp_path: Path, farm: SimFarm, written: str, sent: dict[str, object]
    ) -> None:
        engine = ReceivingEngine(**engine_options(farm))
        _serve(farm, engine)
        boxes = [write_box(tmp_path / "m", name, 30, 20, 15) for name in ("ab", "cd")]
        recipe = write_recipe(tmp_path, EXPLICIT.format(orientation=written))
        recorder = ProgressRecorder()
        outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out", recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        ids = {a["id"]: b["name"] for b, a in zip(engine.bodies("import_model"),
                                                  engine.answers("import_model"), strict=True)}
        bodies = engine.bodies("label_part")
        assert [ids[b.pop("model_id")] for b in bodies] == ["ab", "cd"]
        assert bodies == [
            {"label": name, "position": {"x": 0.0, "y": -10.0, "z": 7.5},
             "orientation": sent, "font_size_mm": 4.0, "depth_mm": 0.6,
             "application_mode": "EMBOSS"}
            for name in ("ab", "cd")
        ]
        models = scene_models(outcome)
        assert [lab["label"] for lab in models["ab"].labels] == ["ab"]
        assert [lab["label"] for lab in models["cd"].labels] == ["cd"]
        assert recorder.fractions["label"] == [0.5, 1.0]


#: A label on the front face with no room to shrink: a long case id does not fit.
FITTED = """\
on_model_failure: {policy}
steps:
  - label:
      text: "{{case_id}}"
      font_size_mm: 3
      depth_mm: 0.5
      placement: {{face: front, margin_mm: 1, fit: fail}}
  - save_form
batching:
  max_models_per_build: 10
"""
#: The fitted label of each model's file stem, for models without a case.
FITTED_BY_STEM = FITTED.replace("{{case_id}}", "{{stem}}")
LONG = "case-" + "y" * 40


class TestDoesNotFit:
    """A label that does not fit names the model's file in the build's reason, and under
    ``drop_case`` takes only its own case out when another is left."""

    def test_fail_build_names_the_file_before_the_reason(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        root = tmp_path / "models"
        write_box(root / "case-1", "upper", 30, 20, 15)
        write_box(root / LONG, "lower", 30, 20, 15)
        recipe = write_recipe(tmp_path, FITTED.format(policy="fail_build"))
        farm.add()
        outcome = _run(plan_for(recipe, [root / "case-1", root / LONG]), farm,
                          tmp_path / "out")
        assert outcome.status is BuildStatus.FAILED
        assert (outcome.reason or "").startswith(f"{LONG}/lower.stl: label '{LONG[:30]}")
        # The hint of the label rules is kept: what to change in the recipe.
        assert (outcome.reason or "").endswith(
            "(shorten the text, lower font_size_mm / min_font_size_mm, or use a larger face)")
        assert outcome.dropped == ()

    def test_the_only_case_left_is_not_dropped_but_fails_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        root = tmp_path / "models"
        write_box(root / LONG, "lower", 30, 20, 15)
        write_box(root / LONG, "upper", 30, 20, 15)
        recipe = write_recipe(tmp_path, FITTED.format(policy="drop_case"))
        farm.add()
        with capture_logs() as logs:
            outcome = _run(plan_for(recipe, [root / LONG]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.FAILED
        assert (outcome.reason or "").startswith(f"{LONG}/lower.stl: label '{LONG[:30]}")
        assert outcome.dropped == ()
        assert [e for e in logs if e["event"] == "case_dropped"] == []

    def test_models_without_a_case_are_dropped_one_by_one(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = ReceivingEngine(**engine_options(farm))
        _serve(farm, engine)
        long_name = "part-" + "z" * 40
        boxes = [write_box(tmp_path / "m", name, 30, 20, 15)
                 for name in ("a", long_name, "b")]
        recipe = write_recipe(tmp_path, FITTED_BY_STEM.format(policy="drop_case"))
        dropped: list[tuple[str, Path, str]] = []
        with capture_logs() as logs:
            outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out",
                              on_model_dropped=lambda b, p, r: dropped.append((b, p, r)))
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        [(path, reason)] = outcome.dropped
        assert Path(path).name == f"{long_name}.stl"
        assert reason.startswith(f"model {long_name}.stl: step label: label '{long_name[:30]}")
        assert f"dropped from the build: {reason}" in outcome.warnings
        assert [(b, p.name, r) for b, p, r in dropped] == [
            ("unit-001", f"{long_name}.stl", reason)]
        [event] = [e for e in logs if e["event"] == "case_dropped"]
        assert {k: event[k] for k in ("case_id", "model", "step", "models", "left")} == {
            "case_id": None, "model": f"{long_name}.stl", "step": "label", "models": 1,
            "left": 2,
        }
        assert event["reason"] == reason.split(": step label: ", 1)[1]
        assert sorted(scene_models(outcome)) == ["a", "b"]
        assert [b["label"] for b in engine.bodies("label_part")] == ["a", "b"]
        assert len(engine.bodies("delete_model")) == 1


class TestRefusedUnderFailBuild:
    """A label the server refuses fails the build with the server's reason, naming the
    file, when the recipe says ``fail_build``; nothing is dropped."""

    def test_the_build_fails_with_the_servers_reason(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = RefusingEngine("label_part", "LABEL_FAILED",
                                "Failed to create label for part {model_id}",
                                **engine_options(farm))
        _serve(farm, engine)
        root = tmp_path / "models"
        write_box(root / "case-1", "upper", 30, 20, 15)
        write_box(root / "case-2", "upper", 30, 20, 15)
        recipe = write_recipe(tmp_path, FITTED.replace("fit: fail", "fit: shrink").format(
            policy="fail_build"))
        outcome = _run(plan_for(recipe, [root / "case-1", root / "case-2"]), farm,
                          tmp_path / "out")
        assert outcome.dropped == ()
        assert "Failed to create label for part" in (outcome.reason or "")
        assert engine.bodies("delete_model") == []


class BoxlessEngine(ReceivingEngine):
    """A server whose scene answers leave out the bounding box of the model named
    ``boxless``: the answer the label and drain-hole rules cannot place anything from."""

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        answer = super().call(operation_id, params, body, progress)
        if operation_id == "get_scene":
            for model in answer["models"]:
                if model["name"] == "boxless":
                    model.pop("bounding_box")
        return answer


class TestNoBoundingBox:
    """A model the server gives no bounding box for fails the build with a reason that names
    the file and the server's id, and says what the box is needed for."""

    def test_the_reason_names_the_file_and_the_id(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = BoxlessEngine(**engine_options(farm))
        _serve(farm, engine)
        boxes = [write_box(tmp_path / "m", name, 30, 20, 15) for name in ("a", "boxless")]
        recipe = write_recipe(tmp_path, FITTED_BY_STEM.format(policy="fail_build"))
        outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out")
        ids = {b["name"]: a["id"] for b, a in zip(engine.bodies("import_model"),
                                                  engine.answers("import_model"), strict=True)}
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == (
            f"the server reported no bounding box for boxless.stl (model {ids['boxless']}); "
            "labels and drain holes are placed from it"
        )
        assert [b["label"] for b in engine.bodies("label_part")] == ["a"]


class RenumberingEngine(ReceivingEngine):
    """A server whose reads of a scene after its first give every model a new id each time
    (ids that change between reads, as session 47's fuzzer answered): the import's check
    finds the model, the label's read no longer does."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.reads: dict[str, int] = {}

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "get_scene":
            scene = params["scene_id"]
            self.reads[scene] = self.reads.get(scene, 0) + 1
            for model in answer["models"] if self.reads[scene] > 1 else ():
                model["id"] = str(uuid.uuid4())


class TestIdsThatChangeBetweenReads:
    """A scene that no longer holds a model its server imported is the server's fault: said
    as such, and the build tried again, not failed for good as a model without a box."""

    def test_the_reason_says_the_scene_lost_the_model_and_the_build_is_retried(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve(farm, engine := RenumberingEngine(**engine_options(farm)))
        plan = plan_for(write_recipe(tmp_path, FITTED_BY_STEM.format(policy="fail_build")),
                        [write_box(tmp_path / "m", "a", 30, 20, 15)])
        with capture_logs() as events:
            outcome = _run(plan, farm, tmp_path / "out", max_build_attempts=2)
        imported = engine.answers("import_model")[-1]
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason is not None
        assert f"no longer holds a.stl (model {imported['id']}) that the server imported" \
            in outcome.reason
        assert "no bounding box" not in outcome.reason
        retried = [e for e in events if e["event"] == "build_retrying"]
        assert len(retried) == 1, sorted({e["event"] for e in events})
        # s48: what the scene holds instead, and what comes of it, as the reason says it
        assert outcome.reason.endswith(
            "that the server imported into it; the scene now holds 1 model of other ids (the "
            "build is retried, on another server if it happens again)")
