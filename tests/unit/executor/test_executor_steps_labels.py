"""``label`` over several models: a label that does not fit is skipped with a warning and an
event when the recipe says ``fit: skip`` and the next model is still labelled, and a label
the server refuses takes only its own case out of the build."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs
from test_executor_steps_drain_holes import (
    RefusingEngine,
    engine_options,
    run_one,
    scene_models,
)
from test_executor_steps_requests import ProgressRecorder, ReceivingEngine, _serve

from preform_pipeline.executor import BuildStatus
from tests.unit.executor.executor_support import SimFarm, plan_for, write_box, write_recipe


class TestSkippedLabel:
    """``fit: skip`` leaves the model that is too small unlabelled, says so in a warning and
    a ``label_skipped`` event, and goes on to label the next model."""

    def test_the_next_model_is_labelled_after_a_skipped_one(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = ReceivingEngine(**engine_options(farm))
        _serve(farm, engine)
        small = write_box(tmp_path / "m", "a-small", 6, 6, 6)
        large = write_box(tmp_path / "m", "b-large", 60, 20, 20)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - label:\n      text: \"{stem}\"\n      font_size_mm: 4\n"
            "      depth_mm: 0.5\n      placement:\n        face: front\n"
            "        fit: skip\n        min_font_size_mm: 4\n  - save_form\n"
            "batching:\n  max_models_per_build: 2\n",
        )
        recorder = ProgressRecorder()
        with capture_logs() as logs:
            outcome = run_one(plan_for(recipe, [small, large]), farm, tmp_path / "out",
                              recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        [skipped] = [e for e in logs if e["event"] == "label_skipped"]
        assert skipped["model"] == str(small)
        assert skipped["reason"].startswith("label 'a-small' (")
        assert "does not fit the front face (6.0 x 6.0 mm" in skipped["reason"]
        assert f"a-small.stl left unlabelled: {skipped['reason']}" in outcome.warnings
        assert [b["label"] for b in engine.bodies("label_part")] == ["b-large"]
        models = scene_models(outcome)
        assert [lab["label"] for lab in models["b-large"].labels] == ["b-large"]
        assert models["a-small"].labels == []
        # A skipped model moves the bar as a labelled one does.
        assert recorder.fractions["label"] == [0.5, 1.0]


class TestASkippedLabelOfACase:
    """The warning names a case's model with its case id, as validation's findings do."""

    def test_the_warning_says_which_cases_upper_stl_was_left_unlabelled(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Review rv47-dental: session 47 named validation's models `C-2007/upper.stl`, and
        # left this warning (and the server's warnings, and the legend) on rules of their
        # own: two cases' upper.stl read alike here.
        farm.add()
        small = write_box(tmp_path / "m" / "C-2007", "upper", 6, 6, 6).parent
        large = write_box(tmp_path / "m" / "C-2008", "upper", 60, 20, 20).parent
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - label:\n      text: \"{case_id}\"\n      font_size_mm: 4\n"
            "      depth_mm: 0.5\n      placement:\n        face: front\n"
            "        fit: skip\n        min_font_size_mm: 4\n  - save_form\n",
        )
        outcome = run_one(plan_for(recipe, [small, large]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [w.split(":")[0] for w in outcome.warnings if "unlabelled" in w] == [
            "C-2007/upper.stl left unlabelled"]


class TestRefusedLabel:
    """A label the server refuses takes its model's case out; the other cases are still
    labelled, and the reason names the step and the file, not the server's model id."""

    def test_drop_case_goes_on_with_the_other_cases(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = RefusingEngine("label_part", "LABEL_FAILED",
                                "Failed to create label for part {model_id}",
                                **engine_options(farm))
        _serve(farm, engine)
        root = tmp_path / "models"
        write_box(root / "case-1", "lower", 30, 20, 15)
        write_box(root / "case-1", "upper", 30, 20, 15)
        write_box(root / "case-2", "part", 30, 20, 15)
        recipe = write_recipe(
            tmp_path,
            "on_model_failure: drop_case\n"
            "steps:\n  - label:\n      text: \"{stem}\"\n      font_size_mm: 3\n"
            "      depth_mm: 0.5\n      placement: {face: front}\n  - save_form\n"
            "batching:\n  max_models_per_build: 10\n",
        )
        plan = plan_for(recipe, [root / "case-1", root / "case-2"])
        assert len(plan.builds) == 1
        recorder = ProgressRecorder()
        with capture_logs() as logs:
            outcome = run_one(plan, farm, tmp_path / "out", recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        imported = {answer["id"]: body["name"]
                    for body, answer in zip(engine.bodies("import_model"),
                                            engine.answers("import_model"), strict=True)}
        assert [imported[m] for m in engine.refused] == ["case-1 lower"]
        assert [imported[b["model_id"]] for b in engine.bodies("label_part")] == [
            "case-2 part"
        ]
        assert sorted(Path(p).name for p, _ in outcome.dropped) == ["lower.stl", "upper.stl"]
        assert {r for _, r in outcome.dropped} == {
            "case case-1: model lower.stl: step label: "
            "Failed to create label for part lower.stl"
        }
        assert [(e["case_id"], e["step"], e["left"]) for e in logs
                if e["event"] == "case_dropped"] == [("case-1", "label", 1)]
        models = scene_models(outcome)
        assert sorted(models) == ["case-2 part"]
        assert [lab["label"] for lab in models["case-2 part"].labels] == ["part"]
        assert recorder.fractions["label"] == [1.0]
