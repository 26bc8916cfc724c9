"""A hot folder's batch is planned for the pool it runs on, as ``run`` and ``plan`` plan.

The daemon's worker plans a whole batch at once (``plan_builds`` over all its jobs' files),
so the number of servers changes its builds: at most 20 models a build, thirty models are
20 + 10 for one server and 15 + 15 for two. The daemon runs the scripted runner (no
servers are needed to plan); its builds are read from the job store, the plan from the
``plan`` command line.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, run_daemon_once

from preform_pipeline.cli import run as cli_run
from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.settings import ServerSettings
from preform_pipeline.settings.hotfolder import BatchingSettings
from preform_pipeline.store import SqliteJobStore


@pytest.fixture
def models(sample_models_dir: Path) -> list[Path]:
    """Thirty sample models: the batch of 24 parts and the six others."""
    return [*sorted((sample_models_dir / "batch").glob("*.stl")),
            *sorted((sample_models_dir / "parts").iterdir())]


def planned(recipe: Path, models: list[Path], servers: int) -> list[list[str]]:
    """The builds of ``preform-pipeline plan --servers N``: each one's file names, sorted."""
    out, err = io.StringIO(), io.StringIO()
    code = cli_run(["plan", str(recipe), *map(str, models), "--servers", str(servers),
                   "--format", "json"], out, err)
    assert code == 0, err.getvalue()
    return sorted(sorted(Path(m["path"]).name for m in build["models"])
                  for build in json.loads(out.getvalue())["builds"])


def batched(tmp_path: Path, recipe: Path, models: list[Path], servers: int) -> list[list[str]]:
    """The builds a daemon with a pool of ``servers`` made of the models dropped at once."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for model in models:
        shutil.copy(model, inbox / model.name)
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        run_daemon_once(make_daemon(
            tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe,
            batching=BatchingSettings(window_s=0.1, max_models=len(models)),
            servers=ServerSettings(count=servers),
        ))
        return sorted(sorted(store.get_job(i).original_name for i in build.job_ids)
                      for build in store.list_builds())


class TestABatchOnAPoolOfTwo:
    """A batch of thirty models on a pool of two gets the builds ``plan --servers 2`` shows."""

    def test_its_builds_are_the_plans_for_two_servers(
        self, tmp_path: Path, models: list[Path]
    ) -> None:
        recipe = write_recipe(tmp_path, per_build=20)
        assert sorted(map(len, planned(recipe, models, 1))) == [10, 20]  # the premise
        expected = planned(recipe, models, 2)
        assert sorted(map(len, expected)) == [15, 15]
        assert batched(tmp_path, recipe, models, 2) == expected

    def test_on_a_pool_of_one_they_are_the_plans_for_one(
        self, tmp_path: Path, models: list[Path]
    ) -> None:
        recipe = write_recipe(tmp_path, per_build=20)
        assert batched(tmp_path, recipe, models, 1) == planned(recipe, models, 1)
