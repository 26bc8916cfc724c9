"""What the simulator says with a count reads as English for one and for several: repairs on
import, models outside the volume, open meshes it cannot hollow, unexpected fields and keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.bodies import Body
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import SimError

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
#: Indices of box_triangles' faces: the bottom's two, then the top's two.
BOTTOM, TOP = [0, 1], [2, 3]


@pytest.fixture
def engine(tmp_path: Path) -> SimEngine:
    return SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")


@pytest.fixture
def scene(engine: SimEngine) -> dict[str, str]:
    return {"scene_id": engine.call("create_scene", {}, FORM4)["id"]}


def _box(tmp_path: Path, name: str, *, flipped: list[int] = (), removed: list[int] = (),
         at: float = 0.0) -> Path:
    triangles = np.asarray(box_triangles((at, 0, 0), (at + 10, 10, 10)), dtype=np.float32)
    triangles[flipped] = triangles[flipped][:, ::-1]
    path = tmp_path / name
    write_stl(path, np.delete(triangles, removed, axis=0))
    return path


def _refusal(engine: SimEngine, op: str, params: dict[str, str], body: object) -> str:
    with pytest.raises(SimError) as caught:
        engine.call(op, params, body)
    return caught.value.error_message


class TestRepairWarnings:
    """REPAIR says how many triangles it turned and how many holes it closed."""

    @pytest.mark.parametrize(("flipped", "said"), [
        ([5], "Re-oriented 1 triangle in part.stl"),
        ([5, 8], "Re-oriented 2 triangles in part.stl"),
    ])
    def test_re_oriented_triangles_are_counted(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path, flipped: list[int],
        said: str,
    ) -> None:
        model = engine.call("import_model", scene, {"file": str(_box(tmp_path, "first.stl"))})
        answer = engine.call(
            "replace_model", {**scene, "id": model["id"]},
            {"file": str(_box(tmp_path, "part.stl", flipped=flipped)), "repair_behavior": "REPAIR"},
        )
        assert answer["warnings"] == [said]

    @pytest.mark.parametrize(("removed", "said"), [
        (BOTTOM, "Closed 1 hole in part.stl"),
        (BOTTOM + TOP, "Closed 2 holes in part.stl"),
    ])
    def test_closed_holes_are_counted(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path, removed: list[int],
        said: str,
    ) -> None:
        model = engine.call("import_model", scene, {"file": str(_box(tmp_path, "first.stl"))})
        answer = engine.call(
            "replace_model", {**scene, "id": model["id"]},
            {"file": str(_box(tmp_path, "part.stl", removed=removed)), "repair_behavior": "REPAIR"},
        )
        assert answer["warnings"] == [said]


class TestRefusalsThatCount:
    """A refusal that counts models agrees with them, verb and noun."""

    @pytest.mark.parametrize(("outside", "opening"), [
        (1, "1 model is outside the build volume: "),
        (2, "2 models are outside the build volume: "),
    ])
    def test_models_outside_the_volume(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path, outside: int,
        opening: str,
    ) -> None:
        for n in range(outside):
            engine.call("import_model", scene,
                        {"file": str(_box(tmp_path, f"far{n}.stl")), "name": f"far{n}",
                         "position": {"x": 500 + 20 * n, "y": 0, "z": 0}})
        message = _refusal(engine, "print", scene,
                           {"printer": "SimulatedForm4-1", "job_name": "x"})
        assert message == opening + ", ".join(f"far{n}" for n in range(outside))

    @pytest.mark.parametrize(("count", "opening"), [
        (1, "cannot hollow 1 model with an open mesh: "),
        (2, "cannot hollow 2 models with open meshes: "),
    ])
    def test_open_meshes_that_cannot_be_hollowed(
        self, engine: SimEngine, scene: dict[str, str], tmp_path: Path, count: int,
        opening: str,
    ) -> None:
        ids = [
            engine.call("import_model", scene,
                        {"file": str(_box(tmp_path, f"open{n}.stl", removed=BOTTOM, at=20 * n)),
                         "repair_behavior": "IGNORE"})["id"]
            for n in range(count)
        ]
        message = _refusal(engine, "hollow_model", scene, {"wall_thickness_mm": 1})
        assert message == opening + ", ".join(ids)


class TestUnknownNames:
    """One unexpected field or key is named in the singular, several in the plural."""

    @pytest.mark.parametrize(("extra", "said"), [
        ({"colour": 1}, "$: unexpected field colour; allowed: name"),
        ({"colour": 1, "size": 2}, "$: unexpected fields colour, size; allowed: name"),
    ])
    def test_a_request_body(self, extra: dict[str, int], said: str) -> None:
        with pytest.raises(SimError) as caught:
            Body({"name": "a", **extra}).only(("name",))
        assert caught.value.error_message == said

    @pytest.mark.parametrize(("extra", "said"), [
        ({"colour": 1}, "$: unknown key ['colour']; known: ['jobs', 'printers']"),
        ({"colour": 1, "size": 2},
         "$: unknown keys ['colour', 'size']; known: ['jobs', 'printers']"),
    ])
    def test_an_outcomes_file(self, extra: dict[str, int], said: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_outcomes(extra)
        assert str(caught.value).startswith("outcomes: " + said)
