"""`preform-pipeline plan` of one model in one build says "1 model" and "1 build"."""

from __future__ import annotations

import io
from pathlib import Path

from preform_pipeline.cli import run
from preform_pipeline.geometry import write_stl
from tests.unit.plan.planning_factories import box_triangles

RECIPE = """\
name: single
scene: {machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}
import: {units: MILLIMETERS}
steps: [auto_layout, save_form]
"""


def _plan(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    recipe = tmp_path / "single.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    model = tmp_path / "part.stl"
    write_stl(model, box_triangles(40, 30, 10))
    out, err = io.StringIO(), io.StringIO()
    code = run(["plan", str(recipe), str(model), *extra], out, err)
    return code, out.getvalue(), err.getvalue()


class TestOneModelInOneBuild:
    """The counts of a plan of one are written in the singular."""

    def test_the_summary_and_the_build_line_are_singular(self, tmp_path: Path) -> None:
        code, out, err = _plan(tmp_path)
        assert code == 0, err
        assert "1 model in 1 build, 0 rejected" in out.splitlines()[0]
        assert "build 1: single-001: 1 model, fill " in out
        assert "1 models" not in out

    def test_the_mermaid_heading_is_singular(self, tmp_path: Path) -> None:
        code, out, err = _plan(tmp_path, "--format", "mermaid")
        assert code == 0, err
        assert out.splitlines()[0] == "%% build 1: single-001 (1 model)"


class TestNamesAsTyped:
    """A model's name is shown as the user wrote it, in every line of the plan."""

    def test_the_import_step_shows_a_non_ascii_name_as_it_is(self, tmp_path: Path) -> None:
        # Session 30: the step line said files=["...zahnrad gro\u00df.stl"].
        recipe = tmp_path / "single.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        model = tmp_path / "Kunde Müller" / "zahnrad groß.stl"
        model.parent.mkdir()
        write_stl(model, box_triangles(40, 30, 10))
        out, err = io.StringIO(), io.StringIO()
        code = run(["plan", str(recipe), str(model)], out, err)
        assert code == 0, err.getvalue()
        step = next(line for line in out.getvalue().splitlines() if "import_models" in line)
        assert f'files=["{model}"]' in step
        assert "\\u" not in out.getvalue()
