"""`preform-pipeline plan --servers N`: the plan shown is the one `run` on N servers runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.geometry import write_stl
from tests.unit.plan.planning_factories import box_triangles

RECIPE = """\
name: plan-servers
scene: {machine_type: FORM-4-0, material_code: FLGPGR05, layer_thickness_mm: 0.1}
import: {units: MILLIMETERS}
steps: [auto_orient, auto_support, auto_layout, save_form]
batching: {margin_mm: 0, allow_rotation: false}
"""


def _plan(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["plan", *map(str, argv)], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "plan-servers.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    return path


@pytest.fixture
def models(tmp_path: Path) -> list[Path]:
    """Four plates that need a platform each and 30 small blocks: on one server the blocks
    pile into two of the four builds."""
    folder = tmp_path / "models"
    folder.mkdir()
    paths = []
    for i in range(4):
        paths.append(folder / f"plate{i}.stl")
        write_stl(paths[-1], box_triangles(120, 100, 10))
    for i in range(30):
        paths.append(folder / f"block{i:02d}.stl")
        write_stl(paths[-1], box_triangles(10, 10, 5))
    return paths


def _counts(out: str) -> list[int]:
    return [len(b["models"]) for b in json.loads(out)["builds"]]


class TestServersOption:
    """--servers balances the builds' work over that many servers, in as many builds."""

    def test_four_servers_get_four_even_builds_where_one_gets_uneven_ones(
        self, recipe: Path, models: list[Path]
    ) -> None:
        code, one, err = _plan(recipe, *models, "--servers", "1", "--format", "json")
        assert code == 0, err
        code, four, err = _plan(recipe, *models, "--servers", "4", "--format", "json")
        assert code == 0, err
        assert max(_counts(one)) - min(_counts(one)) > 10  # the premise: very uneven
        assert len(_counts(four)) == len(_counts(one)) == 4
        assert max(_counts(four)) - min(_counts(four)) <= 1
        assert sum(_counts(four)) == 34
        assert json.loads(four)["servers"] == 4 and json.loads(one)["servers"] == 1

    def test_the_text_says_what_the_builds_were_balanced_over(
        self, recipe: Path, models: list[Path]
    ) -> None:
        code, out, err = _plan(recipe, *models, "--servers", "4")
        assert code == 0, err
        assert "34 models in 4 builds, 0 rejected\nwork balanced over 4 servers" in out
        code, out, err = _plan(recipe, *models, "--servers", "1")
        assert code == 0, err
        assert "balanced" not in out

    def test_no_servers_is_a_usage_error(self, recipe: Path, models: list[Path]) -> None:
        code, out, err = _plan(recipe, *models, "--servers", "0")
        assert code == 1 and out == ""
        assert err == "error: --servers must be 1 or more\n"


class TestServersFromSettings:
    """Without --servers, the settings' pool size is what `run` would start: it decides."""

    def test_the_settings_pool_size_is_the_default(
        self, recipe: Path, models: list[Path], tmp_path: Path
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text("servers:\n  count: 3\n", encoding="utf-8")
        code, out, err = _plan(recipe, *models, "--settings", settings, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["servers"] == 3

    def test_without_settings_the_default_pool_of_two_is_taken(
        self, recipe: Path, models: list[Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("PREFORM_PIPELINE_SETTINGS", raising=False)
        code, out, err = _plan(recipe, *models, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["servers"] == 2

    def test_a_broken_settings_file_is_reported_and_nothing_is_planned(
        self, recipe: Path, models: list[Path], tmp_path: Path
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text("servers:\n  count: many\n", encoding="utf-8")
        code, out, err = _plan(recipe, *models, "--settings", settings)
        assert code == 1 and out == ""
        assert err.startswith("error: ") and "count" in err and "Traceback" not in err
