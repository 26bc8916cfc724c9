"""A live farm node recovering a gone node's build that holds part of a case folder (a split's
first half; hotfolder/nodes.py on a real PostgreSQL store): the case's claim moves to it with
the build, so it takes up the case's other files too, and the whole case is printed once.

A case is claimed whole, under its folder's path. Once the claim is the recovering node's, no
node adopts the case's other (unbatched) files as orphans: the recovering node must take them
up itself, or they would wait in processing/ until it restarts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from daemon_support import Script, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import JobState
from preform_pipeline.store.postgres import PostgresJobStore


class TestAGoneNodesHalfBuiltCase:
    """Node pc-a took a case and put one of its files in a build, then stopped; pc-b,
    already running, recovers the build on a later pass."""

    def test_the_whole_case_is_printed_once_and_settled_in_done(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path
    ) -> None:
        a, b = nodes
        recipe = write_recipe(tmp_path)
        daemon = make_daemon(tmp_path, b.store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                             node=b)
        daemon.recovery.recover()  # pc-b's start: nothing to adopt yet

        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        case = inbox.path / "C-1042"
        case.mkdir(parents=True)
        models = (case / "lower.stl", case / "upper.stl")
        for seed, model in enumerate(models):
            model.write_bytes(tetra_stl_bytes(seed + 1))
        drop = Drop(inbox, case, "hot", True, models=models)
        assert a.claim_drop(drop)
        lower, upper = Intake(a.store, [inbox]).take(drop).taken
        half = a.store.create_build(recipe=upper.recipe, job_ids=[upper.id])
        a.store.transition_build(half.id, JobState.PREPARING, "split half sent to the pool")
        a.store.node_stopped("pc-a")

        run_daemon_once(daemon)  # its next pass recovers the half

        after = [plain_store.get_job(j.id) for j in (lower, upper)]
        assert [j.state for j in after] == [JobState.PRINT_SENT] * 2
        builds = {plain_store.get_build(j.build_id) for j in after if j.build_id is not None}
        assert Counter(m.id for x in builds for m in plain_store.build_members(x.id)) == Counter(
            {lower.id: 1, upper.id: 1})
        assert sorted(p["job_id"] for p in fleet_jobs(tmp_path / "fleet")) == sorted(
            x.print_job_id for x in builds)
        assert names(inbox.path) == [
            "done/C-1042/lower.stl", "done/C-1042/lower.stl.report.json",
            "done/C-1042/upper.stl", "done/C-1042/upper.stl.report.json"]
