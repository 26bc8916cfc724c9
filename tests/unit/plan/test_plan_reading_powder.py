"""Reading for a powder (SLS) machine skips the shadow, which nothing there uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, MachineType
from preform_pipeline.geometry import write_stl
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes.model import ImportSpec
from tests.unit.plan.planning_factories import box_triangles, make_recipe

MM = ImportSpec(units="MILLIMETERS")


def _machine(type_id: str) -> MachineType:
    machine = DEFAULT_CATALOGUE.machine(type_id)
    assert machine is not None
    return machine


def _parts(folder: Path) -> Path:
    """Two cases of boxes of different sizes, the second case on its side (a flat face that
    is not the one it lies on), so the flat-face shadow differs from the one as it lies."""
    for case, sizes in (("C-1", [(30, 20, 10), (12, 12, 40)]), ("C-2", [(60, 8, 25)])):
        (folder / case).mkdir(parents=True)
        for n, (sx, sy, sz) in enumerate(sizes):
            triangles = np.asarray(box_triangles(sx, sy, sz), dtype=np.float32)
            write_stl(folder / case / f"part-{n}.stl", triangles)
    return folder


class TestPowderReading:
    """A powder machine's models are read without a shadow; resin and unknown keep it."""

    def test_a_powder_machine_reads_no_shadow(self, tmp_path: Path) -> None:
        models = read_models([_parts(tmp_path)], import_spec=MM, machine=_machine("FS30-1-0"))
        assert [m.shadow for m in models] == [None, None, None]
        assert all(m.volume_mm3 > 0 and m.size_mm[0] > 0 for m in models)

    def test_a_resin_machine_and_no_machine_read_the_shadow(self, tmp_path: Path) -> None:
        folder = _parts(tmp_path)
        resin = read_models([folder], import_spec=MM, machine=_machine("FORM-4-0"))
        unknown = read_models([folder], import_spec=MM)
        assert all(m.shadow is not None and m.shadow.as_is_hull_mm2 > 0 for m in resin)
        assert all(m.shadow is not None for m in unknown)


class TestPowderPlan:
    """A powder recipe plans the same builds whether or not the shadows were measured."""

    def test_the_builds_are_the_same(self, tmp_path: Path) -> None:
        folder = _parts(tmp_path)
        recipe = make_recipe(machine="FS30-1-0", material="FLP12G01", steps=("auto_pack",),
                             technology="SLS", packing_density=0.0005)
        without = read_models([folder], import_spec=MM, machine=_machine("FS30-1-0"))
        with_shadows = read_models([folder], import_spec=MM)
        plain, measured = plan_builds(recipe, without), plan_builds(recipe, with_shadows)
        # The tiny density (4 ml per build) gives each part a build: several builds compared.
        assert len(plain.builds) == 3
        assert [b.paths for b in plain.builds] == [b.paths for b in measured.builds]
        assert plain.builds == measured.builds
        assert (plain.rejected, plain.warnings) == (measured.rejected, measured.warnings)
