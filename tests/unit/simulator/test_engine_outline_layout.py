"""The simulator's own layout: shadows with raft borders, all or nothing, costs by selection."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from layout_support import gap

from preform_pipeline.geometry.projection import projected_points
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.protocol import SimError

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
SIMULATOR = Path(__file__).resolve().parents[3] / "preform_pipeline" / "simulator"


def scene_with(engine: SimEngine, files: list[Path]) -> tuple[str, list[str]]:
    scene = engine.call("create_scene", {}, dict(FORM4))["id"]
    ids = [
        engine.call("import_model", {"scene_id": scene},
                    {"file": str(f.resolve()), "units": "MILLIMETERS"})["id"]
        for f in files
    ]
    return scene, ids


def placed_models(engine: SimEngine, scene: str) -> dict[str, tuple[float, ...]]:
    body = engine.call("get_scene", {"scene_id": scene}, None)
    return {
        m["id"]: (m["position"]["x"], m["position"]["y"], m["orientation"]["z"])
        for m in body["models"]
    }


class TestOutlineLayout:
    """Shadows grown by raft and spacing are laid out apart, inside the platform."""

    def test_supported_arches_keep_spacing_plus_two_rafts_between_their_shadows(
        self, sample_models_dir: Path
    ) -> None:
        engine = SimEngine()
        arches = sorted((sample_models_dir / "dental").glob("arch_[clu]*.stl"))
        parts = sorted((sample_models_dir / "batch").glob("part_*.stl"))[:4]
        scene, _ = scene_with(engine, arches + parts)
        engine.call("auto_support", {"scene_id": scene}, {"models": "ALL"})
        engine.call("auto_layout", {"scene_id": scene}, {"models": "ALL"})
        with engine.scenes.use(scene) as state:
            models = list(state.models.values())
            shadows = [projected_points(m.world_mesh(), 0.5) for m in models]
            assert all(m.in_bounds((200.0, 125.0, 210.0)) for m in models)
        for a, b in itertools.combinations(shadows, 2):
            # Shadows are sampled every millimetre: the gap holds to a few tenths of a mm.
            assert gap(a, b, 2.0 + 2 * 2.0 - 0.25) >= 2.0 + 2 * 2.0 - 0.25

    def test_turned_models_stay_inside_the_platform(self, sample_models_dir: Path) -> None:
        engine = SimEngine()
        parts = sorted((sample_models_dir / "batch").glob("part_*.stl"))[:12]
        scene, _ = scene_with(engine, parts)
        engine.call("auto_layout", {"scene_id": scene}, {"models": "ALL"})
        with engine.scenes.use(scene) as state:
            assert all(m.in_bounds((200.0, 125.0, 210.0)) for m in state.models.values())

    def test_a_layout_that_does_not_fit_leaves_the_scene_unchanged(
        self, sample_models_dir: Path
    ) -> None:
        engine = SimEngine()
        scene, _ = scene_with(engine, [sample_models_dir / "dental" / "arch_upper.stl"] * 9)
        engine.call("auto_support", {"scene_id": scene}, {"models": "ALL"})
        before = placed_models(engine, scene)
        with pytest.raises(SimError) as caught:
            engine.call("auto_layout", {"scene_id": scene}, {"models": "ALL"})
        assert caught.value.code == "MODELS_DO_NOT_FIT"
        assert "arch_upper" in str(caught.value)
        assert placed_models(engine, scene) == before

    def test_a_wider_raft_makes_the_server_disagree_with_a_plan_that_fits(
        self, sample_models_dir: Path
    ) -> None:
        boxes = [sample_models_dir / "dental" / "arch_lower.stl"] * 6
        usual = SimEngine()
        scene, _ = scene_with(usual, boxes)
        usual.call("auto_support", {"scene_id": scene}, {"models": "ALL"})
        usual.call("auto_layout", {"scene_id": scene}, {"models": "ALL"})
        wide = SimEngine(raft_border_mm=6.0)
        scene, _ = scene_with(wide, boxes)
        wide.call("auto_support", {"scene_id": scene}, {"models": "ALL"})
        with pytest.raises(SimError, match="MODELS_DO_NOT_FIT"):
            wide.call("auto_layout", {"scene_id": scene}, {"models": "ALL"})


class TestIndependence:
    """The simulator models the server on its own: it never uses the planner's code."""

    def test_no_simulator_module_imports_the_planner(self) -> None:
        for path in SIMULATOR.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                assert not any(n.startswith("preform_pipeline.plan") for n in names), path


class TestCostBySelection:
    """An operation on some models is priced by those models, not the whole scene."""

    def test_orient_and_support_of_one_model_cost_that_model(
        self, sample_models_dir: Path
    ) -> None:
        engine = SimEngine()
        upper = sample_models_dir / "dental" / "arch_upper.stl"
        part = sample_models_dir / "batch" / "part_01.stl"
        scene, (big, small) = scene_with(engine, [upper, part])
        params = {"scene_id": scene}
        one = engine.estimate_work("auto_support", params, {"models": [small]})
        everything = engine.estimate_work("auto_support", params, {"models": "ALL"})
        orient_big = engine.estimate_work("auto_orient", params, {"models": [big]})
        assert one.models == 1 and everything.models == 2 and orient_big.models == 1
        assert 0 < one.triangles < orient_big.triangles < everything.triangles
        assert orient_big.triangles + one.triangles == everything.triangles

    def test_an_operation_on_one_model_in_the_path_costs_that_model(
        self, sample_models_dir: Path
    ) -> None:
        engine = SimEngine()
        upper = sample_models_dir / "dental" / "arch_upper.stl"
        part = sample_models_dir / "batch" / "part_01.stl"
        scene, (_, small) = scene_with(engine, [upper, part])
        work = engine.estimate_work("delete_model", {"scene_id": scene, "id": small}, None)
        assert work.models == 1 and work.triangles < 1000
