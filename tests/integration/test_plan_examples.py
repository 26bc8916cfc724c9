"""Every example recipe in recipes/ plans the sample models in sample_models/ sensibly."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from preform_pipeline.catalogue import DEFAULT_CATALOGUE
from preform_pipeline.cli import run
from preform_pipeline.commands._sources import take_sources
from preform_pipeline.plan.builds import ModelInfo, Plan, Rejection, plan_builds, read_models
from preform_pipeline.plan.graph import CREATE_SCENE, IMPORT_MODELS, SCAN_TO_MODEL
from preform_pipeline.recipes import Recipe, load_recipe
from preform_pipeline.settings.run import RunSettings

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
SAMPLES = REPO / "sample_models"


def _fits(model: ModelInfo, build_volume: tuple[float, float, float]) -> bool:
    (sx, sy, sz), (bx, by, bz) = model.size_mm, build_volume
    return sz <= bz and ((sx <= bx and sy <= by) or (sy <= bx and sx <= by))


@pytest.fixture(scope="module")
def planned() -> dict[str, tuple[Recipe, list[ModelInfo], Plan]]:
    out = {}
    for path in RECIPES:
        recipe = load_recipe(path)
        unreadable: list[Rejection] = []
        models = read_models([SAMPLES], import_spec=recipe.import_options, rejected=unreadable)
        assert not unreadable, unreadable
        out[path.name] = (recipe, models, plan_builds(recipe, models))
    return out


class TestExamples:
    """Each recipe plans every sample model into builds or rejects it for its size."""

    def test_there_are_examples_and_enough_samples(self) -> None:
        assert len(RECIPES) >= 3
        assert len([p for p in SAMPLES.rglob("*") if p.suffix in (".stl", ".obj", ".3mf")]) >= 30

    @pytest.mark.parametrize("name", [p.name for p in RECIPES])
    def test_every_model_is_planned_once_or_rejected_for_its_size(
        self, name: str, planned: dict[str, tuple[Recipe, list[ModelInfo], Plan]]
    ) -> None:
        recipe, models, plan = planned[name]
        machine = DEFAULT_CATALOGUE.machine(recipe.scene.machine_type or "")
        assert machine is not None
        placed = [m.path for b in plan.builds for m in b.models]
        rejected = [r.path for r in plan.rejected]
        assert sorted(placed + rejected) == sorted(m.path for m in models)
        assert len(set(placed)) == len(placed)
        for model in models:
            if not _fits(model, machine.build_volume_mm):
                assert model.path in rejected, f"{model.path} is larger than {machine.label}"
        for rejection in plan.rejected:
            assert rejection.size_mm is not None and rejection.build_volume_mm is not None
        oversized = SAMPLES / "oversized" / "long_bar_260mm.stl"
        assert (oversized in rejected) == (machine.build_volume_mm[0] < 260)

    @pytest.mark.parametrize("name", [p.name for p in RECIPES])
    def test_builds_respect_the_batching_rules(
        self, name: str, planned: dict[str, tuple[Recipe, list[ModelInfo], Plan]]
    ) -> None:
        recipe, _, plan = planned[name]
        limit = recipe.batching.max_models_per_build
        split = " ".join(plan.warnings)
        for build in plan.builds:
            assert build.models
            assert limit is None or len(build.models) <= limit
            if recipe.technology == "SLA":
                assert len(build.placements) == len(build.models)
                assert 0 < build.fill_ratio <= 1
            if recipe.batching.keep_cases_together:
                for model in build.models:
                    if model.case_id is not None and f"case {model.case_id!r}" not in split:
                        homes = {
                            b.index
                            for b in plan.builds
                            if model.case_id in {m.case_id for m in b.models}
                        }
                        assert homes == {build.index}

    @pytest.mark.parametrize("name", [p.name for p in RECIPES])
    def test_every_build_graph_opens_with_the_scene_and_import(
        self, name: str, planned: dict[str, tuple[Recipe, list[ModelInfo], Plan]]
    ) -> None:
        recipe, _, plan = planned[name]
        importer = SCAN_TO_MODEL if recipe.import_options.uses_scan_to_model else IMPORT_MODELS
        for build in plan.builds:
            ids = build.graph.ids
            assert ids[:2] == (CREATE_SCENE, importer)
            assert ids[2:] == recipe.step_ids
            assert build.estimated_volume_ml > 0

    @pytest.mark.parametrize("name", [p.name for p in RECIPES])
    def test_the_command_agrees_with_the_plan(
        self, name: str, planned: dict[str, tuple[Recipe, list[ModelInfo], Plan]]
    ) -> None:
        # As `run` plans them (since session 38 `plan` too): with the hot folder's case
        # checks, which refuse a case whole (the batch case's thin part and a drain hole).
        recipe = planned[name][0]
        taken = take_sources([SAMPLES], recipe, rules=RunSettings(quiet_period_s=0.0,
                                                                  incomplete_timeout_s=0.0),
                             started_at=datetime.now())
        plan = plan_builds(recipe, list(taken.models), rejected=list(taken.rejected))
        out, err = io.StringIO(), io.StringIO()
        code = run(["plan", str(REPO / "recipes" / name), str(SAMPLES), "--format", "json",
                    "--servers", "1"], out, err)
        assert code == (0 if plan.ok else 1), err.getvalue()
        data = json.loads(out.getvalue())
        assert len(data["builds"]) == len(plan.builds)
        assert data["total_volume_ml"] == pytest.approx(plan.total_volume_ml, abs=1e-2)
