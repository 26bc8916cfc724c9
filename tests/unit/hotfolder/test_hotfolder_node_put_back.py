"""A file whose move into failed/ a farm node named in the store and never made, against a
file a user put back from failed/ to drop it again (a real PostgreSQL store, real nodes).

The store records a move into done/ or failed/ as made once the file is there. A running
node taking the first kind over from a gone node finishes the move under the gone node's
decision (no second job); the second kind is a new drop, and a node's start leaves it in
the inbox for its scan instead of moving it back to failed/.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.intake import Attachment
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_recipe,
)
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.postgres import PostgresJobStore

_CONTENT = tetra_stl_bytes(17)
WAIT_S = 30.0
#: A sidecar the intake refuses (a field no recipe knows): its model goes to failed/ with it.
_BAD_SIDECAR = "no_such_field: 1\n"


class Killed(BaseException):
    """The process died here: nothing after this point of the intake runs."""


class DiesMovingToFailed(Intake):
    """The intake, killed right before a file moves into failed/ (its note written, the
    store naming its new place there)."""

    def _move(self, job: Job, source: Path, target: Path,
              attachments: Sequence[Attachment]) -> None:
        if "failed" in target.parts:
            raise Killed(target)
        super()._move(job, source, target, attachments)


def _inbox(tmp_path: Path) -> InboxSettings:
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
    inbox.path.mkdir(parents=True)
    return inbox


def _take(intake: Intake, node: NodeRole, inbox: InboxSettings, name: str) -> None:
    model = inbox.path / name
    model.write_bytes(_CONTENT)
    drop = Drop(inbox, model, "hot", False, models=(model,))
    assert node.claim_drop(drop)
    intake.take(drop)


class TestAMoveToFailedAGoneNodeNamedAndNeverMade:
    """A running node that takes the file over finishes the gone node's move: the copy is
    in failed/ once, under its one job (a skipped duplicate, or a file refused for its
    sidecar, which goes with it)."""

    @pytest.mark.parametrize("refused", [False, True], ids=["duplicate", "bad sidecar"])
    def test_the_copy_goes_to_failed_under_its_one_job(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
        refused: bool,
    ) -> None:
        gone, running = nodes
        inbox = _inbox(tmp_path)
        if refused:
            (inbox.path / "copy.yaml").write_text(_BAD_SIDECAR, encoding="utf-8")
        else:
            _take(Intake(gone.store, [inbox]), gone, inbox, "bracket.stl")
        daemon = make_daemon(tmp_path, running.store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path), node=running,
                             hot={"rescan_interval_s": 0.2})
        with running_daemon(daemon):
            # The gone node claims the copy before the running one can see it, decides it a
            # duplicate, names its place in failed/ and dies before the move; then it stops
            # for good (its claims are free).
            staged = tmp_path / "copy.stl"
            staged.write_bytes(_CONTENT)
            assert gone.store.claim_inbox_file("pc-a", inbox.path / "copy.stl",
                                               content_hash(staged))
            with contextlib.suppress(Killed):
                _take(DiesMovingToFailed(gone.store, [inbox]), gone, inbox, "copy.stl")
            assert (inbox.path / "copy.stl").exists()  # the move never happened
            gone.store.node_stopped("pc-a")
            # Settled: out of the inbox, and a copy model file in failed/ (under any name).
            wait_for(lambda: not (inbox.path / "copy.stl").exists() and any(
                n.startswith("copy") and n.endswith(".stl")
                for n in names(inbox.path / "failed")), WAIT_S, what="the copy settled")

        assert names(inbox.path / "failed") == ["copy.stl", "copy.stl.error.txt"] + (
            ["copy.yaml"] if refused else [])
        assert [p.name for p in inbox.path.iterdir() if p.is_file()] == []  # none left
        copies = [j for j in plain_store.list_jobs() if j.original_name == "copy.stl"]
        assert [(j.state, j.source_path) for j in copies] == [
            (JobState.FAILED if refused else JobState.DUPLICATE_SKIPPED,
             inbox.path / "failed" / "copy.stl")]


def _refused_then_put_back(tmp_path: Path, node: NodeRole) -> Path:
    """``p.stl`` dropped with a sidecar the node refuses (both to failed/, with a note),
    then put back by a user, alone, to be dropped again; the inbox."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "p.yaml").write_text(_BAD_SIDECAR, encoding="utf-8")
    (inbox / "p.stl").write_bytes(_CONTENT)
    run_daemon_once(make_daemon(tmp_path, node.store, Script(fleet_dir=tmp_path / "fleet"),
                                write_recipe(tmp_path), node=node))
    assert names(inbox / "failed") == ["p.stl", "p.stl.error.txt", "p.yaml"]
    shutil.move(inbox / "failed" / "p.stl", inbox / "p.stl")
    return inbox


class TestAFilePutBackFromFailed:
    """A refused file a user put back from failed/ (its sidecar left there) is a new drop:
    printed once, in done/, under a second job; the first job's record stays as it was."""

    def test_a_nodes_start_leaves_it_to_be_taken_and_it_prints(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
    ) -> None:
        node = nodes[0]
        inbox = _refused_then_put_back(tmp_path, node)
        # The node's next start (a new daemon), then its scan.
        run_daemon_once(make_daemon(tmp_path, node.store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), node=node))
        assert "p.stl" in names(inbox / "done")
        assert names(inbox / "failed") == ["p.stl.error.txt", "p.yaml"]
        assert len(fleet_jobs(tmp_path / "fleet")) == 1
        jobs = sorted((j for j in plain_store.list_jobs() if j.original_name == "p.stl"),
                      key=lambda j: j.id)
        assert [(j.state, j.source_path) for j in jobs] == [
            (JobState.FAILED, inbox / "failed" / "p.stl"),
            (JobState.PRINT_SENT, inbox / "done" / "p.stl")]

    def test_a_running_node_takes_it_as_a_new_drop(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
    ) -> None:
        node = nodes[0]
        inbox = tmp_path / "inbox"
        daemon = make_daemon(tmp_path, node.store, Script(fleet_dir=tmp_path / "fleet"),
                             write_recipe(tmp_path), node=node)
        with running_daemon(daemon):
            inbox.mkdir(parents=True, exist_ok=True)
            (inbox / "p.yaml").write_text(_BAD_SIDECAR, encoding="utf-8")
            (inbox / "p.stl").write_bytes(_CONTENT)
            wait_for(lambda: (inbox / "failed" / "p.stl").exists(), WAIT_S,
                     what="the refused file in failed/")
            shutil.move(inbox / "failed" / "p.stl", inbox / "p.stl")
            wait_for(lambda: (inbox / "done" / "p.stl").exists()
                     or (inbox / "failed" / "p.stl").exists(), WAIT_S,
                     what="the put-back file settled")
        assert "p.stl" in names(inbox / "done")
        assert len(fleet_jobs(tmp_path / "fleet")) == 1

    def test_a_skipped_copy_put_back_once_its_original_was_cancelled_prints(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
    ) -> None:
        node = nodes[0]
        inbox = _inbox(tmp_path)
        intake = Intake(node.store, [inbox])
        _take(intake, node, inbox, "bracket.stl")
        _take(intake, node, inbox, "copy.stl")  # skipped: the bracket is being prepared
        assert names(inbox.path / "failed") == ["copy.stl", "copy.stl.error.txt"]
        (original,) = [j for j in plain_store.list_jobs() if j.original_name == "bracket.stl"]
        plain_store.transition(original.id, JobState.CANCELLED, "cancelled by the user")
        shutil.move(inbox.path / "failed" / "copy.stl", inbox.path / "copy.stl")
        # The node's start, then its scan: the copy is no one's duplicate now, and prints.
        run_daemon_once(make_daemon(tmp_path, node.store, Script(fleet_dir=tmp_path / "fleet"),
                                    write_recipe(tmp_path), node=node))
        assert "copy.stl" in names(inbox.path / "done")
        assert len(fleet_jobs(tmp_path / "fleet")) == 1
        copies = sorted((j for j in plain_store.list_jobs() if j.original_name == "copy.stl"),
                        key=lambda j: j.id)
        assert [j.state for j in copies] == [JobState.DUPLICATE_SKIPPED, JobState.PRINT_SENT]
