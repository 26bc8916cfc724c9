"""A farm node adopting a gone node's jobs (hotfolder/nodes.py, a real PostgreSQL store) takes
up exactly the jobs whose own inbox claims it adopts.

Inbox claims stay in the store, and a ``run --reprint`` of a file a node once took, or a file
of the same content another node took (``duplicates: print``), has a job of a claim's content.
When that node is gone (or is this node, restarting), the node adopting its claims must not
take the run's job up (print the run's model itself, or fail it as lost), as a daemon's start
on a single store does not (docs/hotfolder.md), nor a live node's job; and neither may hide
the node's own orphan of that content. A case folder, claimed as a whole under one hash over
its files, is adopted with its claim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Script, claimed_by_a_run, make_daemon, names, run_daemon_once

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, write_recipe
from preform_pipeline.settings.hotfolder import DuplicatePolicy, InboxSettings
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.postgres import PostgresJobStore
from tests.two_nodes import farm_node

#: Both the node's drop and the run's model: one content.
_CONTENT = tetra_stl_bytes(7)


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


def _taken_by(node: NodeRole, tmp_path: Path, *, duplicates: DuplicatePolicy = "skip",
              name: str = "bracket.stl") -> Job:
    """``node`` claims a drop of the shared inbox (``name``, of the one content) and takes it
    into processing/ (not yet batched), as its daemon does."""
    inbox = _inbox(tmp_path)
    model = inbox.path / name
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(_CONTENT)
    (job,) = _take(node, Drop(inbox, model, "hot", False, models=(model,)), duplicates)
    return job


def _inbox(tmp_path: Path) -> InboxSettings:
    return InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")


def _take(node: NodeRole, drop: Drop, duplicates: DuplicatePolicy = "skip") -> tuple[Job, ...]:
    assert node.claim_drop(drop)
    taken = Intake(node.store, [drop.inbox], duplicates=duplicates).take(drop).taken
    assert [job.state for job in taken] == [JobState.PROCESSING] * len(drop.models)
    return taken


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
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
        claimant: str,
    ) -> None:
        taker = _taker(nodes, claimant)
        printed = _taken_by(taker, tmp_path)
        _daemon_once(taker, tmp_path)
        _printed_alone(plain_store, printed, tmp_path / "fleet")
        _gone(taker)
        run_job = _claimed_by_a_live_run(plain_store, tmp_path)

        _daemon_once(nodes[1], tmp_path)

        _assert_untouched(plain_store, run_job)
        _printed_alone(plain_store, printed, tmp_path / "fleet")  # still the one print


class TestARunAndANodesOrphanOfOneContent:
    """A run claims a file and the same content is dropped (``duplicates: print``) and taken
    by a node that goes before batching it: the adopting node prints the orphan, once, and
    leaves the run's job alone."""

    @pytest.mark.parametrize("claimant", CLAIMANTS)
    def test_the_orphan_is_printed_alone_and_the_run_s_job_is_untouched(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
        claimant: str,
    ) -> None:
        taker = _taker(nodes, claimant)
        run_job = _claimed_by_a_live_run(plain_store, tmp_path)
        orphan = _taken_by(taker, tmp_path, duplicates="print")
        _gone(taker)

        _daemon_once(nodes[1], tmp_path, duplicates="print")

        _assert_untouched(plain_store, run_job)
        _printed_alone(plain_store, orphan, tmp_path / "fleet")


@pytest.fixture
def farm(url: str) -> Iterator[tuple[NodeRole, ...]]:
    """Nodes ``pc-a``, ``pc-b`` and ``pc-c`` of one farm."""
    roles = tuple(farm_node(url, name) for name in ("pc-a", "pc-b", "pc-c"))
    yield roles
    for role in roles:
        role.store.close()


def _each_printed_alone(store: PostgresJobStore, jobs: list[Job], fleet: Path) -> None:
    """Each of ``jobs`` was printed in a build of its own, and those are the only prints."""
    builds = []
    for job in jobs:
        after = store.get_job(job.id)
        assert after.state is JobState.PRINT_SENT and after.build_id is not None
        assert [j.id for j in store.build_members(after.build_id)] == [job.id]
        builds.append(store.get_build(after.build_id).print_job_id)
    assert sorted(p["job_id"] for p in fleet_jobs(fleet)) == sorted(builds)


class TestALiveNodesJobOfTheGoneNodesContent:
    """Of two files of one content (``duplicates: print``), the gone node's is adopted alone."""

    @pytest.mark.parametrize("claimant", CLAIMANTS)
    def test_the_live_node_s_job_is_left_to_it_and_each_is_printed_once(
        self, farm: tuple[NodeRole, ...], plain_store: PostgresJobStore, tmp_path: Path,
        claimant: str,
    ) -> None:
        a, b, c = farm
        # pc-b adopts; the gone node is pc-a (stopped, pc-c lives) or pc-b's previous life
        # (pc-a lives).
        gone, live = (a, c) if claimant == CLAIMANTS[0] else (b, a)
        orphan = _taken_by(gone, tmp_path, duplicates="print")
        theirs = _taken_by(live, tmp_path, duplicates="print", name="bracket-copy.stl")
        their_history = plain_store.history(theirs.id)
        _gone(gone)

        _daemon_once(b, tmp_path, duplicates="print")

        _printed_alone(plain_store, orphan, tmp_path / "fleet")
        assert plain_store.history(theirs.id) == their_history
        after = plain_store.get_job(theirs.id)
        assert (after.state, after.build_id) == (JobState.PROCESSING, None)
        assert after.source_path.read_bytes() == _CONTENT

        _daemon_once(live, tmp_path, duplicates="print")  # the live node's next start

        _each_printed_alone(plain_store, [orphan, theirs], tmp_path / "fleet")


class TestAGoneNodesCaseFolder:
    """A case folder the gone node took but did not batch is adopted and printed once."""

    @pytest.mark.parametrize("claimant", CLAIMANTS)
    def test_the_case_is_printed_once_and_settled_in_done(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
        claimant: str,
    ) -> None:
        taker = _taker(nodes, claimant)
        inbox = _inbox(tmp_path)
        case = inbox.path / "C-1042"
        case.mkdir(parents=True)
        models = (case / "lower.stl", case / "upper.stl")
        for seed, model in enumerate(models):
            model.write_bytes(tetra_stl_bytes(seed + 1))
        jobs = _take(taker, Drop(inbox, case, "hot", True, models=models))
        _gone(taker)

        _daemon_once(nodes[1], tmp_path)

        after = [plain_store.get_job(j.id) for j in jobs]
        assert {j.state for j in after} == {JobState.PRINT_SENT}
        builds = {plain_store.get_build(j.build_id) for j in after if j.build_id is not None}
        assert Counter(m.id for b in builds for m in plain_store.build_members(b.id)) == Counter(
            {j.id: 1 for j in jobs})
        assert sorted(p["job_id"] for p in fleet_jobs(tmp_path / "fleet")) == sorted(
            b.print_job_id for b in builds)
        assert names(inbox.path) == [
            "done/C-1042/lower.stl", "done/C-1042/lower.stl.report.json",
            "done/C-1042/upper.stl", "done/C-1042/upper.stl.report.json"]
