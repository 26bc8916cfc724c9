"""A model file removed after ``run`` planned it (session 48's trial: a person tidying the
shared folder while cron's run worked): its case leaves the build, and the run's record
fails its job, so the build's end never records the file as prepared or printed. The one
line of ``commands/run.py`` that hands the runner's drop to the ledger (``on_model_dropped``)
is what this test reaches: the runner's and the ledger's halves have tests of their own
(test_executor_drop_case.py, test_executor_ledger_outcomes.py). The command line in the
test's process (the file must vanish between the plan and the import), its embedded
simulator, a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.executor import runner as runner_module
from preform_pipeline.executor.steps import GONE_REASON
from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import InProcess
from tests.unit.executor.executor_support import RECIPE_HEAD, write_box

RECIPE = RECIPE_HEAD + """\
steps:
  - auto_layout
  - save_form
"""


class TestAFileRemovedUnderARun:
    """Its job fails with why; the build's other file is prepared."""

    def test_its_job_fails_and_the_other_is_prepared(
        self, tmp_path: Path, in_process: InProcess, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        share = tmp_path / "share"
        kept, gone = write_box(share, "bracket", 20, 15, 10), write_box(share, "knob", 20, 15, 10)
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        settings = tmp_path / "settings.yaml"
        settings.write_text("servers: {count: 1}\n", encoding="utf-8")
        store = tmp_path / "jobs.sqlite3"
        # The runner's own module: ``run`` imports the Runner from there when it has builds.
        planned = runner_module.Runner

        def removed_after_the_plan(*args: object, **kwargs: object) -> object:
            gone.unlink()  # the plan and the store's jobs are made; no import yet
            return planned(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(runner_module, "Runner", removed_after_the_plan)
        done = in_process(tmp_path, "run", str(recipe), str(share), "--store", str(store),
                          "--settings", str(settings), "--output", str(tmp_path / "out"))
        assert done.returncode == 0, done.stdout + done.stderr
        with SqliteJobStore(store) as opened:
            jobs = {j.source_path.name: (j.state, j.reason) for j in opened.list_jobs()}
        assert jobs[kept.name][0] is JobState.DONE
        assert jobs[gone.name] == (JobState.FAILED,
                                   f"model {gone.name}: step import_models: {GONE_REASON}")
