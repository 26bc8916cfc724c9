"""A node taking over a gone node's unbatched jobs (hotfolder/nodes.py ``NodeRecovery``, real
PostgreSQL, real folders): only those of the inboxes it watches; the others keep their claims
for a node watching their inbox, and ``jobs`` says what they wait for."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline import cli
from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, Intake, JobPlace
from preform_pipeline.hotfolder.nodes import NodeRecovery, NodeRole
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.printing import PrintOwner
from preform_pipeline.settings.hotfolder import HotFolderSettings, InboxSettings
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.pgurl import PASSWORD_ENV
from tests.pg_cluster import PG_PASSWORD, PgCluster


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    return pg_cluster.create_database(f"orphans_{request.node.name[-24:].lower()}")


def _node(url: str, stores: list[NodeJobStore], name: str, *inboxes: Path,
          on_statement: Callable[[str], None] | None = None) -> NodeJobStore:
    """Node ``name`` registered as ``join_farm`` registers it: with the inboxes it watches."""
    store = NodeJobStore(url, node_id=name, password=PG_PASSWORD, on_statement=on_statement)
    store.register_node(NodeInfo(id=name, host=name, version="0.1.0",
                                 inboxes=tuple(str(i) for i in inboxes)))
    stores.append(store)
    return store


def _recovery(store: NodeJobStore, *inboxes: Path) -> NodeRecovery:
    """The node's recovery, wired as the daemon wires it, for a node watching ``inboxes``."""
    hot = HotFolderSettings(inboxes=tuple(InboxSettings(path=i) for i in inboxes))
    intake = Intake(store, hot.inboxes)
    return NodeRole(store).recovery(
        intake, OutcomeFolders(store, intake, hot), PrintOwner(store), ManualClock(),
        give_back=lambda _items, _held: None, wake=lambda: None)


def _taken(store: NodeJobStore, inbox: Path, name: str) -> Job:
    """A file of ``inbox`` this node claimed and moved into processing/, not batched yet."""
    (inbox / "processing").mkdir(parents=True, exist_ok=True)
    source = inbox / "processing" / name
    source.write_bytes(b"solid " + name.encode())
    digest = f"sha256:{name}"
    assert store.claim_inbox_file(store.node_id, inbox / name, digest)
    place = JobPlace(inbox, name, previous=inbox / name)
    return store.create_job(recipe="hot", source_path=source, content_hash=digest,
                            state=JobState.PROCESSING, fields={HOTFOLDER_FIELD: place.to_json()})


def _one_of_each(
    url: str, stores: list[NodeJobStore], tmp_path: Path, name: str,
) -> tuple[Path, Path, NodeJobStore, Job, Job]:
    """Inboxes a and b; node ``name``, watching both, took one file of each (unbatched)."""
    a, b = tmp_path / "inbox-a", tmp_path / "inbox-b"
    took = _node(url, stores, name, a, b)
    return a, b, took, _taken(took, a, "upper.stl"), _taken(took, b, "lower.stl")


def _jobs(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["jobs", "--store", url], out, err) == 0, err.getvalue()
    return out.getvalue()


class TestAGoneNodesUnbatchedJobs:
    """A node takes over only the gone node's jobs of the inboxes it watches."""

    def test_each_goes_to_a_node_watching_its_inbox_and_jobs_says_what_waits(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        a, b, gone, of_a, of_b = _one_of_each(url, stores, tmp_path, "pc-gone")
        gone.node_stopped("pc-gone")
        node_b = _node(url, stores, "pc-b", b)

        resumed = _recovery(node_b, b).adopt()

        assert [j.id for j in resumed] == [of_b.id]
        claims = {path: holder for path, _, holder in node_b.inbox_claims()}
        assert claims == {str(a / "upper.stl"): "pc-gone", str(b / "lower.stl"): "pc-b"}
        assert node_b.get_job(of_a.id).state is JobState.PROCESSING
        waits = (f"waits for a hot folder watching {a}: no running node watches it "
                 "(`nodes` lists them)")
        listed = {job.job_key: line for line in _jobs(url, monkeypatch).splitlines()
                  for job in (of_a, of_b) if job.job_key in line}
        assert listed[of_a.job_key].endswith(f"{waits}: created"), listed
        assert listed[of_b.job_key].endswith(f"{of_b.job_key}  created"), listed

        node_a = _node(url, stores, "pc-a", a)  # a node watching inbox-a starts
        assert "waits for a hot folder" not in _jobs(url, monkeypatch)
        assert [j.id for j in _recovery(node_a, a).adopt()] == [of_a.id]


class TestARestartedNodesJobsOfAnInboxItNoLongerWatches:
    """A node restarted without an inbox hands back its claims of that inbox's waiting jobs."""

    def test_the_node_watching_it_adopts_them_and_jobs_says_when_none_runs(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        a, b, _, of_a, of_b = _one_of_each(url, stores, tmp_path, "pc-a")
        restarted = _node(url, stores, "pc-a", a)  # its settings no longer name inbox-b
        recovery = _recovery(restarted, a)

        with capture_logs() as logs:
            resumed = recovery.adopt()

        assert [j.id for j in resumed] == [of_a.id]
        handed = [e for e in logs if e["event"] == "orphan_jobs_handed_back"]
        assert [(e["node"], e["jobs"]) for e in handed] == [("pc-a", [of_b.id])]
        claims = {path: holder for path, _, holder in restarted.inbox_claims()}
        assert claims == {str(a / "upper.stl"): "pc-a", str(b / "lower.stl"): None}
        waits = (f"waits for a hot folder watching {b}: no running node watches it "
                 "(`nodes` lists them)")
        assert waits in _jobs(url, monkeypatch)

        node_b = _node(url, stores, "pc-b", b)  # a node watching inbox-b starts
        assert "waits for a hot folder" not in _jobs(url, monkeypatch)
        assert recovery.adopt() == []  # the hander's later passes leave it
        assert [j.id for j in _recovery(node_b, b).adopt()] == [of_b.id]
        assert {h for _, _, h in node_b.inbox_claims()} == {"pc-a", "pc-b"}
        assert node_b.get_job(of_b.id).state is JobState.PROCESSING


class TestJobsLeftForAnotherNode:
    """The jobs a node leaves for another are read in one statement on each pass."""

    def test_a_pass_reads_them_at_once(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path,
    ) -> None:
        a, b = tmp_path / "inbox-a", tmp_path / "inbox-b"
        gone = _node(url, stores, "pc-gone", a)
        left = [_taken(gone, a, f"part-{n}.stl").id for n in range(3)]
        gone.node_stopped("pc-gone")
        statements: list[str] = []
        node_b = _node(url, stores, "pc-b", b, on_statement=statements.append)
        recovery = _recovery(node_b, b)

        reads = []
        for _ in range(2):  # the start's pass, then a maintenance pass
            statements.clear()
            assert recovery.adopt() == []
            reads.append([s for s in statements if s.startswith("SELECT * FROM jobs WHERE")])
        # One read a pass: the start lists its previous life's jobs with gone nodes', once.
        assert [len(r) for r in reads] == [1, 1], reads
        assert [j.id for j in node_b.list_jobs(state=JobState.PROCESSING)] == left
