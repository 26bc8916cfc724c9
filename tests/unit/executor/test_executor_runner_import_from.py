"""``RunOptions.import_from`` (a node's local copies of shared files, hotfolder/localcopy.py)
decides which file the server imports for each model: the build reads the copies, even
when the shared files are gone, and still reports the files the person dropped."""

from __future__ import annotations

import shutil
from pathlib import Path

from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe

from preform_pipeline.executor import BuildStatus

STEPS = "steps:\n  - auto_layout\n  - save_form\n"


class TestImportFromLocalCopies:
    """A run given ``import_from`` imports each model from the copy it names."""

    def test_the_build_imports_the_copies_when_the_shared_files_are_gone(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        shared = [write_box(tmp_path / "shared", f"box{i}", 20, 20, 10) for i in range(2)]
        plan = plan_for(write_recipe(tmp_path, STEPS), shared)
        cache = tmp_path / "node-cache"
        cache.mkdir()
        copies = {path: Path(shutil.copy2(path, cache / path.name)) for path in shared}
        for path in shared:
            # The shared drive lost the files after planning: only the copies are left.
            path.unlink()
        asked: list[Path] = []

        def local_copy(path: Path) -> Path:
            asked.append(path)
            return copies[path]

        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     import_from=local_copy)
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.reason) == (BuildStatus.SUCCEEDED, None)
        assert sorted(asked) == sorted(shared)
        assert sorted(outcome.source_files) == sorted(str(p) for p in shared)
