"""A build imports each model from where the file really is: links and ``..`` resolved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from executor_support import FakePool, SimFarm, run, write_box, write_recipe

from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes import load_recipe
from preform_pipeline.simulator.formfile import load_form

posix_only = pytest.mark.skipif(os.name != "posix", reason="links made without privileges")


def _imported_files(tmp_path: Path, farm: SimFarm, paths: list[Path]) -> list[str]:
    """The file each model of the saved build was imported from, as the server was sent it."""
    recipe = load_recipe(write_recipe(tmp_path, "steps:\n  - save_form\n"))
    plan = plan_builds(recipe, read_models(paths, import_spec=recipe.import_options))
    farm.add()
    result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out", dry_run=True)
    assert result.ok, [o.reason for o in result.outcomes]
    files: list[str] = []
    for outcome in result.outcomes:
        form = next(p for p in outcome.outputs if p.suffix == ".form")
        files += [m.original_file for m in load_form(form, "check").models.values()]
    return sorted(files)


@posix_only
class TestImportPaths:
    """Each model reaches the server as its file's resolved path."""

    def test_files_reached_through_links_and_dots_are_sent_where_they_are(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        real = tmp_path / "real"
        first = write_box(real, "first", 10.0, 10.0, 5.0)
        second = write_box(real, "second", 12.0, 8.0, 5.0)
        third = write_box(real / "deep", "third", 9.0, 9.0, 5.0)
        linked = tmp_path / "linked"
        linked.symlink_to(real, target_is_directory=True)
        file_link = tmp_path / "alias.stl"
        file_link.symlink_to(third)

        files = _imported_files(
            tmp_path, farm, [linked / "first.stl", real / "deep" / ".." / "second.stl", file_link]
        )

        assert files == sorted(str(p.resolve()) for p in (first, second, third))
