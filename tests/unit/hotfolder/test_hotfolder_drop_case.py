"""A case dropped from its build during preparation fails alone; its build-mates print."""

from __future__ import annotations

from pathlib import Path

from daemon_support import Script, make_daemon, run_daemon_once

from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.store import JobState, SqliteJobStore

REASON = "case C-2: model upper.stl: step label: LABEL_FAILED"


class TestDroppedCase:
    """The runner's drop callback fails the case's jobs at once; the build goes on."""

    def test_the_dropped_case_lands_in_failed_and_the_others_print(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        for n, case in enumerate(("C-1", "C-2", "C-3")):
            folder = tmp_path / "inbox" / case
            folder.mkdir(parents=True)
            (folder / "upper.stl").write_bytes(tetra_stl_bytes(n))

        def drop(build: BuildPlan) -> list[tuple[Path, str]]:
            return [(m.path, REASON) for m in build.models if m.case_id == "C-2"]

        script = Script(fleet_dir=tmp_path / "fleet", drop=drop)
        recipe = write_recipe(tmp_path, name="hot")
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        jobs = {j.case_id: j for j in store.list_jobs()}
        assert jobs["C-2"].state is JobState.FAILED and jobs["C-2"].reason == REASON
        assert {jobs["C-1"].state, jobs["C-3"].state} == {JobState.PRINT_SENT}
        inbox = tmp_path / "inbox"
        note = (inbox / "failed" / "C-2" / "upper.stl.error.txt").read_text(encoding="utf-8")
        assert REASON in note and "C-1" not in note and "C-3" not in note
        assert (inbox / "done" / "C-1" / "upper.stl").is_file()
        assert (inbox / "done" / "C-3" / "upper.stl").is_file()
        assert len(fleet_jobs(script.fleet_dir)) == 1
