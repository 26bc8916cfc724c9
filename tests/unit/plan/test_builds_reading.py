"""Reading model files for planning: units, scale, folder expansion into cases, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import write_obj, write_stl
from preform_pipeline.plan.builds import (
    Rejection,
    expand_model_paths,
    plan_builds,
    read_model,
    read_models,
)
from preform_pipeline.recipes.model import ImportSpec
from tests.unit.plan.planning_factories import box_triangles, make_recipe

MM = ImportSpec(units="MILLIMETERS")
DETECT = ImportSpec(units="DETECTED")


def _box(path: Path, sx: float, sy: float, sz: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_stl(path, box_triangles(sx, sy, sz))
    return path


class TestUnits:
    """Sizes come out in millimetres after units and scale are applied."""

    @pytest.mark.parametrize(
        ("spec", "box", "size", "units"),
        [
            (MM, (10.0, 20.0, 30.0), (10.0, 20.0, 30.0), "MILLIMETERS"),
            (DETECT, (10.0, 20.0, 30.0), (10.0, 20.0, 30.0), "MILLIMETERS"),
            (DETECT, (2.0, 1.0, 0.2), (50.8, 25.4, 5.08), "INCHES"),
            (ImportSpec(units="INCHES"), (2.0, 1.0, 0.5), (50.8, 25.4, 12.7), "INCHES"),
            (ImportSpec(units="MILLIMETERS"), (2.0, 1.0, 0.5), (2.0, 1.0, 0.5), "MILLIMETERS"),
            (ImportSpec(units="MILLIMETERS", scale=2.0), (10.0, 20.0, 5.0), (20.0, 40.0, 10.0),
             "MILLIMETERS"),
        ],
    )
    def test_size_footprint_and_volume_are_in_millimetres(
        self,
        tmp_path: Path,
        spec: ImportSpec,
        box: tuple[float, float, float],
        size: tuple[float, float, float],
        units: str,
    ) -> None:
        info = read_model(_box(tmp_path / "part.stl", *box), import_spec=spec)
        assert info.size_mm == pytest.approx(size, rel=1e-5)
        assert info.footprint_mm == pytest.approx(size[:2], rel=1e-5)
        assert info.volume_mm3 == pytest.approx(size[0] * size[1] * size[2], rel=1e-4)
        assert info.units == units
        assert info.triangle_count == 12
        assert info.name == "part"

    def test_the_support_estimate_scales_with_the_volume(self, tmp_path: Path) -> None:
        path = tmp_path / "overhang.obj"
        # A box floating 5 mm above its lowest vertex needs supports under its bottom face.
        triangles = [[[x, y, z + 5.0] for x, y, z in tri] for tri in box_triangles(10, 10, 10)]
        triangles.append([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]])
        write_obj(path, triangles)
        once = read_model(path, import_spec=MM)
        twice = read_model(path, import_spec=ImportSpec(units="MILLIMETERS", scale=2.0))
        assert once.support_estimate_mm3 > 0
        assert twice.support_estimate_mm3 == pytest.approx(8 * once.support_estimate_mm3)


class TestFolders:
    """Folders expand recursively to model files, each folder a case."""

    def test_folders_expand_sorted_with_the_holding_folder_as_case(self, tmp_path: Path) -> None:
        _box(tmp_path / "cases" / "case-002" / "upper.stl", 20, 20, 10)
        _box(tmp_path / "cases" / "case-001" / "lower.stl", 20, 20, 10)
        _box(tmp_path / "cases" / "case-001" / "upper.stl", 20, 20, 10)
        (tmp_path / "cases" / "case-001" / "notes.txt").write_text("not a model")
        _box(tmp_path / "cases" / "case-001" / ".hidden.stl", 20, 20, 10)
        loose = _box(tmp_path / "loose.stl", 5, 5, 5)
        found = expand_model_paths([tmp_path / "cases", loose])
        assert [(p.relative_to(tmp_path).as_posix(), c) for p, c in found.items()] == [
            ("cases/case-001/lower.stl", "case-001"),
            ("cases/case-001/upper.stl", "case-001"),
            ("cases/case-002/upper.stl", "case-002"),
            ("loose.stl", None),
        ]

    def test_case_ids_given_by_the_caller_win(self, tmp_path: Path) -> None:
        a = _box(tmp_path / "batch" / "a.stl", 20, 20, 10)
        b = _box(tmp_path / "batch" / "b.stl", 20, 20, 10)
        infos = read_models([tmp_path / "batch"], import_spec=MM, case_ids={a: "order-7"})
        assert [(i.path, i.case_id) for i in infos] == [(a, "order-7"), (b, None)]

    def test_fields_are_attached_read_only(self, tmp_path: Path) -> None:
        a = _box(tmp_path / "a.stl", 20, 20, 10)
        (info,) = read_models([a], import_spec=MM, fields={a: {"patient": "P-1"}})
        assert info.fields == {"patient": "P-1"}
        with pytest.raises(TypeError):
            info.fields["patient"] = "x"  # type: ignore[index]

    def test_cases_from_folders_stay_together_in_the_plan(self, tmp_path: Path) -> None:
        for case in range(6):
            for part in ("upper", "lower"):
                _box(tmp_path / f"case-{case}" / f"{part}.stl", 80, 50, 10)
        infos = read_models([tmp_path], import_spec=MM)
        plan = plan_builds(make_recipe(), infos)
        assert len(plan.builds) > 1
        for build in plan.builds:
            for model in build.models:
                assert sum(m.case_id == model.case_id for m in build.models) == 2


class TestBadFiles:
    """Unreadable files raise, or become rejections when the caller collects them."""

    def test_without_a_list_the_first_bad_file_raises(self, tmp_path: Path) -> None:
        bad = tmp_path / "truncated.stl"
        bad.write_bytes(b"\0" * 90)
        with pytest.raises(ModelFileError) as caught:
            read_models([bad], import_spec=MM)
        assert caught.value.path == bad

    def test_with_a_list_bad_files_are_collected_and_reading_goes_on(self, tmp_path: Path) -> None:
        good = _box(tmp_path / "good.stl", 20, 20, 10)
        missing = tmp_path / "missing.stl"
        rejected: list[Rejection] = []
        infos = read_models([missing, good], import_spec=MM, rejected=rejected)
        assert [i.path for i in infos] == [good]
        assert [r.path for r in rejected] == [missing]
        assert "file not found" in rejected[0].reason
        assert rejected[0].size_mm is None
