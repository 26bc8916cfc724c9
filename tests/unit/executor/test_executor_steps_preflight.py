"""Preflight: every template a build needs is rendered before a server is leased, so a field
no value fills fails the build at once, with no request sent; templates that can be filled
go through to the server rendered."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.executor import BuildOutcome, BuildStatus
from tests.unit.executor.executor_support import (
    RECIPE_HEAD,
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)

#: A Fuse 1+ 30W scene (pack_and_cage is an SLS step).
FUSE_HEAD = RECIPE_HEAD.replace("FORM-4-0", "FS30-1-0").replace("FLGPGR05", "FLP12G01").replace(
    "layer_thickness_mm: 0.1", "layer_thickness_mm: 0.11"
)
#: One model per build, so model fields may be used; the model has no case id, so
#: ``{case_id}`` has no value.
ONE_PER_BUILD = "batching:\n  max_models_per_build: 1\n"


def _run(tmp_path: Path, farm: SimFarm, steps: str, head: str = RECIPE_HEAD) -> BuildOutcome:
    box = write_box(tmp_path / "m", "box0", 20, 20, 10)
    recipe = write_recipe(tmp_path, "steps:\n" + steps + ONE_PER_BUILD, head=head)
    farm.add()
    result = run(plan_for(recipe, [box]), FakePool([s.url for s in farm.servers]),
                 tmp_path / "out")
    (outcome,) = result.outcomes
    return outcome


def _saved_models(outcome: BuildOutcome) -> dict[str, Any]:
    """The models of the build's saved .form (the simulator's manifest), by name."""
    form = next(p for p in outcome.outputs if p.suffix == ".form")
    with zipfile.ZipFile(form) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    return {m["name"]: m for m in manifest["models"]}


class TestUnfilledTemplates:
    """Each kind of template with a field no value fills fails the build before any server
    is used, naming the field."""

    @pytest.mark.parametrize(
        ("steps", "head"),
        [
            pytest.param("  - print:\n      printer: \"{case_id}\"\n", RECIPE_HEAD,
                         id="printer"),
            pytest.param("  - print:\n      printer_ip: \"{case_id}\"\n", RECIPE_HEAD,
                         id="printer_ip"),
            pytest.param("  - print:\n      fleet_group: \"{case_id}\"\n", RECIPE_HEAD,
                         id="fleet_group"),
            pytest.param("  - print:\n      printer: SimulatedForm4-1\n"
                         "      job_name: \"{case_id}\"\n", RECIPE_HEAD, id="job_name"),
            pytest.param("  - auto_layout\n  - screenshot\n"
                         "outputs:\n  screenshot: \"{case_id}.png\"\n", RECIPE_HEAD,
                         id="screenshot"),
            pytest.param("  - pack_and_cage:\n      cage_label: \"{case_id}\"\n"
                         "  - save_form\n", FUSE_HEAD, id="cage_label"),
        ],
    )
    def test_the_build_fails_before_any_request(
        self, tmp_path: Path, farm: SimFarm, steps: str, head: str
    ) -> None:
        outcome = _run(tmp_path, farm, steps, head)
        assert (outcome.status, outcome.attempts) == (BuildStatus.FAILED, ())
        assert "no value for field {case_id}" in (outcome.reason or "")
        assert farm.faults[0].seen == []


class TestFilledTemplates:
    """Templates the build's fields fill pass preflight and reach the server rendered."""

    def test_a_cage_label_of_run_fields_is_rendered_into_the_scene(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome = _run(
            tmp_path, farm,
            "  - pack_and_cage:\n      cage_label: \"{recipe} {build} {stem}\"\n  - save_form\n",
            FUSE_HEAD,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert sorted(_saved_models(outcome)) == ["Cage unit unit-001 box0", "box0"]

    def test_label_text_of_each_models_own_fields_passes(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome = _run(
            tmp_path, farm,
            "  - auto_layout\n  - label:\n      text: \"{stem}-{recipe}\"\n      font_size_mm: 3\n"
            "      depth_mm: 0.5\n      placement:\n        face: front\n  - save_form\n",
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (label,) = _saved_models(outcome)["box0"]["labels"]
        assert label["label"] == "box0-unit"
