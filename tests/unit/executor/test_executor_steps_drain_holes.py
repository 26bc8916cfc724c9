"""``add_drain_holes`` as the server sees it: what a recipe leaves out is sent as the
documented defaults, a single model's step ends at 1.0, and a model whose holes the server
refuses takes only its own case out of the build (``on_model_failure: drop_case``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_executor_steps_requests import ProgressRecorder, ReceivingEngine, _serve

from preform_pipeline.executor import BuildOutcome, BuildStatus, NullReporter, RunOptions, run_plan
from preform_pipeline.plan.builds import Plan
from preform_pipeline.report import write_build_report
from preform_pipeline.simulator.formfile import load_form
from preform_pipeline.simulator.protocol import ProgressCallback, SimError
from tests.unit.executor.executor_support import (
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    plan_for,
    write_box,
    write_recipe,
)


class RefusingEngine(ReceivingEngine):
    """A server that refuses the first request of ``operation`` with a 400 ``code`` answer
    whose message names the model by its id, as PreForm's DRAIN_HOLE_FAILED and
    LABEL_FAILED answers do."""

    def __init__(self, operation: str, code: str, message: str, **options: Any) -> None:
        super().__init__(**options)
        self._refusing = threading.Lock()
        self._operation, self._code, self._message = operation, code, message
        #: The model id of the refused request.
        self.refused: list[str] = []

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == self._operation:
            with self._refusing:
                if not self.refused:
                    self.refused.append(body["model_id"])
                    raise SimError(400, self._code,
                                   self._message.format(model_id=body["model_id"]))
        return super().call(operation_id, params, body, progress)


def engine_options(farm: SimFarm) -> dict[str, Any]:
    """A new engine's options: its own work folder beside the farm's."""
    return {"scene_cache_size": 100, "fleet_dir": farm.fleet_dir,
            "work_dir": farm.folder / f"work{len(farm.servers)}"}


@pytest.fixture
def engine(farm: SimFarm) -> ReceivingEngine:
    """A receiving engine behind a simulator of the farm."""
    receiving = ReceivingEngine(**engine_options(farm))
    _serve(farm, receiving)
    return receiving


def run_one(plan: Plan, farm: SimFarm, output: Path,
            reporter: NullReporter | None = None) -> BuildOutcome:
    """Run ``plan`` (one build) on the farm's simulators; its outcome."""
    result = run_plan(
        plan, FakePool([s.url for s in farm.servers]),
        options=RunOptions(output_root=output, step_timeout_s=STEP_LIMIT_S,
                           build_report=write_build_report),
        reporter=reporter or NullReporter(),
    )
    (outcome,) = result.outcomes
    return outcome


def scene_models(outcome: BuildOutcome) -> dict[str, Any]:
    """The models of the build's saved scene, by name."""
    [form] = [p for p in outcome.outputs if p.suffix == ".form"]
    return {m.name: m for m in load_form(form, "check").models.values()}


class TestDefaults:
    """A placement that names only its face gets two holes 3 mm in from the edges, of AUTO
    depth (a depth the recipe gives is sent as it is) and without plugs, and the one model's
    step reports 1.0 when done."""

    def test_the_left_out_options_are_sent_as_their_defaults(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 40, 30, 20)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 3\n"
            "      placement: {face: right}\n  - save_form\n",
        )
        recorder = ProgressRecorder()
        outcome = run_one(plan_for(recipe, [box]), farm, tmp_path / "out", recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("add_drain_holes")
        holes = body["drain_holes"]
        # The right face (x = 20 of the 40 x 30 mm box centred on the origin): two holes
        # spread along y from -15 + 3 to 15 - 3, 3 mm above the floor.
        assert [(h["position"]["x"], h["position"]["y"], h["position"]["z"])
                for h in holes] == [(20.0, -12.0, 3.0), (20.0, 12.0, 3.0)]
        for hole in holes:
            assert (hole["diameter_mm"], hole["depth_mm"], hole["create_plug"]) == (
                3.0, "AUTO", False)
            assert "outset_mm" not in hole and "max_search_distance" not in hole
        assert sorted(scene_models(outcome)) == ["box"]  # no plug was made
        assert recorder.fractions["add_drain_holes"] == [1.0]

    def test_a_depth_in_millimetres_reaches_every_hole(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 40, 30, 20)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 3\n      depth_mm: 1.5\n"
            "      placement: {face: bottom}\n  - save_form\n",
        )
        outcome = run_one(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("add_drain_holes")
        assert [h["depth_mm"] for h in body["drain_holes"]] == [1.5, 1.5]
        [hole, _] = scene_models(outcome)["box"].drain_holes
        assert hole["depth_mm"] == 1.5


class TestRefusedHoles:
    """A model whose holes the server refuses takes its case out; the other cases still get
    their holes, and the reason names the step and the file, not the server's model id."""

    def test_drop_case_goes_on_with_the_other_cases(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = RefusingEngine("add_drain_holes", "DRAIN_HOLE_FAILED",
                                "$.drain_holes[0].position is not on model {model_id}",
                                **engine_options(farm))
        _serve(farm, engine)
        root = tmp_path / "models"
        write_box(root / "case-1", "lower", 30, 20, 15)
        write_box(root / "case-1", "upper", 30, 20, 15)
        write_box(root / "case-2", "part", 30, 20, 15)
        recipe = write_recipe(
            tmp_path,
            "on_model_failure: drop_case\n"
            "steps:\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 3\n"
            "      placement: {face: bottom, count: 1}\n  - save_form\n"
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
        # The first model's holes were refused: its whole case left the build, its other
        # model was not sent, and case-2's model got its hole.
        assert [imported[m] for m in engine.refused] == ["case-1 lower"]
        assert [imported[b["model_id"]] for b in engine.bodies("add_drain_holes")] == [
            "case-2 part"
        ]
        assert sorted(Path(p).name for p, _ in outcome.dropped) == ["lower.stl", "upper.stl"]
        reason = (
            "case case-1: model lower.stl: step add_drain_holes: "
            "$.drain_holes[0].position is not on model lower.stl"
        )
        assert {r for _, r in outcome.dropped} == {reason}
        assert [(e["case_id"], e["step"], e["left"]) for e in logs
                if e["event"] == "case_dropped"] == [("case-1", "add_drain_holes", 1)]
        models = scene_models(outcome)
        assert sorted(models) == ["case-2 part"]
        assert len(models["case-2 part"].drain_holes) == 1
        # Only the model that got its holes moves the bar: the last of three.
        assert recorder.fractions["add_drain_holes"] == [1.0]
