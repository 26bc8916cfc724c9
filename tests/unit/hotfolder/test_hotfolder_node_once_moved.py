"""A ``--once`` run of a farm node (hotfolder/nodes.py, a real PostgreSQL store) finishes the
files its sweep of processing/ left only because their build was moved moments ago, and says
what it leaves to another node.

A node's sweep leaves the files of a build moved less than a lease ago (its mover may be
settling them right now), and a ``--once`` run sweeps at its start: a build finished moments
before the run (session 25's kill -9 loops, seed 804) kept its files in processing/ after a
clean exit, unsaid. The run now waits out the rest of that grace and settles them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.postgres import PostgresJobStore
from tests.two_nodes import LEASE_S

#: The lease (and so the grace after a build's last move) of the node under test: short, so
#: the wait is short.
_GRACE_S = 4.0


def _taken_and_finished(node: NodeRole, store: PostgresJobStore, tmp_path: Path) -> Build:
    """``node`` took a drop into processing/; its build was sent and has just finished (moved
    by ``store``: no node holds it now)."""
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
    model = inbox.path / "bracket.stl"
    model.parent.mkdir(parents=True)
    model.write_bytes(tetra_stl_bytes(3))
    drop = Drop(inbox, model, "hot", False, models=(model,))
    assert node.claim_drop(drop)
    (job,) = Intake(node.store, [inbox]).take(drop).taken
    build = store.create_build(recipe="hot", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED, JobState.PRINT_SENDING,
                  JobState.PRINT_SENT, JobState.FINISHED):
        store.transition_build(build.id, state, state.value)
    return build


def _in_processing(tmp_path: Path) -> list[str]:
    return names(tmp_path / "inbox" / "processing")


def _run_once(node: NodeRole, tmp_path: Path) -> tuple[list[str], list[str]]:
    """``node``'s daemon runs ``--once``: the lines it says, and its log events."""
    daemon = make_daemon(tmp_path, node.store, Script(fleet_dir=tmp_path / "fleet"),
                         write_recipe(tmp_path), node=node)
    lines: list[str] = []
    daemon.notice = lines.append
    with capture_logs() as logs:
        assert daemon.run(once=True) == 0
    return lines, [e["event"] for e in logs]


class TestABuildFinishedMomentsBeforeTheRun:
    """Its files wait out the grace and go to done/; the run says it waited."""

    def test_the_run_waits_for_the_grace_and_settles_the_files(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
    ) -> None:
        b = nodes[1]
        b.store.lease_s = _GRACE_S
        build = _taken_and_finished(b, plain_store, tmp_path)
        (job,) = plain_store.build_members(build.id)
        assert _in_processing(tmp_path) == [f"{job.job_key}/bracket.stl"]

        lines, events = _run_once(b, tmp_path)

        assert _in_processing(tmp_path) == []
        assert "bracket.stl" in names(tmp_path / "inbox" / "done")
        (line,) = lines
        assert line.startswith("waiting up to ")
        assert f"for build {build.id}'s files in processing/: moved " in line
        assert "hotfolder_waiting_for_moved_builds" in events
        assert "hotfolder_left_in_processing" not in events


#: Why the build's files are another node's: it holds the build under a live lease, or the
#: drop was its own (its inbox claim, and it lives).
THEIRS = ["it holds the build", "it took the drop"]


class TestABuildOfAnotherLiveNode:
    """Its files are that node's to settle: the run does not wait, and says they stay."""

    @pytest.mark.parametrize("theirs", THEIRS)
    def test_the_run_leaves_the_files_and_says_the_next_run_settles_them(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
        theirs: str,
    ) -> None:
        a, b = nodes
        b.store.lease_s = _GRACE_S
        build = _taken_and_finished(a if theirs == THEIRS[1] else b, plain_store, tmp_path)
        (job,) = plain_store.build_members(build.id)
        if theirs == THEIRS[0]:
            lease = a.store.claim_build("pc-a", states={JobState.FINISHED}, lease_s=LEASE_S)
            assert lease is not None and lease.build_id == build.id

        lines, events = _run_once(b, tmp_path)

        assert _in_processing(tmp_path) == [f"{job.job_key}/bracket.stl"]
        assert lines == [
            f"build {build.id}'s files stay in processing/: another node (or run) holds or "
            "is settling them (or the store could not say); the next run settles them"]
        assert "hotfolder_waiting_for_moved_builds" not in events
        assert "hotfolder_left_in_processing" in events
