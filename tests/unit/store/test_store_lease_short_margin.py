"""A fenced move refused for want of time names the margin it asked for, even a margin under a
second (PostgreSQL only: the test cluster of tests/unit/store/conftest.py)."""

from __future__ import annotations

import pytest

from preform_pipeline.errors import LeaseLostError
from preform_pipeline.store import JobState
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore
from tests.unit.store.conftest import build_in_state


class TestAShortMargin:
    """Asking for half a second more than the lease has left is "less than 0.5 s left"."""

    def test_the_refusal_names_the_half_second_asked_for(self, pg_store: PostgresJobStore) -> None:
        build_in_state(pg_store, JobState.PREPARED)
        pg_store.register_node(NodeInfo(id="pc-1", host="pc-1.farm.local", version="0.1.0",
                                        pid=100, printers=(), machine_types=()))
        # A zero lease has run out as soon as it is granted: no margin is left at all.
        lease = pg_store.claim_build("pc-1", lease_s=0.0)
        assert lease is not None
        with pytest.raises(LeaseLostError) as caught:
            pg_store.transition_build_fenced(lease, JobState.PRINT_SENDING, "send",
                                             min_left_s=0.5)
        assert "its lease has less than 0.5 s left, or is gone" in str(caught.value)
        assert pg_store.get_build(lease.build_id).state is JobState.PREPARED
