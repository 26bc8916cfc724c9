"""What the final build's server receives when it takes in the models another build's layout
carried on: one import per carried model, then the recipe's orient and support steps (their
options as written) for those models only, before its own layout when they reach it
before that."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from executor_support import (
    WAIT_S,
    FakePool,
    SimFarm,
    five_boxes,
    iter_events,
    plan_without_rafts,
    run,
    write_recipe,
)
from test_executor_final_intake_wait import _hold_before_layout, watched_logs
from test_executor_steps_requests import ReceivingEngine, _serve

from preform_pipeline.executor import BuildStatus
from preform_pipeline.plan.builds import MM3_PER_ML

#: Orient and support (with an option of its own) before the layout: four 90 x 60 mm boxes
#: planned without rafts make one build of which only three fit with their rafts.
STEPS = """\
steps:
  - auto_orient
  - auto_support:
      density: 0.9
  - auto_layout:
      model_spacing_mm: 2
  - save_form
batching:
  spacing_mm: 2
  margin_mm: 0
  layout_attempts: 1
  on_overflow: split
"""


def _imported_ids(engine: ReceivingEngine) -> dict[str, str]:
    """The id the server gave each model it imported, by the model's name."""
    return {answer["name"]: answer["id"] for answer in engine.answers("import_model")}


class TestFinalBuildIntakeRequests:
    """The carried model is imported once into the final build's scene and oriented and
    supported there on its own, with the recipe's options, before that build's layout."""

    def test_the_carried_model_alone_is_oriented_and_supported_in_the_final_scene(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = five_boxes(tmp_path)
        plan = plan_without_rafts(write_recipe(tmp_path, STEPS), boxes)
        assert [(b.name, len(b.models)) for b in plan.builds] == [("unit-001", 4),
                                                                    ("unit-002", 1)]
        planned_final = plan.builds[1]
        engines: list[ReceivingEngine] = []
        for index in range(2):
            engine = ReceivingEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                     work_dir=farm.folder / f"work{index}")
            _serve(farm, engine)
            engines.append(engine)
        # The final build is held before its layout until the carry has joined it (after
        # its layout the carried model would be laid out with a second one).
        release, held = threading.Event(), threading.Event()
        with watched_logs("overflow_joined_build", into="unit-002") as (logs, joined):
            def watch() -> None:
                if held.wait(WAIT_S):
                    joined.wait(WAIT_S)
                release.set()

            watcher = threading.Thread(target=watch)
            watcher.start()
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3,
                         stop_reason=_hold_before_layout("unit-002", release, held, nth=5))
            watcher.join(WAIT_S)
        assert joined.is_set()

        assert result.ok
        first, final = result.outcomes
        assert [(o.name, o.status, len(o.models)) for o in result.outcomes] == [
            ("unit-001", BuildStatus.SUCCEEDED, 3), ("unit-002", BuildStatus.SUCCEEDED, 2)]
        (own,) = (m.path.name for m in planned_final.models)
        (carried,) = (name for name in final.models if name != own)
        assert final.models == (own, carried)
        carried_model = next(m for b in plan.builds for m in b.models if m.path.name == carried)
        # The final build's planned resin grows by the carried model's volume.
        assert final.estimated_volume_ml == pytest.approx(
            planned_final.estimated_volume_ml + carried_model.volume_mm3 / MM3_PER_ML)
        (taken,) = iter_events(logs, "overflow_taken_in")
        assert (taken["build"], taken["models"]) == ("unit-002", [carried])

        assert final.server is not None and final.server != first.server
        engine = engines[int(final.server.removeprefix("server-")) - 1]
        # Its own model and the carried one, each imported once, in that order.
        imported = [body["name"] for body in engine.bodies("import_model")]
        assert imported == [Path(own).stem, Path(carried).stem]
        late_id = _imported_ids(engine)[Path(carried).stem]
        # The recipe's steps on the whole scene first (its own model), then again with the
        # carried model named alone, options as the recipe wrote them.
        orients: list[Any] = engine.bodies("auto_orient")
        supports: list[Any] = engine.bodies("auto_support")
        assert orients == [{}, {"models": [late_id]}]
        assert supports == [{"density": 0.9}, {"models": [late_id], "density": 0.9}]
        # All of it before the final build's layout, which comes once.
        received = [op for op, _ in engine.received
                    if op in ("import_model", "auto_orient", "auto_support", "auto_layout")]
        assert received == ["import_model", "auto_orient", "auto_support", "import_model",
                            "auto_orient", "auto_support", "auto_layout"]

