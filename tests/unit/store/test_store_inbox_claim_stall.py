"""A node that claims an inbox file just after a stall (its last heartbeat older than a lease)
keeps that claim: the claim itself says it is alive (real PostgreSQL; the stall is played by
ageing the node's beat on the database's clock, as time would)."""

from __future__ import annotations

import psycopg

from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD

LEASE_S = 60.0


def _silent_for_an_hour(url: str, node: str) -> None:
    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as admin:
        admin.execute("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' "
                      "WHERE id = %s", (node,))


class TestAClaimAfterAStall:
    """The first claim of a node that just woke wins; a claimant silent since is taken over."""

    def test_another_node_cannot_take_a_claim_made_by_a_node_whose_beat_was_stale(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        for name in ("pc-1", "pc-2"):
            pg_store.register_node(NodeInfo(id=name, host=name, version="0.1.0"))
        _silent_for_an_hour(pg_url, "pc-1")  # pc-1 was frozen; its heartbeat has not run yet
        assert pg_store.claim_inbox_file("pc-1", "//nas/inbox/a.stl", "h1", lease_s=LEASE_S)
        assert not pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1",
                                             lease_s=LEASE_S)
        assert pg_store.inbox_claims() == (("//nas/inbox/a.stl", "h1", "pc-1"),)
        # Silent for a lease after its claim (it died before its move): taken over.
        _silent_for_an_hour(pg_url, "pc-1")
        assert pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1", lease_s=LEASE_S)
        assert pg_store.inbox_claims() == (("//nas/inbox/a.stl", "h1", "pc-2"),)

    def test_a_stopped_node_s_claim_does_not_bring_it_back(
        self, pg_store: PostgresJobStore
    ) -> None:
        for name in ("pc-1", "pc-2"):
            pg_store.register_node(NodeInfo(id=name, host=name, version="0.1.0"))
        pg_store.node_stopped("pc-1")
        pg_store.claim_inbox_file("pc-1", "//nas/inbox/a.stl", "h1", lease_s=LEASE_S)
        assert {n.info.id: n.stopped for n in pg_store.list_nodes()}["pc-1"]
        assert pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1", lease_s=LEASE_S)
