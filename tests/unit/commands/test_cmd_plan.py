"""`preform-pipeline plan`: builds, steps and volumes printed; rejections set the exit status."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.geometry import write_stl
from preform_pipeline.recipes import validate_recipe
from tests.unit.plan.planning_factories import box_triangles

RECIPE = """\
name: plan-cli
scene: {machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}
import: {units: MILLIMETERS}
steps: [auto_orient, auto_support, auto_layout, save_form]
batching: {max_models_per_build: 4%s}
"""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _plan(*argv: str | Path, stdout: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    code = run(["plan", *map(str, argv)], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "plan-cli.yaml"
    path.write_text(RECIPE % "", encoding="utf-8")
    return path


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    """Three cases of two 40 x 30 x 10 mm boxes each, one folder per case."""
    root = tmp_path / "cases"
    for case in ("case-a", "case-b", "case-c"):
        (root / case).mkdir(parents=True)
        for part in ("upper", "lower"):
            write_stl(root / case / f"{part}.stl", box_triangles(40, 30, 10))
    return root


@pytest.fixture
def oversized(tmp_path: Path) -> Path:
    path = tmp_path / "loose" / "bar.stl"
    path.parent.mkdir()
    write_stl(path, box_triangles(260, 60, 20))
    return path


class TestText:
    """Plain text (not a terminal) lists builds, their models and steps, and the resin."""

    def test_a_batch_that_plans_fully_exits_0(self, recipe: Path, cases: Path) -> None:
        code, out, err = _plan(recipe, cases)
        assert code == 0, err
        assert "6 models in 2 builds, 0 rejected" in out
        assert "build 1: plan-cli-001: 4 models" in out
        assert "build 2: plan-cli-002: 2 models" in out
        assert out.count("case case-a") == 2
        assert " 1. create_scene" in out and "save_form" in out
        # 6 boxes of 12 ml each; flat boxes need no supports.
        assert "total estimated resin: 72.0 ml" in out
        assert "\x1b[" not in out

    def test_an_oversized_model_is_listed_with_its_size_and_exits_1(
        self, recipe: Path, cases: Path, oversized: Path
    ) -> None:
        code, out, _ = _plan(recipe, cases, oversized)
        assert code == 1
        assert "rejected:" in out
        assert "260.0 x 60.0 x 20.0 mm" in out and "200 x 125 x 210 mm" in out
        assert "6 models in 2 builds, 1 rejected" in out

    def test_an_unreadable_file_is_rejected_and_the_rest_still_plan(
        self, recipe: Path, cases: Path, tmp_path: Path
    ) -> None:
        broken = tmp_path / "broken.stl"
        broken.write_bytes(b"solid x\n facet normal 0 0 1\n")
        code, out, _ = _plan(recipe, cases, broken)
        assert code == 1
        assert "broken.stl" in out.split("rejected:")[1]
        assert "6 models in 2 builds" in out

    def test_a_terminal_gets_rich_tables(self, recipe: Path, cases: Path) -> None:
        code, out, _ = _plan(recipe, cases, stdout=_Tty())
        assert code == 0
        assert "build 1: plan-cli-001" in out
        assert "resin (ml)" in out and "case-a" in out
        assert "total estimated resin: 72.0 ml" in out
        assert any(ch in out for ch in "┏━┃│")


class TestOtherFormats:
    """Mermaid prints one flowchart per build; JSON prints the whole plan."""

    def test_mermaid_gives_a_flowchart_per_build(
        self, recipe: Path, cases: Path, oversized: Path
    ) -> None:
        code, out, err = _plan(recipe, cases, oversized, "--format", "mermaid")
        assert code == 1
        assert out.count("flowchart TD") == 2
        assert out.startswith("%% build 1: plan-cli-001 (4 models)\nflowchart TD\n")
        assert "rejected:" not in out and "bar.stl" in err

    def test_json_holds_builds_models_graphs_and_rejections(
        self, recipe: Path, cases: Path, oversized: Path
    ) -> None:
        code, out, _ = _plan(recipe, cases, oversized, "--format", "json")
        data = json.loads(out)
        assert code == 1 and data["ok"] is False
        assert [len(b["models"]) for b in data["builds"]] == [4, 2]
        assert data["builds"][0]["graph"]["nodes"][0]["id"] == "create_scene"
        assert data["builds"][0]["models"][0]["case_id"].startswith("case-")
        (rejected,) = data["rejected"]
        assert rejected["size_mm"] == pytest.approx([260, 60, 20])
        assert rejected["build_volume_mm"] == [200, 125, 210]
        assert data["total_volume_ml"] == pytest.approx(72.0)
        assert data["volume_kind"] == "resin"


class TestCaseIds:
    """A case is a folder: ``plan`` gives case ids as ``run`` does."""

    def test_a_loose_file_has_none_and_a_case_folder_gives_its_name(
        self, recipe: Path, tmp_path: Path
    ) -> None:
        # Session 37: the inbox's own file took the inbox's name, which a label would engrave.
        inbox = tmp_path / "inbox"
        (inbox / "C-1042").mkdir(parents=True)
        write_stl(inbox / "loose.stl", box_triangles(20, 20, 10))
        write_stl(inbox / "C-1042" / "upper.stl", box_triangles(20, 20, 10))
        code, out, _ = _plan(recipe, inbox, "--format", "json")
        cased = {m["path"]: m["case_id"] for b in json.loads(out)["builds"] for m in b["models"]}
        assert code == 0
        assert cased == {str(inbox / "loose.stl"): None,
                         str(inbox / "C-1042" / "upper.stl"): "C-1042"}
        # Named on its own and marked by its case's sidecar, the folder is one case, as in
        # `run C-1042/`.
        (inbox / "C-1042" / "C-1042.yaml").write_text("priority: 1\n", encoding="utf-8")
        code, out, _ = _plan(recipe, inbox / "C-1042", "--format", "json")
        assert [m["case_id"] for m in json.loads(out)["builds"][0]["models"]] == ["C-1042"]


class TestFailures:
    """Invalid recipes, impossible batches and usage errors have their own exit codes."""

    def test_an_invalid_recipe_prints_its_problems_and_exits_1(
        self, tmp_path: Path, cases: Path
    ) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            "scene: {machine_type: FORM-4-0, material_code: FLGPGR05, "
            "layer_thickness_mm: 0.1}\nsteps: [auto_orient, auto_suport]\n",
            encoding="utf-8",
        )
        code, out, err = _plan(bad, cases)
        assert code == 1 and out == ""
        problems = validate_recipe(bad).problems
        assert problems
        for problem in problems:
            assert str(problem) in err

    def test_on_overflow_fail_with_two_builds_exits_1(self, tmp_path: Path, cases: Path) -> None:
        path = tmp_path / "strict.yaml"
        path.write_text(RECIPE % ", on_overflow: fail", encoding="utf-8")
        code, out, err = _plan(path, cases)
        assert code == 1 and out == ""
        assert "on_overflow: fail" in err

    def test_folders_without_models_exit_1(self, recipe: Path, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        code, _, err = _plan(recipe, tmp_path / "empty")
        assert code == 1 and "no model files" in err

    @pytest.mark.parametrize(
        "argv", [[], ["recipe.yaml"], ["recipe.yaml", "m.stl", "--format", "svg"]]
    )
    def test_usage_errors_exit_2(self, argv: list[str]) -> None:
        code, _, _ = _plan(*argv)
        assert code == 2
