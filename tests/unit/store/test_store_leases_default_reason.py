"""A build created and claimed in one step, without a reason, is recorded as a plain one is
(real PostgreSQL)."""

from __future__ import annotations

from preform_pipeline.store import JobState
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore


class TestTheDefaultReason:
    """Without a reason, a claimed build's history says "batched", as a plain build's does."""

    def test_claimed_and_plain_builds_show_the_same_reason(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(NodeInfo(id="pc-1", host="pc-1", version="0.1.0"))
        first, second = (
            pg_store.create_job(recipe="dental", source_path=f"/nas/m{i}.stl",
                                content_hash=f"sha256:m{i}", state=JobState.PROCESSING)
            for i in range(2))
        claimed, _lease = pg_store.create_claimed_build("pc-1", recipe="dental",
                                                        job_ids=[first.id])
        plain = pg_store.create_build(recipe="dental", job_ids=[second.id])
        assert [t.reason for t in pg_store.build_history(claimed.id)] == ["batched"]
        assert [t.reason for t in pg_store.build_history(plain.id)] == ["batched"]
