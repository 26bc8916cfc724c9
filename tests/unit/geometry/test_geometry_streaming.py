"""Streamed STL reading and slice-by-slice measurement give what the whole-array code gives.

The slice sizes are shrunk to a few triangles here so small random meshes cross many slice
boundaries; that memory does not grow with the file is measured in bench/bench_large_stl.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import (
    Mesh,
    best_flat_orientation,
    downward_area,
    platform_contact_area,
    read_mesh,
    support_volume_estimate,
    write_stl,
)
from preform_pipeline.geometry import mesh as mesh_module
from preform_pipeline.geometry import orientation as orientation_module
from preform_pipeline.geometry import stl as stl_module
from preform_pipeline.geometry.orientation import orientation_fault, reoriented
from preform_pipeline.geometry.projection import hull_area, projected_points
from preform_pipeline.geometry.stl import read_stl_bytes
from preform_pipeline.geometry.transforms import AXIS_ALIGNED_ROTATIONS
from preform_pipeline.plan.builds import read_model
from preform_pipeline.recipes.model import ImportSpec

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
])


def random_triangles(seed: int, count: int) -> npt.NDArray[np.float32]:
    """``count`` random triangles within 60 mm, some with long edges (the shadow subdivides
    those), placed off the origin."""
    rng = np.random.default_rng(seed)
    corners = rng.normal(0.0, 1.0, (count, 3, 3)) * rng.choice([0.3, 4.0, 25.0], (count, 1, 1))
    centres = rng.uniform(-30.0, 30.0, (count, 1, 3)) + np.array([100.0, -50.0, 20.0])
    return (corners + centres).astype(np.float32)


def whole_reader(path: Path) -> Mesh:
    """The reader that parses the file's bytes at once (what read_mesh did before)."""
    return read_stl_bytes(path.read_bytes(), origin=path, name=path.stem, source=path)


def refusal(read: object) -> tuple[str, str | None]:
    with pytest.raises(ModelFileError) as caught:
        read()  # type: ignore[operator]
    return caught.value.reason, caught.value.hint


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream 7 records and measure 5 triangles at a time."""
    monkeypatch.setattr(stl_module, "STREAM_RECORDS", 7)
    monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 5)


class TestStreamedBinaryStl:
    """A binary STL read in slices holds exactly the triangles the whole-file parser finds."""

    @FEW
    @given(st.integers(0, 2**32 - 1), st.integers(2, 40))
    def test_random_meshes_read_identically(
        self, tmp_path: Path, small_slices: None, seed: int, count: int
    ) -> None:
        path = tmp_path / f"random_{seed}_{count}.stl"
        write_stl(path, random_triangles(seed, count))
        streamed = read_mesh(path)
        assert np.array_equal(streamed.triangles, whole_reader(path).triangles)
        assert streamed.triangles.shape == (count, 3, 3)

    @pytest.mark.parametrize("count", [2, 6, 7, 8, 14, 15, 50])
    def test_slice_boundaries_lose_and_repeat_nothing(
        self, tmp_path: Path, small_slices: None, count: int
    ) -> None:
        triangles = random_triangles(count, count)
        path = tmp_path / "edges.stl"
        write_stl(path, triangles)
        assert np.array_equal(read_mesh(path).triangles, triangles)

    def test_nan_in_a_later_slice_is_named_as_the_whole_reader_names_it(
        self, tmp_path: Path, small_slices: None
    ) -> None:
        triangles = random_triangles(3, 30)
        triangles[17, 1, 2] = np.nan
        triangles[26, 0, 0] = np.inf
        path = tmp_path / "nan.stl"
        with np.errstate(invalid="ignore"):  # the normals written for it are NaN too
            write_stl(path, triangles)
        streamed = refusal(lambda: read_mesh(path))
        assert streamed == refusal(lambda: whole_reader(path))
        assert "triangle 18 of 30" in streamed[0] and "(2 such triangles)" in streamed[0]


class TestDamagedFilesStreamed:
    """Truncated, padded, lying and impostor files get the errors the whole-file parser gives."""

    def damaged(self, tmp_path: Path, edit: str) -> Path:
        path = tmp_path / f"{edit}.stl"
        write_stl(path, random_triangles(11, 20))
        data = bytearray(path.read_bytes())
        if edit == "cut_mid_record":
            data = data[:-73]
        elif edit == "cut_last_record":
            data = data[:-50]
        elif edit == "padded":
            data += b"\x00" * 50
        elif edit == "count_too_high":
            data[80:84] = (21).to_bytes(4, "little")
        elif edit == "count_too_low":
            data[80:84] = (19).to_bytes(4, "little")
        elif edit == "header_only":
            data = data[:84]
        elif edit == "short":
            data = data[:40]
        elif edit == "png":  # of a size no binary STL has, so the content decides
            data = bytearray(b"\x89PNG\r\n\x1a\n") + data[8:] + b"IEND"
        elif edit == "text":
            data = bytearray(b"these are some notes, not a mesh\n" * 20)
        elif edit == "random":
            data = bytearray(np.random.default_rng(5).bytes(84 + 50 * 20 + 13))
        path.write_bytes(bytes(data))
        return path

    @pytest.mark.parametrize("edit", [
        "cut_mid_record", "cut_last_record", "padded", "count_too_high", "count_too_low",
        "header_only", "short", "png", "text", "random",
    ])
    def test_same_error_as_the_whole_file_parser(
        self, tmp_path: Path, small_slices: None, edit: str
    ) -> None:
        path = self.damaged(tmp_path, edit)
        assert refusal(lambda: read_mesh(path)) == refusal(lambda: whole_reader(path))

    def test_a_truncated_file_says_how_much_is_missing(
        self, tmp_path: Path, small_slices: None
    ) -> None:
        reason, hint = refusal(lambda: read_mesh(self.damaged(tmp_path, "cut_last_record")))
        assert "declares 20 triangles" in reason and "room for 19 triangles" in reason
        assert hint is not None and "cut short" in hint

    def test_ascii_stl_is_still_read(self, tmp_path: Path, small_slices: None) -> None:
        triangles = random_triangles(8, 12)
        path = tmp_path / "text.stl"
        write_stl(path, triangles, ascii=True)
        assert np.array_equal(read_mesh(path).triangles, triangles)


def measurements(mesh: Mesh) -> dict[str, float]:
    return {
        "volume": mesh.volume(),
        "area": mesh.surface_area(),
        "support": support_volume_estimate(mesh, raft_thickness_mm=0.5),
        "downward": downward_area(mesh),
        "contact": platform_contact_area(mesh),
    }


def sorted_rows(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return points[np.lexsort(points.T[::-1])]


class TestSliceBySliceMeasurements:
    """Measured slice by slice, a mesh gives the numbers the one-slice measurement gives."""

    @FEW
    @given(st.integers(0, 2**32 - 1), st.integers(6, 60))
    def test_sums_agree(self, monkeypatch: pytest.MonkeyPatch, seed: int, count: int) -> None:
        mesh = Mesh(random_triangles(seed, count), "m")
        whole = measurements(mesh)
        monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 5)
        sliced = measurements(Mesh(mesh.triangles, "m"))
        assert sliced == pytest.approx(whole, rel=1e-9, abs=1e-9)

    @FEW
    @given(st.integers(0, 2**32 - 1), st.integers(6, 60))
    def test_orientation_transform_and_shadow_agree_exactly(
        self, monkeypatch: pytest.MonkeyPatch, seed: int, count: int
    ) -> None:
        mesh = Mesh(random_triangles(seed, count), "m")
        rotation = AXIS_ALIGNED_ROTATIONS[seed % len(AXIS_ALIGNED_ROTATIONS)]
        whole_flat = best_flat_orientation(mesh)
        whole_moved = mesh.transformed(rotation, (1.5, -2.0, 3.0)).triangles
        whole_shadow = projected_points(mesh)
        whole_turned = projected_points(mesh.transformed(rotation))
        monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 5)
        again = Mesh(mesh.triangles, "m")
        assert np.array_equal(best_flat_orientation(again), whole_flat)
        assert np.array_equal(again.transformed(rotation, (1.5, -2.0, 3.0)).triangles,
                              whole_moved)
        # Random coordinates never tie for a band's extreme, so the same points are kept.
        assert np.array_equal(sorted_rows(projected_points(again)), sorted_rows(whole_shadow))
        assert np.array_equal(sorted_rows(projected_points(again, rotation=rotation)),
                              sorted_rows(whole_turned))

    def test_a_box_split_over_slices_keeps_its_outline(
        self, monkeypatch: pytest.MonkeyPatch, cube: npt.NDArray[np.float32]
    ) -> None:
        box = Mesh(cube * np.float32(12.0), "box")
        whole = projected_points(box)
        monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 2)
        sliced = projected_points(Mesh(box.triangles, "box"))
        # Ties (a box's edges) may keep other samples of the same edge: same outline.
        assert sliced.min(axis=0) == pytest.approx(whole.min(axis=0), abs=1e-9)
        assert sliced.max(axis=0) == pytest.approx(whole.max(axis=0), abs=1e-9)
        assert hull_area(sliced) == pytest.approx(hull_area(whole)) == pytest.approx(144.0)


def grid_of_boxes(count: int, seed: int) -> npt.NDArray[np.float32]:
    """``count`` closed boxes of random sizes side by side (a closed, outward mesh)."""
    rng = np.random.default_rng(seed)
    boxes = []
    for k in range(count):
        size = rng.uniform(0.5, 5.0, 3)
        low = np.array([k * 6.0, 0.0, 0.0])
        corners = np.array([[i, j, m] for i in (0, 1) for j in (0, 1) for m in (0, 1)], float)
        v = low + corners * size
        faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
                 (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
        boxes.append([[v[a], v[b], v[c]] for a, b, c in faces])
    return np.array(boxes, dtype=np.float32).reshape(-1, 3, 3)


class TestClosureOfLargeMeshes:
    """Edge hashes (large meshes) and welded vertices (small ones) judge closure alike."""

    @FEW
    @given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.sampled_from(
        ["closed", "one_missing", "two_missing", "doubled", "flipped", "moved_corner"]
    ))
    def test_both_rules_agree(
        self, monkeypatch: pytest.MonkeyPatch, seed: int, boxes: int, edit: str
    ) -> None:
        triangles = grid_of_boxes(boxes, seed)
        if edit == "one_missing":
            triangles = triangles[1:]
        elif edit == "two_missing":
            triangles = np.delete(triangles, [0, 7], axis=0)
        elif edit == "doubled":
            triangles = np.concatenate([triangles, triangles[:12]])
        elif edit == "flipped":
            triangles[3] = triangles[3][::-1]
        elif edit == "moved_corner":
            triangles[5, 1] += np.float32(0.25)
        welded = Mesh(triangles, "m").is_closed()
        monkeypatch.setattr(mesh_module, "EXACT_WELD_MAX_TRIANGLES", 0)
        monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 5)
        hashed = Mesh(triangles, "m").is_closed()
        assert hashed == welded == (edit in ("closed", "flipped"))


class TestStreamedStlWriter:
    """Binary STL written a slice at a time is byte for byte what one slice writes."""

    @FEW
    @given(st.integers(0, 2**32 - 1), st.integers(1, 40))
    def test_same_bytes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, count: int
    ) -> None:
        triangles = random_triangles(seed, count)
        whole, sliced = tmp_path / f"whole_{seed}.stl", tmp_path / f"sliced_{seed}.stl"
        write_stl(whole, triangles, name="part")
        monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 3)
        write_stl(sliced, triangles, name="part")
        assert sliced.read_bytes() == whole.read_bytes()
        assert len(whole.read_bytes()) == 84 + 50 * count


def edited_grid(edit: str, seed: int) -> npt.NDArray[np.float32]:
    """A grid of 60 boxes, closed and outward unless ``edit`` says otherwise."""
    triangles = grid_of_boxes(60, seed)
    if edit == "inverted":
        triangles = triangles[:, ::-1].copy()
    elif edit == "one_flipped":
        triangles[13] = triangles[13][::-1]
    elif edit == "many_flipped":  # one triangle in each box: 180 edges walked twice alike
        triangles[::12] = triangles[::12][:, ::-1]
    elif edit == "open":
        triangles = triangles[1:]
    return triangles


class TestNormalsOfLargeMeshes:
    """Meshes over the exact check's size are judged on a sample of their edges."""

    @pytest.fixture
    def large(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(orientation_module, "ORIENTATION_CHECK_MAX_TRIANGLES", 10)
        monkeypatch.setattr(mesh_module, "CHUNK_TRIANGLES", 64)

    @pytest.mark.parametrize("edit", ["none", "inverted", "one_flipped", "many_flipped", "open"])
    def test_every_edge_sampled_judges_as_the_exact_check(
        self, monkeypatch: pytest.MonkeyPatch, edit: str
    ) -> None:
        triangles = edited_grid(edit, 2)
        exact = orientation_fault(Mesh(triangles, "m"))
        monkeypatch.setattr(orientation_module, "ORIENTATION_CHECK_MAX_TRIANGLES", 10)
        monkeypatch.setattr(orientation_module, "_SAMPLE_LIMIT", np.uint64(2**64 - 1))
        assert orientation_fault(Mesh(triangles, "m")) == exact
        assert exact == {"inverted": "inverted", "one_flipped": "inconsistent",
                         "many_flipped": "inconsistent"}.get(edit)

    @pytest.mark.parametrize(("edit", "fault"), [
        ("none", None), ("inverted", "inverted"), ("many_flipped", "inconsistent"),
    ])
    def test_a_sixteenth_of_the_edges_finds_inverted_meshes_and_flipped_patches(
        self, large: None, edit: str, fault: str | None
    ) -> None:
        assert orientation_fault(Mesh(edited_grid(edit, 3), "m")) == fault

    def test_inverted_is_turned_whole_inconsistent_left_to_the_import(self, large: None) -> None:
        inverted = Mesh(edited_grid("inverted", 4), "m")
        fixed, turned = reoriented(inverted)
        assert turned == 720 and orientation_fault(fixed) is None
        assert np.array_equal(fixed.triangles, edited_grid("none", 4))
        inconsistent = Mesh(edited_grid("many_flipped", 4), "m")
        assert reoriented(inconsistent) == (inconsistent, 0)

    def test_the_plan_says_what_it_did_with_a_large_file(
        self, large: None, tmp_path: Path
    ) -> None:
        path = tmp_path / "scan.stl"
        write_stl(path, edited_grid("many_flipped", 5))
        repair = ImportSpec(units="MILLIMETERS", repair_behavior="REPAIR")
        warning = read_model(path, import_spec=repair).normals_warning
        assert warning is not None and warning.startswith("scan.stl: some triangles face")
        assert "too many to re-orient before planning" in warning
        write_stl(path, edited_grid("inverted", 5))
        warning = read_model(path, import_spec=repair).normals_warning
        assert warning is not None and "720 triangles re-oriented" in warning
        with pytest.raises(ModelFileError, match="inside out"):
            read_model(path, import_spec=ImportSpec(units="MILLIMETERS"))
