"""Round parts among square ones: the simulator's layout ranks models by the area they cover.

Session 13's mixed800 run lost a build this way: its 12th planned build (20 square parts,
three round ones and a small square, with full rafts) fitted by the planner's nesting and by a
plain row arrangement, but the simulator placed the round parts first (their grown box is the
largest) and the square parts' rows broke around them, leaving one part over.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from layout_support import gap, placed_points

from preform_pipeline.geometry.projection import projected_points
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.outline_pack import PackedShape, Shape, pack_shapes

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}
PLATFORM = (200.0, 125.0)
SPACING = 2.0
#: Raft border plus half the spacing, as the engine grows supported models.
GROW = 2.0 + SPACING / 2
#: The packing area: half the spacing may pass the platform's edge.
AREA = (PLATFORM[0] + SPACING, PLATFORM[1] + SPACING)
SQUARE, DISC, SMALL = 23.76, 24.8, 20.88


def _square(side: float) -> npt.NDArray[np.float64]:
    """A square's boundary, a point every 0.5 mm, centred on the origin."""
    t = np.linspace(-side / 2, side / 2, int(side / 0.5) + 1)
    half = np.full_like(t, side / 2)
    return np.concatenate([np.column_stack(edge) for edge in (
        (t, -half), (t, half), (-half, t), (half, t))])


def _disc(diameter: float) -> npt.NDArray[np.float64]:
    turn = np.linspace(0.0, 2 * math.pi, int(math.pi * diameter / 0.5), endpoint=False)
    return np.column_stack([np.cos(turn), np.sin(turn)]) * diameter / 2


def _shapes() -> list[Shape]:
    return (
        [Shape(f"square{i:02d}", _square(SQUARE), GROW) for i in range(20)]
        + [Shape(f"disc{i}", _disc(DISC), GROW) for i in range(3)]
        + [Shape("small", _square(SMALL), GROW)]
    )


def _assert_inside_and_apart(where: list[npt.NDArray[np.float64]], grow: float) -> None:
    for points in where:
        assert points.min() >= grow - 1e-6
        assert points[:, 0].max() <= AREA[0] - grow + 1e-6
        assert points[:, 1].max() <= AREA[1] - grow + 1e-6
    for a, b in itertools.combinations(where, 2):
        assert gap(a, b, 2 * grow - 1e-6) >= 2 * grow - 1e-6


class TestRoundAmongSquare:
    """Twenty squares, three discs and a small square that fit in rows are all laid out."""

    def test_a_row_arrangement_fits_them(self) -> None:
        # The premise, by hand: three rows of six squares, then two squares, the discs and
        # the small square in a fourth row.
        pitch = SQUARE + 2 * GROW
        places: list[PackedShape] = []
        for i in range(20):
            row, col = divmod(i, 6)
            places.append(PackedShape(f"square{i:02d}", 0.0, (col + 0.5) * pitch,
                                      (row + 0.5) * pitch))
        x = 2 * pitch
        for i in range(3):
            x += (DISC + 2 * GROW) / 2
            places.append(PackedShape(f"disc{i}", 0.0, x, 3 * pitch + DISC / 2 + GROW))
            x += (DISC + 2 * GROW) / 2
        places.append(PackedShape("small", 0.0, x + SMALL / 2 + GROW,
                                  3 * pitch + SMALL / 2 + GROW))
        by_key = {s.key: s for s in _shapes()}
        _assert_inside_and_apart([placed_points(by_key[p.key], p) for p in places], GROW)

    def test_the_layout_places_every_one_inside_and_apart(self) -> None:
        shapes = _shapes()
        placed, unplaced = pack_shapes(shapes, AREA, allow_rotation=True)
        assert unplaced == [] and len(placed) == len(shapes)
        by_key = {s.key: s for s in shapes}
        _assert_inside_and_apart([placed_points(by_key[p.key], p) for p in placed], GROW)


class TestMixed800Build12:
    """The build of mixed800 that did not fit at its first layout now fits on the engine."""

    def test_its_supported_parts_are_laid_out_inside_and_apart(
        self, sample_models_dir: Path
    ) -> None:
        batch = sample_models_dir / "batch"
        files = [batch / "part_06.stl"] * 20 + [batch / "part_09.stl"] * 3 + [
            batch / "part_12.stl"]
        engine = SimEngine()
        scene = engine.call("create_scene", {}, dict(FORM4))["id"]
        for path in files:
            engine.call("import_model", {"scene_id": scene},
                        {"file": str(path.resolve()), "units": "MILLIMETERS"})
        engine.call("auto_orient", {"scene_id": scene}, {"models": "ALL"})
        engine.call("auto_support", {"scene_id": scene}, {"models": "ALL"})
        engine.call("auto_layout", {"scene_id": scene}, {"models": "ALL"})
        with engine.scenes.use(scene) as state:
            models = list(state.models.values())
            assert len(models) == len(files)
            assert all(m.in_bounds((*PLATFORM, 210.0)) for m in models)
            shadows = [projected_points(m.world_mesh(), 0.5) for m in models]
        for a, b in itertools.combinations(shadows, 2):
            # Two raft borders and the spacing; shadows are samples, a few tenths short.
            assert gap(a, b, 2 * 2.0 + SPACING - 0.25) >= 2 * 2.0 + SPACING - 0.25
