"""``preform-pipeline run`` plans its builds for the pool it starts: work balanced over it.

Real subprocesses throughout: the command line, its server pool, two simulator processes.
"""

from __future__ import annotations

from pathlib import Path

from run_e2e_support import command, full_steps, run_cli, write_recipe, write_settings

from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes import load_recipe


class TestThirtyModelsOnTwoServers:
    """At most 20 models a build: one server's plan is 20 + 10, two servers' 15 + 15."""

    def test_the_run_makes_the_builds_planned_for_its_two_servers(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        models = [*sorted((sample_models_dir / "batch").glob("*.stl")),
                  *sorted((sample_models_dir / "parts").iterdir())]
        recipe = write_recipe(tmp_path, full_steps(20))
        settings = write_settings(tmp_path, count=2)
        run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings),
                                        "--dry-run"))
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.report["servers"] == 2

        loaded = load_recipe(recipe)
        infos = read_models(models, import_spec=loaded.import_options)
        one, two = plan_builds(loaded, infos), plan_builds(loaded, infos, servers=2)
        assert [len(b.models) for b in one.builds] == [20, 10]  # the premise: uneven
        expected = {b.name: sorted(str(p) for p in b.paths) for b in two.builds}
        got = {b["build"]: sorted(b["source_files"]) for b in run.builds()}
        assert got == expected
        assert sorted(len(files) for files in got.values()) == [15, 15]
        (balanced,) = run.events_named("builds_balanced")
        assert balanced["servers"] == 2 and balanced["moved"] == 5
