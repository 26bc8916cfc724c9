"""Two nodes of one farm on a real PostgreSQL store, and a stall played out on the database's
clock: what the stale-node tests of dispatch and the hot folder share.

Node ``pc-a`` holds a build waiting for a printer; its lease is ended on the database (as time
would end it while A is frozen) and node ``pc-b`` claims the build. The renewals run when a
test says so, never on a thread, so each step of the stall is the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import psycopg

from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, JobState, JobStore
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.leases import NodeInfo
from tests.pg_cluster import PG_PASSWORD

__all__ = ["FORM4", "GREY", "LEASE_S", "farm_node", "lost_events", "stall_until_taken_over",
           "two_nodes", "waiting_build"]

FORM4, GREY = "FORM-4-0", "FLGPGR05"
#: Long enough that no lease runs out by itself during a test.
LEASE_S = 60.0


def two_nodes(url: str) -> Iterator[tuple[NodeRole, NodeRole]]:
    """Nodes ``pc-a`` and ``pc-b``, wired as ``join_farm`` wires a node (for a fixture)."""
    roles = [farm_node(url, name) for name in ("pc-a", "pc-b")]
    try:
        yield roles[0], roles[1]
    finally:
        for role in roles:
            role.store.close()


def farm_node(url: str, name: str) -> NodeRole:
    """Node ``name``, registered and wired as ``join_farm`` wires a node (close its store)."""
    store = NodeJobStore(url, node_id=name, password=PG_PASSWORD, lease_s=LEASE_S)
    store.register_node(NodeInfo(id=name, host=name, version="0.1.0"))
    role = NodeRole(store)
    store.on_lost = role.lease_lost
    return role


def waiting_build(store: JobStore, model: str, form: Path | None = None) -> Build:
    """A one-model build this node prepared (``form``: its saved .form) and that now waits for
    any free Form 4 with Grey resin."""
    job = store.create_job(recipe="hot", source_path=f"/nas/processing/{model}.stl",
                           content_hash=f"sha256:{model}", state=JobState.PROCESSING)
    build = store.create_build(recipe="hot", job_ids=[job.id])
    store.transition_build(build.id, JobState.PREPARING, "preparing")
    store.transition_build(build.id, JobState.PREPARED, "prepared", form_path=form)
    target = PrintTarget(auto=True, machine_type=FORM4, material=GREY)
    return PrintOwner(store).wait_for_printer(build.id, target.to_json(), job_name=build.job_key,
                                              priority=0, describe=target.describe())


def stall_until_taken_over(url: str, b: NodeRole, build: Build) -> None:
    """A's lease on ``build`` runs out while A is frozen, and B claims the build."""
    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as admin:
        admin.execute("UPDATE builds SET lease_until = now() WHERE id = %s", (build.id,))
    lease = b.store.claim_build("pc-b", lease_s=LEASE_S)
    assert lease is not None and lease.build_id == build.id and lease.previous_owner == "pc-a"
    b.store.hold(lease)


def lost_events(logs: list[MutableMapping[str, Any]], build: Build) -> list[str]:
    """The events in which ``pc-a`` reported its lease on ``build`` lost."""
    return [e["event"] for e in logs if e["event"] in ("lease_lost", "build_lease_lost")
            and e.get("node") == "pc-a" and e.get("build_id") == build.id]
