"""Triangles facing the wrong way are found, named, and turned round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import Mesh, write_stl
from preform_pipeline.geometry.orientation import orientation_fault, reoriented
from preform_pipeline.plan.builds import read_model
from preform_pipeline.recipes.model import ImportSpec
from preform_pipeline.simulator.meshops import box_triangles


def _box() -> np.ndarray:
    return np.asarray(box_triangles((0.0, 0.0, 0.0), (10.0, 20.0, 30.0)), dtype=np.float32)


def _flipped(indices: list[int] | None = None) -> np.ndarray:
    t = _box()
    chosen = list(range(len(t))) if indices is None else indices
    t[chosen] = t[chosen][:, ::-1]
    return t


class TestFaults:
    """A good box has no fault; flipped ones are inverted or inconsistent, and repaired."""

    def test_a_good_box_has_none(self) -> None:
        assert orientation_fault(Mesh(_box(), "box")) is None

    @pytest.mark.parametrize(
        ("flipped", "fault", "turned"),
        [(None, "inverted", 12), ([1, 5, 7], "inconsistent", 3)],
    )
    def test_faults_are_found_and_reoriented(
        self, flipped: list[int] | None, fault: str, turned: int
    ) -> None:
        mesh = Mesh(_flipped(flipped), "box")
        assert orientation_fault(mesh) == fault
        fixed, count = reoriented(mesh)
        assert count == turned
        assert orientation_fault(fixed) is None
        assert np.array_equal(fixed.triangles, _box())


class TestPlanning:
    """The planner reports the fault naming the file, and follows import.repair_behavior."""

    def test_error_refuses_repair_reorients_ignore_warns(self, tmp_path: Path) -> None:
        path = tmp_path / "inside_out.stl"
        write_stl(path, _flipped())
        with pytest.raises(ModelFileError, match="inside out") as caught:
            read_model(path, import_spec=ImportSpec(units="MILLIMETERS"))
        assert "repair_behavior: REPAIR" in str(caught.value)
        repaired = read_model(
            path, import_spec=ImportSpec(units="MILLIMETERS", repair_behavior="REPAIR")
        )
        assert repaired.normals_warning is not None
        assert repaired.normals_warning.startswith("inside_out.stl: ")
        assert "12 triangles re-oriented" in repaired.normals_warning
        assert repaired.volume_mm3 == pytest.approx(6000.0)
        ignored = read_model(
            path, import_spec=ImportSpec(units="MILLIMETERS", repair_behavior="IGNORE")
        )
        assert ignored.normals_warning is not None and "as it is" in ignored.normals_warning
