"""PostgreSQL store: nodes, build claims with SKIP LOCKED, leases on the database clock, fences."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import LeaseLostError, StoreError
from preform_pipeline.store import JobState
from preform_pipeline.store.leases import Lease, NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import build_in_state

S = JobState


def _node(name: str) -> NodeInfo:
    return NodeInfo(id=name, host=f"{name}.farm.local", version="0.1.0", pid=100,
                    printers=("Form4-A",), machine_types=("FORM-4-0",))


@pytest.fixture
def other(pg_url: str) -> Iterator[PostgresJobStore]:
    """A second node's own connection to the same store."""
    with PostgresJobStore(pg_url, password=PG_PASSWORD) as opened:
        yield opened


class TestNodes:
    """Nodes register, beat and stop; the list shows their health and what they hold."""

    def test_a_registered_node_is_listed_alive_with_what_it_reaches(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        (status,) = pg_store.list_nodes()
        assert status.info == _node("pc-1")
        assert status.health() == "alive"
        assert status.held_builds == ()

    def test_a_silent_node_is_told_apart_from_a_live_one(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        (status,) = pg_store.list_nodes()
        assert status.health(lease_s=0.0) == "silent"

    def test_a_stopped_node_gives_its_builds_back_at_once(
        self, pg_store: PostgresJobStore, other: PostgresJobStore
    ) -> None:
        build = build_in_state(pg_store, S.PROCESSING)
        pg_store.register_node(_node("pc-1"))
        other.register_node(_node("pc-2"))
        assert pg_store.claim_build("pc-1") is not None
        assert other.claim_build("pc-2") is None
        pg_store.node_stopped("pc-1")
        taken = other.claim_build("pc-2")
        assert taken is not None and taken.build_id == build.id
        assert {s.info.id: s.health() for s in other.list_nodes()} == {
            "pc-1": "stopped", "pc-2": "alive"}

    def test_a_restarted_node_lets_its_previous_life_s_claims_be_recovered(
        self, pg_store: PostgresJobStore
    ) -> None:
        build = build_in_state(pg_store, S.PREPARED)
        pg_store.register_node(_node("pc-1"))
        before = pg_store.claim_build("pc-1")
        assert before is not None
        pg_store.register_node(_node("pc-1"))  # killed, started again
        again = pg_store.claim_build("pc-1")
        assert again is not None
        assert (again.build_id, again.epoch, again.previous_owner) == (
            build.id, before.epoch + 1, "pc-1")

    def test_an_unknown_node_cannot_claim(self, pg_store: PostgresJobStore) -> None:
        build_in_state(pg_store, S.PROCESSING)
        with pytest.raises(StoreError, match="no node 'ghost'"):
            pg_store.claim_build("ghost")


class TestClaims:
    """Each build is claimed by exactly one node; nodes never wait on each other's claims."""

    def test_the_claim_is_listed_as_held_and_a_second_claim_finds_nothing(
        self, pg_store: PostgresJobStore, other: PostgresJobStore
    ) -> None:
        build = build_in_state(pg_store, S.PROCESSING)
        pg_store.register_node(_node("pc-1"))
        other.register_node(_node("pc-2"))
        lease = pg_store.claim_build("pc-1")
        assert lease is not None
        assert (lease.build_id, lease.owner, lease.epoch, lease.recovered) == (
            build.id, "pc-1", 1, False)
        assert other.claim_build("pc-2") is None
        assert {s.info.id: s.held_builds for s in other.list_nodes()} == {
            "pc-1": (build.id,), "pc-2": ()}

    def test_a_row_locked_by_another_claim_is_skipped_not_waited_for(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        first = build_in_state(pg_store, S.PROCESSING)
        second = build_in_state(pg_store, S.PROCESSING)
        pg_store.register_node(_node("pc-1"))
        with psycopg.connect(pg_url, password=PG_PASSWORD) as blocker:
            blocker.execute("SELECT id FROM builds WHERE id = %s FOR UPDATE", (first.id,))
            started = time.monotonic()
            lease = pg_store.claim_build("pc-1")
            waited = time.monotonic() - started
        assert lease is not None and lease.build_id == second.id
        assert waited < 5.0  # a lock wait would last until the blocker ends (never, here)

    def test_racing_nodes_claim_every_build_exactly_once(
        self, pg_store: PostgresJobStore, pg_url: str
    ) -> None:
        builds = {build_in_state(pg_store, S.PROCESSING, jobs=1).id for _ in range(12)}
        claimed: list[tuple[str, int]] = []
        lock = threading.Lock()

        def node(name: str) -> None:
            with PostgresJobStore(pg_url, password=PG_PASSWORD) as store:
                store.register_node(_node(name))
                while (lease := store.claim_build(name)) is not None:
                    with lock:
                        claimed.append((name, lease.build_id))

        threads = [threading.Thread(target=node, args=(f"pc-{i}",)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(b for _, b in claimed) == sorted(builds)

    def test_only_free_builds_in_the_claimable_states_are_claimed(
        self, pg_store: PostgresJobStore
    ) -> None:
        build_in_state(pg_store, S.PRINT_SENT)
        build_in_state(pg_store, S.FINISHED)
        pg_store.register_node(_node("pc-1"))
        assert pg_store.claim_build("pc-1") is None


class TestFencing:
    """A lease that ran out or was taken over lets its old holder write nothing."""

    def _claimed(self, store: PostgresJobStore, *, lease_s: float = 60.0) -> Lease:
        build_in_state(store, S.PREPARED)
        store.register_node(_node("pc-1"))
        lease = store.claim_build("pc-1", lease_s=lease_s)
        assert lease is not None
        return lease

    def test_a_holder_moves_its_build_within_its_lease(self, pg_store: PostgresJobStore) -> None:
        lease = self._claimed(pg_store)
        moved = pg_store.transition_build_fenced(lease, S.PRINT_SENDING, "send",
                                                 expect=S.PREPARED, min_left_s=30)
        assert moved.state is S.PRINT_SENDING

    def test_a_stale_holder_updates_nothing_a_holder_updates_its_build(
        self, pg_store: PostgresJobStore
    ) -> None:
        stale = self._claimed(pg_store, lease_s=0.0)
        with pytest.raises(LeaseLostError):
            pg_store.update_build_fenced(stale, server="127.0.0.1:7002")
        assert pg_store.get_build(stale.build_id).server is None
        lease = pg_store.claim_build("pc-1")
        assert lease is not None and lease.build_id == stale.build_id
        assert pg_store.update_build_fenced(lease, server="127.0.0.1:7001").server == (
            "127.0.0.1:7001")

    def test_a_send_needs_the_lease_to_outlast_the_print_request(
        self, pg_store: PostgresJobStore
    ) -> None:
        lease = self._claimed(pg_store, lease_s=60.0)
        with pytest.raises(LeaseLostError, match="less than 120 s left"):
            pg_store.transition_build_fenced(lease, S.PRINT_SENDING, "send", min_left_s=120)
        assert pg_store.get_build(lease.build_id).state is S.PREPARED

    def test_late_writes_after_a_takeover_change_nothing(
        self, pg_store: PostgresJobStore, other: PostgresJobStore
    ) -> None:
        # A zero lease has run out as soon as it is granted: the node "stalled" at once.
        stale = self._claimed(pg_store, lease_s=0.0)
        other.register_node(_node("pc-2"))
        taken = other.claim_build("pc-2")
        assert taken is not None
        assert (taken.build_id, taken.epoch, taken.previous_owner) == (
            stale.build_id, stale.epoch + 1, "pc-1")
        history = pg_store.build_history(stale.build_id)
        with capture_logs() as logs, pytest.raises(LeaseLostError) as caught:
            pg_store.transition_build_fenced(stale, S.PRINT_SENDING, "late send")
        assert caught.value.epoch == stale.epoch
        assert {"event": "lease_lost", "build_id": stale.build_id}.items() <= logs[-1].items()
        with pytest.raises(LeaseLostError):
            pg_store.renew(stale)
        assert not pg_store.release(stale)
        assert pg_store.build_history(stale.build_id) == history
        assert other.renew(taken).epoch == taken.epoch

    def test_an_expired_lease_is_lost_even_with_no_one_else_around(
        self, pg_store: PostgresJobStore
    ) -> None:
        lease = self._claimed(pg_store, lease_s=0.0)
        with pytest.raises(LeaseLostError):
            pg_store.transition_build_fenced(lease, S.FAILED, "late")

    def test_renewing_extends_the_lease_a_heartbeat_does_not(
        self, pg_store: PostgresJobStore
    ) -> None:
        lease = self._claimed(pg_store, lease_s=5.0)
        pg_store.heartbeat("pc-1")
        with pytest.raises(LeaseLostError):
            pg_store.transition_build_fenced(lease, S.PRINT_SENDING, "send", min_left_s=300)
        renewed = pg_store.renew(lease, lease_s=600.0)
        assert renewed.until > lease.until
        pg_store.transition_build_fenced(renewed, S.PRINT_SENDING, "send", min_left_s=300)

    def test_a_released_build_is_free_for_the_next_claim_at_a_new_epoch(
        self, pg_store: PostgresJobStore
    ) -> None:
        lease = self._claimed(pg_store)
        assert pg_store.release(lease)
        again = pg_store.claim_build("pc-1")
        assert again is not None and again.epoch == lease.epoch + 1
        assert again.previous_owner is None


class TestSharedInbox:
    """A file in a shared inbox is taken by exactly one node."""

    def test_racing_nodes_take_each_file_once(self, pg_store: PostgresJobStore,
                                              pg_url: str) -> None:
        for i in range(4):
            pg_store.register_node(_node(f"pc-{i}"))
        wins: list[str] = []

        def node(name: str) -> None:
            with PostgresJobStore(pg_url, password=PG_PASSWORD) as store:
                for n in range(10):
                    if store.claim_inbox_file(name, f"//nas/inbox/case{n}.stl", f"h{n}"):
                        wins.append(f"{name}:{n}")

        threads = [threading.Thread(target=node, args=(f"pc-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(int(w.split(":")[1]) for w in wins) == list(range(10))
        assert len(pg_store.inbox_claims()) == 10

    def test_the_same_path_with_new_content_is_a_new_file(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        pg_store.register_node(_node("pc-2"))
        assert pg_store.claim_inbox_file("pc-1", "//nas/inbox/a.stl", "h1")
        assert not pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1")
        assert pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h2")

    def test_the_claimant_may_claim_again_and_a_gone_claimant_is_taken_over(
        self, pg_store: PostgresJobStore
    ) -> None:
        pg_store.register_node(_node("pc-1"))
        pg_store.register_node(_node("pc-2"))
        assert pg_store.claim_inbox_file("pc-1", "//nas/inbox/a.stl", "h1")
        # Its own retry (after a failed take) is still its file.
        assert pg_store.claim_inbox_file("pc-1", "//nas/inbox/a.stl", "h1")
        assert not pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1", lease_s=60)
        pg_store.node_stopped("pc-1")  # it stopped between its claim and its move
        assert pg_store.claim_inbox_file("pc-2", "//nas/inbox/a.stl", "h1", lease_s=60)
        assert pg_store.inbox_claims() == (("//nas/inbox/a.stl", "h1", "pc-2"),)
