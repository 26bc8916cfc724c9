"""A run's saves make ``.preform-staging`` once: it stays between builds, and goes when the
run ends (a new folder per build was among the dearest things a build asked of the disk)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe

from preform_pipeline.executor import BuildOutcome, BuildStatus
from preform_pipeline.outputfolders import STAGING_FOLDER

TWO_BUILDS = """\
steps:
  - auto_layout
  - save_form
batching:
  max_models_per_build: 1
"""


def test_the_staging_folder_stays_between_builds_and_goes_with_the_run(
    tmp_path: Path, farm: SimFarm
) -> None:
    out = tmp_path / "out"
    staging = out.resolve() / STAGING_FOLDER
    # What the output folder's staging is when each build's report is written (its save
    # is over by then): the folder's inode, None when there is none.
    seen: list[int | None] = []

    def note_staging(outcome: BuildOutcome, *_args: Any, **_kw: Any) -> None:
        try:
            seen.append(os.stat(staging).st_ino)
        except FileNotFoundError:
            seen.append(None)

    boxes = [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)]
    farm.add()
    result = run(plan_for(write_recipe(tmp_path, TWO_BUILDS), boxes),
                 FakePool([s.url for s in farm.servers]), out, build_report=note_staging,
                 step_timeout_s=30.0)

    assert [o.status for o in result.outcomes] == [BuildStatus.SUCCEEDED] * 2, [
        o.reason for o in result.outcomes]
    assert len(seen) == 2 and seen[0] is not None and seen[1] == seen[0]  # made once
    assert not staging.exists()
    assert sorted(p.name for p in out.rglob("*.form")) == ["unit-001.form", "unit-002.form"]
