"""A stale node sending a waiting build from its saved .form (a real PostgreSQL store, two
nodes' stores, the real sender, an in-process simulator serving the Local API).

Node A's lease on a waiting build runs out while A is frozen (ended on the database's clock,
as time would) and node B claims the build. A then runs the dispatch pass it read before the
stall, or loses the lease while the server loads the build's .form. Either way A must leave no
scene on the server and send nothing; B sends the build once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.api import PreFormClient
from preform_pipeline.dispatch.sender import FormSender, PoolDevices
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.printing import PrintOwner
from preform_pipeline.simulator.protocol import ProgressCallback
from preform_pipeline.store import Build, JobState
from tests.pg_cluster import PgCluster
from tests.two_nodes import (
    lost_events,
    stall_until_taken_over,
    two_nodes,
    waiting_build,
)
from tests.unit.executor.executor_support import (
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    saved_form,
)

S = JobState


class StallDuring(ScriptedFaults):
    """Runs ``stall`` once while the server works on ``operation`` (before it answers)."""

    def __init__(self, operation: str) -> None:
        super().__init__()
        self.operation = operation
        self.stall: Callable[[], None] | None = None

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id == self.operation and self.stall is not None:
            stall, self.stall = self.stall, None
            stall()


@pytest.fixture
def url(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
    return pg_cluster.create_database(f"stale_send_{request.node.name[-24:].lower()}")


@pytest.fixture
def nodes(url: str) -> Iterator[tuple[NodeRole, NodeRole]]:
    yield from two_nodes(url)


@pytest.fixture
def faults() -> StallDuring:
    return StallDuring("load_form_file")


@pytest.fixture
def farm(tmp_path: Path, faults: StallDuring) -> Iterator[SimFarm]:
    """One simulated server (the pool's only one) with ``faults`` in its request path."""
    farm = SimFarm(tmp_path)
    farm.add(faults)
    yield farm
    farm.close()


@pytest.fixture
def pool(farm: SimFarm) -> Iterator[FakePool]:
    pool = FakePool([s.url for s in farm.servers])
    yield pool
    pool.close()



def _dispatcher(role: NodeRole, pool: FakePool) -> Dispatcher:
    owner = PrintOwner(role.store)
    return Dispatcher(role.store, PoolDevices(pool, request_timeout_s=WAIT_S),
                      FormSender(pool, owner, request_timeout_s=WAIT_S))


def _scenes(url: str) -> set[str | None]:
    with PreFormClient(url, timeout=WAIT_S) as client:
        return {s.id for s in client.get_all_scenes()}


def _found_lost(logs: list[MutableMapping[str, Any]], build: Build) -> bool:
    return "build_lease_lost" in lost_events(logs, build)


class TestAStaleNodeSendingAWaitingBuild:
    """The stale node loads nothing it keeps and sends nothing; the new holder sends once."""

    def test_a_dispatch_pass_read_before_the_stall_takes_no_server_and_loads_nothing(
        self, nodes: tuple[NodeRole, NodeRole], url: str, farm: SimFarm, pool: FakePool,
        faults: StallDuring, tmp_path: Path,
    ) -> None:
        a, b = nodes
        server_url = farm.servers[0].url
        build = waiting_build(a.store, "crown", saved_form(server_url, tmp_path))
        a_dispatch = _dispatcher(a, pool)
        assert [w.id for w in a_dispatch.waiting()] == [build.id]  # read before the stall
        stall_until_taken_over(url, b, build)
        scenes = _scenes(server_url)

        with capture_logs() as logs:
            done = a_dispatch.dispatch_once()
        assert [(d.build_id, d.error is not None) for d in done] == [(build.id, True)]
        assert _found_lost(logs, build)
        assert "load_form_file" not in faults.seen
        assert pool.leases == []  # not even a server was taken for it
        assert _scenes(server_url) == scenes
        assert a.store.held(build.id) is None

        sent = _dispatcher(b, pool).dispatch_once()
        assert [(d.build_id, d.error) for d in sent] == [(build.id, None)]
        assert b.store.get_build(build.id).state is S.PRINT_SENT
        assert [j["job_name"] for j in farm.jobs()] == [build.job_key]
        assert _scenes(server_url) == scenes

    def test_a_lease_lost_while_the_form_loads_stops_the_send_and_deletes_the_scene(
        self, nodes: tuple[NodeRole, NodeRole], url: str, farm: SimFarm, pool: FakePool,
        faults: StallDuring, tmp_path: Path,
    ) -> None:
        a, b = nodes
        server_url = farm.servers[0].url
        build = waiting_build(a.store, "crown", saved_form(server_url, tmp_path))
        scenes = _scenes(server_url)
        faults.stall = lambda: stall_until_taken_over(url, b, build)
        history_before = len(a.store.build_history(build.id))

        with capture_logs() as logs:
            done = _dispatcher(a, pool).dispatch_once()
        assert faults.stall is None  # the stall did happen, while the .form loaded
        assert [(d.build_id, d.error is not None) for d in done] == [(build.id, True)]
        assert _found_lost(logs, build)
        assert faults.seen.count("load_form_file") == 1
        assert _scenes(server_url) == scenes  # the scene A loaded is gone again
        assert farm.jobs() == []
        assert len(b.store.build_history(build.id)) == history_before  # A wrote nothing

        sent = _dispatcher(b, pool).dispatch_once()
        assert [(d.build_id, d.error) for d in sent] == [(build.id, None)]
        assert [j["job_name"] for j in farm.jobs()] == [build.job_key]
        assert _scenes(server_url) == scenes
