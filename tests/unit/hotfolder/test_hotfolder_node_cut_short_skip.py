"""A farm node (a real PostgreSQL store) killed while moving a skipped duplicate to failed/:
its next life finishes that move, as a single daemon's start does.

The duplicate was decided (DUPLICATE_SKIPPED), its note written and the store told where the
file goes; the node died before the file moved. A farm node's start has no pass over such
moves, so its scan took the file from the inbox again as a new drop: a second job for one
file, which landed as ``copy (2).stl`` beside the first job's note, while the first job named
a place with no file (found by session 22's kill loop over a farm). The intakes below die at
that very step, or earlier, right after the job was decided (the seams), as SIGKILL would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.intake import Attachment
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import (
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_recipe,
)
from preform_pipeline.plan.builds import Rejection
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.postgres import PostgresJobStore

_CONTENT = tetra_stl_bytes(13)


class Killed(BaseException):
    """The process died here: nothing after this point of the intake runs."""


class DiesMovingToFailed(Intake):
    """The intake, killed right before a file moves into failed/ (its note written, the
    store naming its new place)."""

    def _move(self, job: Job, source: Path, target: Path,
              attachments: Sequence[Attachment]) -> None:
        if "failed" in target.parts:
            raise Killed(target)
        super()._move(job, source, target, attachments)


class DiesAfterDeciding(Intake):
    """The intake, killed right after the copy was decided a duplicate (no note yet, the
    store still naming its place in the inbox)."""

    def _duplicate_note(self, job: Job, duplicate: Job) -> tuple[Job, Rejection]:
        raise Killed(job.job_key)


def _take(intake: Intake, node: NodeRole, inbox: InboxSettings, name: str) -> None:
    model = inbox.path / name
    model.write_bytes(_CONTENT)
    drop = Drop(inbox, model, "hot", False, models=(model,))
    assert node.claim_drop(drop)
    intake.take(drop)


class TestASkippedDuplicateCutShortOnAFarmNode:
    """The node's next life moves the skipped copy to failed/ under its one job."""

    @pytest.mark.parametrize("dying", [DiesMovingToFailed, DiesAfterDeciding],
                             ids=["before the move", "before the note"])
    def test_the_copy_is_in_failed_once_under_its_own_name_with_one_job(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
        dying: type[Intake],
    ) -> None:
        node = nodes[0]
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
        inbox.path.mkdir(parents=True)
        _take(Intake(node.store, [inbox]), node, inbox, "bracket.stl")
        with contextlib.suppress(Killed):
            _take(dying(node.store, [inbox]), node, inbox, "copy.stl")
        assert (inbox.path / "copy.stl").exists()  # the move never happened

        run_daemon_once(make_daemon(tmp_path, node.store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), node=node))

        assert names(inbox.path / "failed") == ["copy.stl", "copy.stl.error.txt"]
        assert (inbox.path / "failed" / "copy.stl").read_bytes() == _CONTENT
        copies = [j for j in plain_store.list_jobs() if j.original_name == "copy.stl"]
        assert [(j.state, j.source_path) for j in copies] == [
            (JobState.DUPLICATE_SKIPPED, inbox.path / "failed" / "copy.stl")]


class TestASkippedDuplicateLeftByAGoneNode:
    """A running node that takes the file over from a gone node settles it under the gone
    node's decision, with no second job."""

    def test_the_copy_goes_to_failed_under_its_one_job(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
    ) -> None:
        gone, running = nodes
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
        inbox.path.mkdir(parents=True)
        _take(Intake(gone.store, [inbox]), gone, inbox, "bracket.stl")
        daemon = make_daemon(tmp_path, running.store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path), node=running,
                             hot={"rescan_interval_s": 0.2})
        with running_daemon(daemon):
            # The gone node claims the copy before the running one can see it, takes it and
            # dies right after deciding; then it stops for good (its claims are free).
            staged = tmp_path / "copy.stl"
            staged.write_bytes(_CONTENT)
            assert gone.store.claim_inbox_file("pc-a", inbox.path / "copy.stl",
                                               content_hash(staged))
            with contextlib.suppress(Killed):
                _take(DiesAfterDeciding(gone.store, [inbox]), gone, inbox, "copy.stl")
            gone.store.node_stopped("pc-a")
            wait_for(lambda: (inbox.path / "failed" / "copy.stl.error.txt").exists(), 30,
                     what="the copy settled")

        assert names(inbox.path / "failed") == ["copy.stl", "copy.stl.error.txt"]
        copies = [j for j in plain_store.list_jobs() if j.original_name == "copy.stl"]
        assert [(j.state, j.source_path) for j in copies] == [
            (JobState.DUPLICATE_SKIPPED, inbox.path / "failed" / "copy.stl")]
