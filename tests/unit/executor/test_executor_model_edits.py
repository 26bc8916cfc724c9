"""Per-model edits reach the scene as the recipe writes them: explicit drain holes, plugs,
the largest side, the import's lock, and scans turned into models."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from preform_pipeline.executor import BuildStatus, RunResult
from preform_pipeline.executor.steps import drain_hole_positions
from preform_pipeline.geometry.stl import write_stl
from preform_pipeline.plan.builds import Plan
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.simulator.meshops import box_triangles
from tests.unit.executor.executor_support import (
    RECIPE_HEAD,
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_mushroom,
    write_recipe,
)

#: The standard head with dental scans imported through scan-to-model.
SCANS_HEAD = RECIPE_HEAD.replace(
    "  repair_behavior: REPAIR\n",
    "  scan_to_model:\n    cutoff_height_mm: 0.5\n    extrude_distance_mm: 3\n",
)


def _manifest(result: RunResult) -> dict[str, Any]:
    """The simulator's manifest of the one build's saved .form."""
    (outcome,) = result.outcomes
    assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
    form = next(p for p in outcome.outputs if p.suffix == ".form")
    with zipfile.ZipFile(form) as archive:
        manifest: dict[str, Any] = json.loads(archive.read("manifest.json"))
    return manifest


def _models(result: RunResult) -> dict[str, dict[str, Any]]:
    """The saved .form's models by name."""
    return {m["name"]: m for m in _manifest(result)["models"]}


def _small_first(plan: Plan) -> Plan:
    """The plan with its one build's models in name order (``a-small`` before ``b-large``),
    so the first model is the one a hole must not go to by default."""
    (build,) = plan.builds
    models = tuple(sorted(build.models, key=lambda m: m.path.name))
    ordered = replace(build, models=models, graph=compile_graph(plan.recipe, models))
    return replace(plan, builds=(ordered,))


class TestExplicitDrainHoles:
    """Each explicit hole goes to the model whose box is nearest, with the recipe's
    orientation, diameter and plug."""

    def test_each_hole_lands_on_the_nearest_model_and_plugs_are_made(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Both boxes stand centred on the origin (no layout step): the tall small one inside
        # the footprint of the flat large one.
        small = write_box(tmp_path / "m", "a-small", 10, 10, 20)
        large = write_box(tmp_path / "m", "b-large", 60, 60, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n"
            "  - hollow:\n"
            "      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n"
            "      diameter_mm: 2\n"
            "      create_plug: true\n"
            "      drain_holes:\n"
            "        - position: {x: -30, y: 0, z: 5}\n"
            "          orientation: {linear: [[0, 0, -1], [0, 1, 0], [1, 0, 0]]}\n"
            "        - position: {x: 0, y: 0, z: 20}\n"
            "          orientation: {z_direction: [0, 0, 1], x_direction: [1, 0, 0]}\n"
            "          diameter_mm: 3\n"
            "  - save_form\n",
        )
        plan = _small_first(plan_for(recipe, [small, large]))
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        models = _models(result)
        assert [h["position"] for h in models["a-small"]["drain_holes"]] == [
            {"x": 0, "y": 0, "z": 20}
        ]
        assert [h["position"] for h in models["b-large"]["drain_holes"]] == [
            {"x": -30, "y": 0, "z": 5}
        ]
        assert models["a-small"]["drain_holes"][0]["diameter_mm"] == 3
        assert models["b-large"]["drain_holes"][0]["diameter_mm"] == 2
        # The matrix is a turn of -90 degrees about y (R_y: sin in the top right corner).
        turned = models["b-large"]["drain_holes"][0]["orientation"]
        assert {k: round(v) for k, v in turned.items()} == {"x": 0, "y": -90, "z": 0}
        upright = models["a-small"]["drain_holes"][0]["orientation"]
        assert {k: round(v) for k, v in upright.items()} == {"x": 0, "y": 0, "z": 0}
        assert all(h["create_plug"] for m in models.values() for h in m["drain_holes"])
        assert sorted(n for n in models if n.endswith(" plug")) == [
            "a-small plug", "b-large plug"
        ]


class TestLargestSide:
    """``largest_side`` is the front when the model is at least as wide as deep, else the
    right side."""

    def test_a_wide_model_gets_its_holes_on_the_front(self) -> None:
        holes = drain_hole_positions((0, 0, 0), (20, 10, 8), "largest_side", count=1)
        assert holes == [((10.0, 0.0, 3.0), (0.0, -1.0, 0.0))]

    def test_a_deep_model_gets_its_holes_on_the_right(self) -> None:
        holes = drain_hole_positions((0, 0, 0), (10, 20, 8), "largest_side", count=1)
        assert holes == [((10.0, 10.0, 3.0), (1.0, 0.0, 0.0))]


class TestHollowFailure:
    """A case dropped because its model cannot be hollowed is dropped with the server's own
    reason, its models named by file."""

    def test_the_dropped_case_carries_the_servers_reason(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        root = tmp_path / "models"
        write_box(root / "case-1", "upper", 30, 20, 15)
        write_box(root / "case-2", "upper", 30, 20, 15)
        (root / "case-open").mkdir(parents=True)
        closed = box_triangles((0.0, 0.0, 0.0), (30.0, 20.0, 15.0))
        # The box without its top: an open mesh the server cannot hollow.
        write_stl(root / "case-open" / "lower.stl",
                  [t for t in closed if min(p[2] for p in t) < 15])
        recipe = write_recipe(
            tmp_path,
            "on_model_failure: drop_case\nsteps:\n  - hollow: {wall_thickness_mm: 1.0}\n"
            "  - save_form\nbatching:\n  max_models_per_build: 10\n",
            head=RECIPE_HEAD.replace("repair_behavior: REPAIR", "repair_behavior: IGNORE"),
        )
        plan = plan_for(recipe, [root / "case-1", root / "case-2", root / "case-open"])
        farm.add()
        with capture_logs() as logs:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out")
        (outcome,) = result.outcomes
        (dropped,) = [e for e in logs if e["event"] == "case_dropped"]
        assert {k: dropped[k] for k in ("case_id", "model", "step", "models", "left")} == {
            "case_id": "case-open", "model": "lower.stl", "step": "hollow", "models": 1,
            "left": 2,
        }
        reason = ("case case-open: model lower.stl: step hollow: "
                  "cannot hollow 1 model with an open mesh: lower.stl")
        assert [(Path(p).name, r) for p, r in outcome.dropped] == [("lower.stl", reason)]
        assert f"dropped from the build: {reason}" in outcome.warnings
        assert sorted(_models(result)) == ["case-1 upper", "case-2 upper"]


class TestValidationWarnings:
    """Validation findings the recipe does not fail on are kept as the build's warnings."""

    def test_an_undersupported_model_is_a_warning_when_only_bounds_fail(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        mushroom = write_mushroom(tmp_path / "m", "mushroom")
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_layout\n  - validate:\n      fail_on: [out_of_bounds]\n"
            "  - save_form\n",
        )
        farm.add()
        result = run(plan_for(recipe, [mushroom]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert sorted(outcome.warnings) == [
            "validation: undersupported: mushroom.stl",
            "validation: unsupported_minima: mushroom.stl",
        ]


class TestImportOptions:
    """The import's options reach the server for every model."""

    def test_the_lock_the_recipe_gives_holds_every_imported_model(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)]
        head = RECIPE_HEAD.replace("  repair_behavior: REPAIR\n",
                                   "  lock: FULLY_LOCKED\n  scale: 2\n")
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=head)
        farm.add()
        result = run(plan_for(recipe, boxes), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        models = _models(result).values()
        assert {(m["lock"], m["scale"]) for m in models} == {("FULLY_LOCKED", 2.0)}
        scene = _manifest(result)["scene"]["scene_settings"]
        assert (scene["machine_type"], scene["material_code"]) == ("FORM-4-0", "FLGPGR05")


class TestScanToModel:
    """Each open scan becomes one solid model, named like an imported file."""

    def test_every_scan_becomes_a_model_named_after_its_case_and_file(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path
    ) -> None:
        case = tmp_path / "scans" / "C-7"
        case.mkdir(parents=True)
        shutil.copy(sample_models_dir / "dental" / "arch_scan_open.stl", case / "upper.stl")
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=SCANS_HEAD)
        farm.add()
        result = run(plan_for(recipe, [case]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        models = _models(result)
        assert list(models) == ["C-7 upper"]
        assert models["C-7 upper"]["scan"] is not None
