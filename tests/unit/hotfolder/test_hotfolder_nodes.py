"""A daemon's part in a farm (hotfolder/nodes.py) against a real PostgreSQL: claiming drops of a
shared inbox, and what the sweep of processing/ leaves to other nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.hotfolder.intake import Drop
from preform_pipeline.hotfolder.nodes import NodeRole, drop_hash
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import JobState
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.leases import NodeInfo
from tests.pg_cluster import PG_PASSWORD, PgCluster


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    return pg_cluster.create_database(f"nodes_{request.node.name[-24:].lower()}")


@pytest.fixture
def roles(url: str) -> Iterator[list[NodeRole]]:
    """Two nodes' roles on the same store: ``pc-a`` and ``pc-b``."""
    stores = []
    for name in ("pc-a", "pc-b"):
        store = NodeJobStore(url, node_id=name, password=PG_PASSWORD)
        store.register_node(NodeInfo(id=name, host=name, version="0.1.0"))
        stores.append(store)
    yield [NodeRole(s) for s in stores]
    for store in stores:
        store.close()


def _drop(inbox: Path, name: str, seed: int) -> Drop:
    path = inbox / name
    path.write_bytes(tetra_stl_bytes(seed))
    return Drop(InboxSettings(path=inbox), path, "hot", False, models=(path,))


class TestDropClaims:
    """A drop of a shared inbox is taken by the node whose claim came first."""

    def test_the_first_claim_takes_it_and_the_other_node_leaves_it(
        self, roles: list[NodeRole], tmp_path: Path
    ) -> None:
        a, b = roles
        drop = _drop(tmp_path, "m.stl", 1)
        assert a.claim_drop(drop)
        assert not b.claim_drop(drop)
        assert a.claim_drop(drop)  # its own retry, after a failed take

    def test_a_drop_moved_away_meanwhile_is_another_node_s(
        self, roles: list[NodeRole], tmp_path: Path
    ) -> None:
        drop = _drop(tmp_path, "m.stl", 1)
        drop.root.unlink()
        assert not roles[1].claim_drop(drop)

    def test_a_file_is_claimed_under_its_own_content_hash_a_case_under_all_of_its_files(
        self, tmp_path: Path
    ) -> None:
        single = _drop(tmp_path, "m.stl", 1)
        assert drop_hash(single) == content_hash(single.root)
        case = tmp_path / "case"
        case.mkdir()
        models = tuple(_drop(case, f"{n}.stl", n).root for n in (1, 2))
        folder = Drop(InboxSettings(path=tmp_path), case, "hot", True, models=models)
        before = drop_hash(folder)
        models[1].write_bytes(tetra_stl_bytes(3))
        assert drop_hash(folder) != before


class TestTheSweepLeavesOtherNodesBuilds:
    """processing/ files of a build another node holds or just moved are that node's."""

    def test_a_held_build_is_active_and_a_long_settled_one_is_not(
        self, roles: list[NodeRole]
    ) -> None:
        a, b = roles
        job = a.store.create_job(recipe="hot", source_path="/nas/processing/k/m.stl",
                                 state=JobState.PROCESSING)
        build = a.store.create_build(recipe="hot", job_ids=[job.id])
        assert build.id in b.active_builds()
        assert not b.active_builds().running(build.id)
        b.store.lease_s = 0.0  # "just moved" no longer covers it
        a.store.transition_build(build.id, JobState.PREPARING, "preparing")
        a.store.transition_build(build.id, JobState.FAILED, "refused")  # released
        assert build.id not in b.active_builds()
