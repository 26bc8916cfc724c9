"""An absurd model size reads as one: ``1.0e+38 mm``, not 39 digits.

Before, a 1e38 mm model was refused truly by ``plan`` and ``run``, but its size, in the
rejection, the units warning and the run's report, was written with ``:.1f``: 39 digits each.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest

from preform_pipeline.cli import run
from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh, write_stl
from preform_pipeline.wording import millimetres
from tests.conftest import RECIPES
from tests.hostile_corpus import tetra

ABSURD = "1.0e+38 x 1.0e+38 x 1.0e+38 mm"
LONG_DIGITS = re.compile(r"\d{12}")


@pytest.fixture
def huge(tmp_path: Path) -> Path:
    """A tetrahedron 1e38 mm on each side (float32 holds it; 1e39 would be infinite)."""
    shape = tetra().astype(np.float64)
    path = tmp_path / "huge.stl"
    write_stl(path, (shape / shape.max() * 1e38).astype(np.float32))
    return path


class TestTheRule:
    """A tenth of a millimetre each, but from a kilometre on in exponent form."""

    @pytest.mark.parametrize(("size", "shown"), [
        ((12.0, 3.54, 0.04), "12.0 x 3.5 x 0.0 mm"),
        ((999_999.94, 1.0, 1.0), "999999.9 x 1.0 x 1.0 mm"),
        ((1e6, -2e7, 1e38), "1.0e+06 x -2.0e+07 x 1.0e+38 mm"),
        ((float("inf"), 1.0), "inf x 1.0 mm"),
    ])
    def test_sizes(self, size: tuple[float, ...], shown: str) -> None:
        assert millimetres(size) == shown


class TestAnAbsurdModel:
    """``plan`` and ``run`` refuse a 1e38 mm model with its size in exponent form."""

    def test_plan(self, huge: Path) -> None:
        out, err = io.StringIO(), io.StringIO()
        code = run(["plan", str(RECIPES / "engineering-grey-form4.yaml"), str(huge)], out, err)
        shown = out.getvalue()
        assert code == 1, shown + err.getvalue()
        assert f"{huge}: model is {ABSURD}, larger than the 200 x 125 x 210 mm" in shown
        assert f"read as millimetres it is {ABSURD}, read as inches 2.5e+39 x" in shown
        assert not LONG_DIGITS.search(shown), shown

    def test_run_and_its_report(self, huge: Path, tmp_path: Path) -> None:
        out, err = io.StringIO(), io.StringIO()
        code = run(["run", "--dry-run", "--output", str(tmp_path / "out"),
                    str(RECIPES / "engineering-grey-form4.yaml"), str(huge)], out, err)
        shown = out.getvalue()
        assert code == 1, shown + err.getvalue()
        assert f"{huge} ({ABSURD}): model is {ABSURD}" in shown
        assert not LONG_DIGITS.search(shown.replace(str(tmp_path), "")), shown
        (report,) = (tmp_path / "out" / "reports").glob("*.csv")
        with report.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        (rejected,) = (row for row in rows if row["status"] == "rejected")
        assert rejected["reason"].endswith(f"(size {ABSURD})"), rejected


class TestAStrayCorner:
    """A mesh whose triangles are slivers only next to its size is refused with that size,
    pointing at the far corner (session 44's fuzzing: one vertex at 3.4e38 mm was "all 4
    triangles have zero area ... the model was scaled to nothing", three of them 50 mm²)."""

    def test_one_far_corner_is_named_as_the_thing_to_look_for(self, tmp_path: Path) -> None:
        shape = tetra().astype(np.float32)
        shape[1, 0] = (3.4e38, 0.0, 0.0)  # one corner of one triangle, float32 still finite
        path = tmp_path / "stray.stl"
        write_stl(path, shape)
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason == (
            "all 4 triangles have zero area at the model's size (3.4e+38 x 10.0 x 10.0 mm): "
            "their corners lie on a line or a point, so there is no surface to print")
        assert caught.value.hint.startswith(
            "some triangles have area of their own, so a corner far from the rest (a stray "
            "vertex, or a coordinate in other units) makes every one a sliver")

    def test_corners_on_a_line_keep_the_export_hint(self, tmp_path: Path) -> None:
        path = tmp_path / "line.stl"
        write_stl(path, np.array([[[0, 0, 0], [1, 1, 1], [2, 2, 2]]] * 3, np.float32))
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason.startswith(
            "all 3 triangles have zero area at the model's size (2.0 x 2.0 x 2.0 mm)")
        assert caught.value.hint == (
            "the export failed or the model was scaled to nothing; export it again")
