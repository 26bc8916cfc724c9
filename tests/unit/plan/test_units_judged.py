"""Units of unitless files: stated ones win, a guess warns, two plausible readings hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, MachineType
from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import write_stl
from preform_pipeline.plan.builds import Rejection, plan_builds, read_model, read_models
from preform_pipeline.recipes.model import ImportSpec
from tests.unit.plan.planning_factories import box_triangles, make_recipe

#: The four shop parts, in file units: an 8-inch bracket exported in inches, a 5 mm pin,
#: a 50 mm part and a 180 mm part (both exported in millimetres).
PARTS = {
    "bracket": (8.0, 3.0, 0.5),
    "pin": (5.0, 2.0, 2.0),
    "part50": (50.0, 30.0, 20.0),
    "part180": (180.0, 100.0, 40.0),
}
#: What each part really is in.
TRUE_UNITS = {"bracket": "INCHES", "pin": "MILLIMETERS", "part50": "MILLIMETERS",
              "part180": "MILLIMETERS"}


def _machine(type_id: str = "FORM-4L-0") -> MachineType:
    machine = DEFAULT_CATALOGUE.machine(type_id)
    assert machine is not None
    return machine


def _part(folder: Path, name: str) -> Path:
    path = folder / f"{name}.stl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_stl(path, box_triangles(*PARTS[name]))
    return path


class TestUnstated:
    """Without stated units, only an unambiguous reading is taken, and it is reported."""

    @pytest.mark.parametrize("name", ["bracket", "pin"])
    def test_a_part_that_could_be_either_is_held_with_both_sizes(
        self, tmp_path: Path, name: str
    ) -> None:
        with pytest.raises(ModelFileError) as caught:
            read_model(_part(tmp_path, name), import_spec=ImportSpec(), machine=_machine())
        message = str(caught.value)
        assert f"{name}.stl" in message
        x = PARTS[name][0]
        assert f"{x:.1f} x" in message and f"{x * 25.4:.1f} x" in message
        assert "import.units" in message and "sidecar" in message

    @pytest.mark.parametrize("name", ["part50", "part180"])
    def test_a_part_too_large_in_inches_is_guessed_millimetres_with_a_warning(
        self, tmp_path: Path, name: str
    ) -> None:
        info = read_model(_part(tmp_path, name), import_spec=ImportSpec(), machine=_machine())
        assert (info.units, info.units_source) == ("MILLIMETERS", "guess")
        assert info.size_mm == pytest.approx(PARTS[name])
        assert info.units_warning is not None
        x = PARTS[name][0]
        assert f"{name}.stl" in info.units_warning
        assert f"{x:.1f} x" in info.units_warning and f"{x * 25.4:.1f} x" in info.units_warning
        assert "import.units" in info.units_warning

    def test_the_plan_lists_the_guess_and_rejects_the_held_part(self, tmp_path: Path) -> None:
        paths = [_part(tmp_path, name) for name in PARTS]
        rejected: list[Rejection] = []
        recipe = make_recipe(machine="FORM-4L-0", units="DETECTED")
        models = read_models(paths, import_spec=recipe.import_options, rejected=rejected,
                             machine=_machine())
        plan = plan_builds(recipe, models, rejected=rejected)
        assert sorted(r.path.name for r in plan.rejected) == ["bracket.stl", "pin.stl"]
        assert sorted(w.split(":")[0] for w in plan.warnings) == ["part180.stl", "part50.stl"]
        assert sorted(u for b in plan.builds for u in b.units) == [
            "part180.stl: MILLIMETERS (guess)", "part50.stl: MILLIMETERS (guess)",
        ]

    def test_the_recipe_can_name_the_reading_to_assume(self, tmp_path: Path) -> None:
        spec = ImportSpec(ambiguous_units="MILLIMETERS")
        info = read_model(_part(tmp_path, "pin"), import_spec=spec, machine=_machine())
        assert (info.units, info.units_source, info.units_warning) == (
            "MILLIMETERS", "recipe", None,
        )

    def test_the_machine_decides_what_is_plausible(self, tmp_path: Path) -> None:
        # 9 units long: 228.6 mm as inches, taller than a Form 4 but inside a Form 4L.
        path = tmp_path / "rail.stl"
        write_stl(path, box_triangles(9.0, 3.0, 1.0))
        small = read_model(path, import_spec=ImportSpec(), machine=_machine("FORM-4-0"))
        assert (small.units, small.units_source) == ("MILLIMETERS", "guess")
        with pytest.raises(ModelFileError, match="Form 4L"):
            read_model(path, import_spec=ImportSpec(), machine=_machine("FORM-4L-0"))


class TestStated:
    """Stated units are used as stated, and their source is kept."""

    @pytest.mark.parametrize("name", list(PARTS))
    def test_recipe_units_by_path_state_each_file(self, tmp_path: Path, name: str) -> None:
        spec = ImportSpec(units_by_path=(("inch_parts", "INCHES"), ("*.stl", "MILLIMETERS")))
        folder = tmp_path / ("inch_parts" if TRUE_UNITS[name] == "INCHES" else "metric")
        info = read_model(_part(folder, name), import_spec=spec, machine=_machine())
        factor = 25.4 if TRUE_UNITS[name] == "INCHES" else 1.0
        assert (info.units, info.units_source, info.units_warning) == (
            TRUE_UNITS[name], "recipe", None,
        )
        assert info.size_mm == pytest.approx(tuple(v * factor for v in PARTS[name]))

    @pytest.mark.parametrize("name", list(PARTS))
    def test_a_sidecar_states_units_over_the_recipe(self, tmp_path: Path, name: str) -> None:
        spec = ImportSpec(units="MILLIMETERS")
        said = "in" if TRUE_UNITS[name] == "INCHES" else "mm"
        info = read_model(_part(tmp_path, name), import_spec=spec, fields={"units": said},
                          machine=_machine())
        assert (info.units, info.units_source) == (TRUE_UNITS[name], "sidecar")

    def test_a_sidecar_with_unknown_units_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ModelFileError, match="furlongs"):
            read_model(_part(tmp_path, "pin"), import_spec=ImportSpec(),
                       fields={"units": "furlongs"}, machine=_machine())
