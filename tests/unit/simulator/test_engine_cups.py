"""SimEngine print validation: cups, the closed hollows that trap resin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_engine_edits import FORM4, open_scan
from test_engine_edits import HOLE as FLOOR_HOLE

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


def scene_with_boxes(
    engine: SimEngine, tmp_path: Path, *sizes: tuple[float, float, float]
) -> tuple[dict[str, str], list[str]]:
    """A Form 4 scene holding one box per size: the scene's params and the model ids."""
    scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
    ids = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"box{index}.stl"
        write_stl(path, box_triangles((0, 0, 0), size))
        ids.append(engine.call("import_model", scene, {"file": str(path)})["id"])
    return scene, ids


def cups(engine: SimEngine, scene: dict[str, str]) -> dict[str, Any]:
    results = engine.call("get_print_validation", scene, None)["per_model_results"]
    return {model_id: result["cups"] for model_id, result in results.items()}


class TestCups:
    """A hollowed model without a drain hole is one cup; a drain hole opens it."""

    def test_a_hollowed_block_without_drain_holes_is_a_cup(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene, (block,) = scene_with_boxes(engine, tmp_path, (30, 30, 20))
        assert cups(engine, scene) == {block: 0}
        engine.call("hollow_model", scene, {"wall_thickness_mm": 2})
        assert cups(engine, scene) == {block: 1}

    def test_a_drain_hole_opens_the_cup(self, engine: SimEngine, tmp_path: Path) -> None:
        scene, (block,) = scene_with_boxes(engine, tmp_path, (30, 30, 20))
        engine.call("hollow_model", scene, {})
        engine.call("add_drain_holes", scene, {"model_id": block, "drain_holes": [FLOOR_HOLE]})
        assert cups(engine, scene) == {block: 0}

    def test_only_the_model_without_holes_is_reported(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene, (drained, closed) = scene_with_boxes(
            engine, tmp_path, (30, 30, 20), (30, 30, 20)
        )
        engine.call("hollow_model", scene, {})
        engine.call("add_drain_holes", scene, {"model_id": drained, "drain_holes": [FLOOR_HOLE]})
        assert cups(engine, scene) == {drained: 0, closed: 1}

    def test_a_model_too_thin_to_hollow_stays_solid_and_is_no_cup(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene, (thick, thin) = scene_with_boxes(engine, tmp_path, (30, 30, 20), (30, 30, 4))
        answer = engine.call("hollow_model", scene, {"wall_thickness_mm": 2})
        assert len(answer["warnings"]) == 1  # the thin one was not hollowed
        assert cups(engine, scene) == {thick: 1, thin: 0}

    def test_supports_do_not_drain_a_closed_hollow(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene, _ = scene_with_boxes(engine, tmp_path, (30, 30, 20))
        engine.call("hollow_model", scene, {})
        engine.call("auto_support", scene, {})
        (result,) = engine.call("get_print_validation", scene, None)["per_model_results"].values()
        assert result == {
            "cups": 1,
            "unsupported_minima": 0,
            "undersupported": False,
            "has_seamline": False,
        }

    def test_a_saved_and_reloaded_scene_keeps_its_cup(
        self, engine: SimEngine, tmp_path: Path
    ) -> None:
        scene, _ = scene_with_boxes(engine, tmp_path, (30, 30, 20))
        engine.call("hollow_model", scene, {})
        form = tmp_path / "hollow.form"
        engine.call("save_form_file", scene, {"file": str(form)})
        loaded = {"scene_id": engine.call("load_form_file", {}, {"file": str(form)})["id"]}
        assert list(cups(engine, loaded).values()) == [1]

    @pytest.mark.parametrize(("holes", "expected"), [(0, 1), (2, 0)])
    def test_a_hollowed_scan_is_a_cup_unless_it_got_drain_holes(
        self, engine: SimEngine, tmp_path: Path, holes: int, expected: int
    ) -> None:
        scene = {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}
        body = {
            "file": str(open_scan(tmp_path / "arch.stl")),
            "cutoff_height_mm": 0.5,
            "extrude_distance_mm": 5,
            "hollow": True,
            "drain_hole_max_count": holes,
        }
        (model,) = engine.call("scan_to_model", scene, body)["models"]
        assert cups(engine, scene) == {model["id"]: expected}
