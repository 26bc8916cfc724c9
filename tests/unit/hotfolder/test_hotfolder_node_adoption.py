"""A farm node adopting a gone node's jobs (hotfolder/nodes.py, a real PostgreSQL store) leaves
a ``run``'s job of the same content to that run.

Inbox claims stay in the store and are matched to jobs by content, so a ``run --reprint`` of a
file a node once took has a job of a claim's content. When that node is gone (or is this node,
restarting), the node adopting its claims must not take the run's job up (print the run's
model itself, or fail it as lost), as a daemon's start on a single store does not
(docs/hotfolder.md); and the run's job must not hide the node's own orphan of that content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Script, claimed_by_a_run, make_daemon, run_daemon_once

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.settings.hotfolder import DuplicatePolicy, InboxSettings
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster
from tests.two_nodes import two_nodes

#: Both the node's drop and the run's model: one content.
_CONTENT = tetra_stl_bytes(7)


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    # One database per test: the ids of two tests' parameters end alike.
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    return pg_cluster.create_database(f"adopt_{digest}")


@pytest.fixture
def nodes(url: str) -> Iterator[tuple[NodeRole, NodeRole]]:
    yield from two_nodes(url)


@pytest.fixture
def run_store(url: str) -> Iterator[PostgresJobStore]:
    """The store as a ``run`` opens it: the same database, no node."""
    store = PostgresJobStore(url, password=PG_PASSWORD)
    yield store
    store.close()


#: Who took the drop from the shared inbox: node ``pc-a``, since stopped, or ``pc-b`` (the
#: adopting node) in its previous life.
CLAIMANTS = ["a stopped node", "its own previous life"]


def _taker(nodes: tuple[NodeRole, NodeRole], claimant: str) -> NodeRole:
    return nodes[0] if claimant == CLAIMANTS[0] else nodes[1]


def _gone(taker: NodeRole) -> None:
    """The taker goes: ``pc-a`` stops (its claims are free at once); ``pc-b``, to start again,
    has nothing to do (it adopts its own claims when it starts)."""
    if taker.store.node_id == "pc-a":
        taker.store.node_stopped("pc-a")


def _taken_by(node: NodeRole, tmp_path: Path, *, duplicates: DuplicatePolicy = "skip") -> Job:
    """``node`` claims a drop of the shared inbox and takes it into processing/ (not yet
    batched), as its daemon does."""
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
    model = inbox.path / "bracket.stl"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(_CONTENT)
    drop = Drop(inbox, model, "hot", False, models=(model,))
    assert node.claim_drop(drop)
    (job,) = Intake(node.store, [inbox], duplicates=duplicates).take(drop).taken
    assert job.state is JobState.PROCESSING
    return job


def _claimed_by_a_live_run(store: PostgresJobStore, tmp_path: Path) -> Job:
    """The same content claimed by a live ``run --reprint``, still planning."""
    model = tmp_path / "models" / "bracket.stl"
    model.parent.mkdir()
    model.write_bytes(_CONTENT)
    return claimed_by_a_run(store, model, reprint=True)


def _daemon_once(node: NodeRole, tmp_path: Path, *, duplicates: DuplicatePolicy = "skip") -> None:
    """One start of ``node``'s daemon: its recovery adopts, what it took up is printed."""
    script = Script(fleet_dir=tmp_path / "fleet")
    run_daemon_once(make_daemon(tmp_path, node.store, script, write_recipe(tmp_path),
                                duplicates=duplicates, node=node))


def _assert_untouched(store: PostgresJobStore, run_job: Job) -> None:
    """The run's job is as the run left it: claimed, in no build, its file where it was."""
    assert [(t.to_state, t.reason) for t in store.history(run_job.id)] == [
        (JobState.PROCESSING, "taken by run run-1")]
    after = store.get_job(run_job.id)
    assert (after.state, after.build_id, after.source_path) == (
        JobState.PROCESSING, None, run_job.source_path)
    assert run_job.source_path.read_bytes() == _CONTENT


def _printed_alone(store: PostgresJobStore, job: Job, fleet: Path) -> None:
    """``job`` was printed in a build of its own, and that is the only print."""
    after = store.get_job(job.id)
    assert after.state is JobState.PRINT_SENT and after.build_id is not None
    assert [j.id for j in store.build_members(after.build_id)] == [job.id]
    assert [p["job_id"] for p in fleet_jobs(fleet)] == [
        store.get_build(after.build_id).print_job_id]


class TestARunReprintingAFileANodeOncePrinted:
    """The node's claim of a file it printed stays; a ``run --reprint`` of that file, still
    planning, is not printed by the node that adopts the claim."""

    @pytest.mark.parametrize("claimant", CLAIMANTS)
    def test_the_adopting_node_prints_nothing_and_the_run_s_job_is_untouched(
        self, nodes: tuple[NodeRole, NodeRole], run_store: PostgresJobStore, tmp_path: Path,
        claimant: str,
    ) -> None:
        taker = _taker(nodes, claimant)
        printed = _taken_by(taker, tmp_path)
        _daemon_once(taker, tmp_path)
        _printed_alone(run_store, printed, tmp_path / "fleet")
        _gone(taker)
        run_job = _claimed_by_a_live_run(run_store, tmp_path)

        _daemon_once(nodes[1], tmp_path)

        _assert_untouched(run_store, run_job)
        _printed_alone(run_store, printed, tmp_path / "fleet")  # still the one print


class TestARunAndANodesOrphanOfOneContent:
    """A run claims a file and the same content is dropped (``duplicates: print``) and taken
    by a node that goes before batching it: the adopting node prints the orphan, once, and
    leaves the run's job alone."""

    @pytest.mark.parametrize("claimant", CLAIMANTS)
    def test_the_orphan_is_printed_alone_and_the_run_s_job_is_untouched(
        self, nodes: tuple[NodeRole, NodeRole], run_store: PostgresJobStore, tmp_path: Path,
        claimant: str,
    ) -> None:
        taker = _taker(nodes, claimant)
        run_job = _claimed_by_a_live_run(run_store, tmp_path)
        orphan = _taken_by(taker, tmp_path, duplicates="print")
        _gone(taker)

        _daemon_once(nodes[1], tmp_path, duplicates="print")

        _assert_untouched(run_store, run_job)
        _printed_alone(run_store, orphan, tmp_path / "fleet")
