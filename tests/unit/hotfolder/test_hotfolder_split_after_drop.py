"""A hot-folder build that drops a case and then overflows: the dropped case's file fails
once with its reason, the halves print the other cases, and no job is left in between."""

from __future__ import annotations

from pathlib import Path

from daemon_support import Script, drop, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.store import JobState, SqliteJobStore

DROPPED = "case C-2: model upper.stl: step label: LABEL_FAILED"


class TestACaseDroppedBeforeItsBuildSplits:
    """The halves hold only the cases left; the dropped one is failed, not batched again."""

    def test_the_dropped_file_fails_once_and_the_other_cases_print(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        for n, case in enumerate(("C-1", "C-2", "C-3")):
            drop(tmp_path, f"{case}/upper.stl", tetra_stl_bytes(n))

        def drop_c2_from_the_whole_build(build: BuildPlan) -> list[tuple[Path, str]]:
            return [(m.path, DROPPED) for m in build.models
                    if m.case_id == "C-2" and "." not in build.name]

        script.split_first = True
        script.drop = drop_c2_from_the_whole_build
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        jobs = {j.case_id: j for j in store.list_jobs()}
        assert (jobs["C-2"].state, jobs["C-2"].reason) == (JobState.FAILED, DROPPED)
        assert {jobs[c].state for c in ("C-1", "C-3")} == {JobState.PRINT_SENT}
        assert len(fleet_jobs(script.fleet_dir)) == 2
        inbox = tmp_path / "inbox"
        assert names(inbox / "failed" / "C-2") == ["upper.stl", "upper.stl.error.txt"]
        note = (inbox / "failed" / "C-2" / "upper.stl.error.txt").read_text(encoding="utf-8")
        assert note.startswith(f"What failed: {DROPPED}\n")
        assert names(inbox / "processing") == []
        parent, *halves = store.list_builds()
        assert parent.state is JobState.CANCELLED
        assert [len(h.job_ids) for h in halves] == [1, 1]
