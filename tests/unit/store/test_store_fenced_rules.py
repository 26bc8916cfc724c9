"""A node's lease book in detail: builds in use kept, a database away, the send's longer lease
ending with the send, plain writes past the claimable states, background renewal (real
PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import LeaseLostError, StoreConflictError
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.fenced import NodeJobStore
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import NodeFactory, cut_off_stores

S = JobState


def _build(store: NodeJobStore, tag: str = "m") -> Build:
    job = store.create_job(recipe="dental", source_path=f"/nas/processing/{tag}.stl",
                           content_hash=f"sha256:{tag}", state=S.PROCESSING)
    return store.create_build(recipe="dental", job_ids=[job.id])


def _warnings(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    """The warnings, without the reconnection that follows a cut-off."""
    return [e for e in logs
            if e["log_level"] == "warning" and e["event"] != "store_reconnecting"]


def _lease_left_s(pg_url: str, build_id: int) -> float:
    with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as admin:
        row = admin.execute("SELECT extract(epoch FROM lease_until - now()) FROM builds "
                            "WHERE id = %s", (build_id,)).fetchone()
    assert row is not None
    return float(row[0])


class TestBuildsInUse:
    """A build the node still uses is renewed, never let go; one just touched is kept too."""

    def test_a_build_in_use_is_renewed_and_its_loss_reported(self, node: NodeFactory) -> None:
        lost: list[int] = []
        asked: list[tuple[int, JobState]] = []
        # A zero lease: idle at once, so only ``in_use`` keeps the node from letting it go;
        # the renewal then finds the lease run out and reports it.
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)

        def in_use(build_id: int, state: JobState) -> bool:
            asked.append((build_id, state))
            return True

        a.in_use = in_use
        build = _build(a)
        with capture_logs() as logs:
            a.renew_all()
        assert asked == [(build.id, S.PROCESSING)]
        assert lost == [build.id]
        assert _warnings(logs)[-1] == {"event": "build_lease_lost", "log_level": "warning",
                                       "build_id": build.id, "node": "pc-a"}
        assert "build_let_go" not in [e["event"] for e in logs]

    def test_a_build_touched_within_its_lease_is_renewed_not_let_go(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a", lease_s=600.0)
        a.in_use = lambda _build_id, _state: False
        build = _build(a)
        with capture_logs() as logs:
            a.renew_all()
        assert _warnings(logs) == []
        held = a.held(build.id)
        assert held is not None and held.state is S.PROCESSING
        assert _lease_left_s(pg_url, build.id) > 500


class TestDatabaseAway:
    """A renewal or release that cannot reach the database keeps the lease for the next pass."""

    def test_a_failed_renewal_is_logged_and_the_pass_goes_on(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=600.0, on_lost=lost.append)
        first, second = _build(a, "a"), _build(a, "b")
        before = a.held(second.id)
        assert before is not None
        cut_off_stores(pg_url)
        with capture_logs() as logs:
            a.renew_all()  # the first renewal meets the cut; the second connects again
        (warning,) = _warnings(logs)
        assert (warning["event"], warning["build_id"], warning["node"]) == (
            "lease_renewal_failed", first.id, "pc-a")
        assert str(warning["error"]).startswith(f"{pg_url}: cannot reach the PostgreSQL ")
        assert a.held(first.id) is not None and lost == []
        renewed = a.held(second.id)
        assert renewed is not None and renewed.until > before.until
        a.renew_all()
        assert a.held(first.id) is not None and lost == []
        assert _lease_left_s(pg_url, first.id) > 500

    def test_a_lost_lease_is_reported_and_the_pass_goes_on(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        lost: list[int] = []
        a, b = node("pc-a", lease_s=600.0, on_lost=lost.append), node("pc-b")
        first, second = _build(a, "a"), _build(a, "b")
        before = a.held(second.id)
        assert before is not None
        with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as admin:
            # The first build's lease runs out (pc-a stalled on it), and pc-b takes it over.
            admin.execute("UPDATE builds SET lease_until = now() WHERE id = %s", (first.id,))
        assert b.claim_build("pc-b") is not None
        a.renew_all()
        assert lost == [first.id] and a.held(first.id) is None
        renewed = a.held(second.id)
        assert renewed is not None and renewed.until > before.until

    def test_a_lost_lease_is_not_given_back_so_the_next_claim_learns_whose_it_was(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        a, b = node("pc-a", lease_s=0.0, on_lost=lost.append), node("pc-b")
        build = _build(a)
        with pytest.raises(LeaseLostError):
            a.transition_build(build.id, S.PREPARING, "late")
        assert lost == [build.id]
        taken = b.claim_build("pc-b")
        assert taken is not None and taken.build_id == build.id
        assert taken.previous_owner == "pc-a"

    def test_a_failed_let_go_is_logged_and_the_next_pass_lets_go(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)
        a.in_use = lambda _build_id, _state: False
        build = _build(a)
        cut_off_stores(pg_url)
        with capture_logs() as logs:
            a.renew_all()
        (warning,) = _warnings(logs)
        assert (warning["event"], warning["build_id"], warning["node"]) == (
            "lease_release_failed", build.id, "pc-a")
        assert str(warning["error"]).startswith(f"{pg_url}: cannot reach the PostgreSQL ")
        assert a.held(build.id) is not None and lost == []
        with capture_logs() as again:
            a.renew_all()
        assert _warnings(again) == [{"event": "build_let_go", "log_level": "warning",
                                     "build_id": build.id, "node": "pc-a",
                                     "state": "processing"}]
        assert a.held(build.id) is None and lost == []


class TestTheSendsLease:
    """A send runs on a lease as long as its deadline plus a lease; after it, normal again."""

    def test_a_send_given_up_goes_back_to_the_normal_lease(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a", lease_s=60.0, send_deadline_s=900.0)
        build = _build(a)
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING):
            a.transition_build(build.id, step, str(step))
        assert _lease_left_s(pg_url, build.id) > 900
        a.renew_all()
        assert _lease_left_s(pg_url, build.id) > 900
        a.transition_build(build.id, S.PREPARED, "the server refused the send")
        held = a.held(build.id)
        assert held is not None and held.state is S.PREPARED
        a.renew_all()
        assert 0 < _lease_left_s(pg_url, build.id) <= 60

    def test_a_send_on_a_lost_lease_is_refused_and_reported(self, node: NodeFactory) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=60.0, send_deadline_s=300.0, on_lost=lost.append)
        b = node("pc-b")
        build = _build(a)
        a.transition_build(build.id, S.PREPARING, "preparing")
        a.transition_build(build.id, S.PREPARED, "prepared")
        a.node_stopped("pc-a")  # its leases end at once; pc-b recovers the build
        taken = b.claim_build("pc-b")
        assert taken is not None and taken.build_id == build.id
        with pytest.raises(LeaseLostError):
            a.transition_build(build.id, S.PRINT_SENDING, "send")
        assert lost == [build.id] and a.held(build.id) is None
        assert b.get_build(build.id).state is S.PREPARED

    def test_a_send_that_lands_releases_the_build(self, node: NodeFactory) -> None:
        a, b = node("pc-a", send_deadline_s=300.0), node("pc-b")
        build = _build(a)
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            a.transition_build(build.id, step, str(step))
        assert a.held(build.id) is None
        assert {n.info.id: n.held_builds for n in b.list_nodes()}["pc-a"] == ()


class TestSendsAndReleases:
    """A send needs its whole deadline of lease; a node's send flag ends with the lease; a
    release that fails after the build left the claimable states is logged, not raised."""

    def test_a_send_with_no_lease_beyond_its_deadline_is_refused(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=600.0, send_deadline_s=900.0, on_lost=lost.append)
        build = _build(a)
        a.transition_build(build.id, S.PREPARING, "preparing")
        a.transition_build(build.id, S.PREPARED, "prepared")
        # No lease beyond the deadline: the renewal grants exactly 900 s, and by the move's
        # own transaction (a moment later on the database's clock) less than that is left.
        a.lease_s = 0.0
        with pytest.raises(LeaseLostError, match="less than 900 s left"):
            a.transition_build(build.id, S.PRINT_SENDING, "send")
        assert lost == [build.id]
        assert a.get_build(build.id).state is S.PREPARED

    def test_a_lost_send_does_not_lengthen_a_later_lease(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a", lease_s=60.0, send_deadline_s=900.0)
        b = node("pc-b")
        build = _build(a)
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING):
            a.transition_build(build.id, step, str(step))
        with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as admin:
            admin.execute("UPDATE builds SET lease_until = now() WHERE id = %s", (build.id,))
        taken = b.claim_build("pc-b")
        assert taken is not None and b.release(taken)
        a.renew_all()  # finds its lease gone: the build leaves the book
        assert a.held(build.id) is None
        again = a.claim_build("pc-a", lease_s=60.0)
        assert again is not None and again.build_id == build.id
        a.hold(again)
        a.renew_all()
        assert 0 < _lease_left_s(pg_url, build.id) <= 60

    def test_a_failed_release_is_logged_and_the_move_stands(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a")
        build = _build(a)
        with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as admin:
            # A database that refuses the release (as a full disk or a lost lock would).
            admin.execute(
                "CREATE FUNCTION refuse_release() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF NEW.owner IS NULL AND OLD.owner IS NOT NULL THEN "
                "RAISE EXCEPTION 'release refused'; END IF; RETURN NEW; END $$")
            admin.execute("CREATE TRIGGER refuse_release BEFORE UPDATE ON builds "
                          "FOR EACH ROW EXECUTE FUNCTION refuse_release()")
        try:
            with capture_logs() as logs:
                moved = a.transition_build(build.id, S.FAILED, "the server refused it")
        finally:
            with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as admin:
                admin.execute("DROP TRIGGER refuse_release ON builds")
                admin.execute("DROP FUNCTION refuse_release()")
        assert moved.state is S.FAILED and a.held(build.id) is None
        (warning,) = _warnings(logs)
        assert (warning["event"], warning["build_id"], warning["node"]) == (
            "lease_release_failed", build.id, "pc-a")
        assert "release refused" in str(warning["error"])


class TestCreatedBuilds:
    """A node's new build carries the reason and server given, or the default reason."""

    def test_the_reason_and_server_are_recorded(self, node: NodeFactory) -> None:
        a = node("pc-a")
        job = a.create_job(recipe="dental", source_path="/nas/m.stl", state=S.PROCESSING)
        given = a.create_build(recipe="dental", job_ids=[job.id], server="127.0.0.1:7001",
                               reason="split from build 7")
        assert given.server == "127.0.0.1:7001"
        assert a.build_history(given.id)[0].reason == "split from build 7"
        plain = _build(a, "p")
        assert a.build_history(plain.id)[0].reason == "batched"


class TestListings:
    """A node's listings filter by recipe and time, and a limit keeps the most recent of its
    builds, in creation order, as every store's does."""

    def test_filters_and_the_limit(self, node: NodeFactory) -> None:
        a = node("pc-a")
        jobs = [a.create_job(recipe=r, source_path=f"/nas/{i}.stl", state=S.PROCESSING)
                for i, r in enumerate(("dental", "ortho", "dental", "dental"))]
        builds = [a.create_build(recipe=j.recipe, job_ids=[j.id]) for j in jobs]
        ids = [b.id for b in builds]
        assert [b.id for b in a.list_builds(recipe="ortho")] == [ids[1]]
        assert [b.id for b in a.list_builds(limit=2)] == ids[2:]
        assert [b.id for b in a.list_builds(recipe="dental", limit=2)] == [ids[2], ids[3]]
        assert [b.id for b in a.list_builds(limit=10)] == ids
        hour = timedelta(hours=1)
        assert [b.id for b in a.list_builds(since=datetime.now(timezone.utc) - hour)] == ids
        assert a.list_builds(since=datetime.now(timezone.utc) + hour) == ()
        with pytest.raises(ValueError, match="limit must be 1 or more"):
            a.list_builds(limit=0)

    def test_a_page_further_back_is_of_this_nodes_builds(self, node: NodeFactory) -> None:
        a = node("pc-a")
        jobs = [a.create_job(recipe="dental", source_path=f"/nas/{i}.stl", state=S.PROCESSING)
                for i in range(5)]
        ids = [a.create_build(recipe="dental", job_ids=[j.id]).id for j in jobs]
        assert [b.id for b in a.list_builds(limit=2, offset=2)] == ids[1:3]
        assert [b.id for b in a.list_builds(limit=2, offset=4)] == ids[0:1]
        assert a.list_builds(limit=2, offset=7) == ()
        key = a.get_build(ids[3]).job_key
        assert [b.id for b in a.list_builds(text=key.lower(), limit=2)] == [ids[3]]
        with pytest.raises(ValueError, match="offset must be 0 or more"):
            a.list_builds(limit=1, offset=-1)
        with pytest.raises(ValueError, match="needs a limit"):
            a.list_builds(offset=1)


class TestMovesCarryTheirArguments:
    """A move, fenced or plain, writes its fields, keeps to its expectation, and the book
    follows the build's new state."""

    def test_a_fenced_move_writes_fields_checks_the_expectation_and_updates_the_book(
        self, node: NodeFactory
    ) -> None:
        a = node("pc-a")
        build = _build(a)
        with pytest.raises(StoreConflictError):
            a.transition_build(build.id, S.PREPARING, "stale", expect=S.PREPARED)
        moved = a.transition_build(build.id, S.PREPARING, "preparing", expect=S.PROCESSING,
                                   server="127.0.0.1:7001")
        assert (moved.state, moved.server) == (S.PREPARING, "127.0.0.1:7001")
        held = a.held(build.id)
        assert held is not None and held.state is S.PREPARING

    def test_a_plain_move_writes_fields_and_checks_the_expectation(
        self, node: NodeFactory
    ) -> None:
        a, b = node("pc-a"), node("pc-b")
        build = _build(a)
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            a.transition_build(build.id, step, str(step))
        with pytest.raises(StoreConflictError):
            b.transition_build(build.id, S.VERIFYING, "stale", expect=S.PRINT_SENDING)
        moved = b.transition_build(build.id, S.VERIFYING, "seen", expect=S.PRINT_SENT,
                                   printer="Form4-B")
        assert (moved.state, moved.printer) == (S.VERIFYING, "Form4-B")

    def test_every_idle_build_is_let_go_in_one_pass(self, node: NodeFactory) -> None:
        a = node("pc-a", lease_s=0.0)
        a.in_use = lambda _build_id, _state: False
        builds = [_build(a, "a"), _build(a, "b")]
        with capture_logs() as logs:
            a.renew_all()
        assert sorted(e["build_id"] for e in _warnings(logs) if e["event"] == "build_let_go") == (
            sorted(b.id for b in builds))
        assert a.held_ids() == frozenset()


class TestPlainWrites:
    """Builds past the claimable states are written without a lease; held ones through it."""

    def test_a_held_build_is_updated_through_its_lease(self, node: NodeFactory) -> None:
        a = node("pc-a")
        build = _build(a)
        assert a.update_build(build.id, server="127.0.0.1:7001").server == "127.0.0.1:7001"

    def test_a_sent_build_is_updated_and_moved_by_any_node(self, node: NodeFactory) -> None:
        a, b = node("pc-a"), node("pc-b")
        build = _build(a)
        own = _build(b, "own")
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            a.transition_build(build.id, step, str(step))
        assert b.update_build(build.id, printer="Form4-A").printer == "Form4-A"
        assert [x.id for x in b.list_builds(state=S.PRINT_SENT)] == [build.id]
        assert [x.id for x in b.list_builds(state=S.PROCESSING)] == [own.id]
        moved = b.transition_build(build.id, S.VERIFYING, "the poller saw it")
        assert moved.state is S.VERIFYING
        assert b.build_history(build.id)[-1].reason == "the poller saw it"

    def test_a_lost_lease_fails_an_update_and_is_reported(self, node: NodeFactory) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)
        build = _build(a)
        with pytest.raises(LeaseLostError):
            a.update_build(build.id, server="127.0.0.1:7001")
        assert lost == [build.id] and a.held(build.id) is None
        assert a.get_build(build.id).server is None


class TestRenewingInTheBackground:
    """Started, the renewal thread keeps a held lease alive; closing stops it."""

    def test_the_lease_is_renewed_until_close(self, node: NodeFactory, pg_url: str) -> None:
        a = node("pc-a", lease_s=3.0)
        build = _build(a)
        first = a.held(build.id)
        assert first is not None
        a.start_renewing()
        a.start_renewing()  # a second start changes nothing
        deadline = time.monotonic() + 30
        while (current := a.held(build.id)) is not None and current.until == first.until:
            assert time.monotonic() < deadline, "the lease was never renewed"
            threading.Event().wait(0.05)
        assert current is not None and current.until > first.until
        renewers = [t for t in threading.enumerate() if t.name == "lease-renewal"]
        assert len(renewers) == 1 and renewers[0].daemon
        a.close()
        renewers[0].join(timeout=10)
        assert not renewers[0].is_alive()


class TestNotHeld:
    """A move of a claimable build the node does not hold says so, and is logged."""

    def test_the_refusal_names_build_node_and_reason(self, node: NodeFactory) -> None:
        a, b = node("pc-a"), node("pc-b")
        build = _build(a)
        with capture_logs() as logs, pytest.raises(LeaseLostError) as caught:
            b.transition_build(build.id, S.PREPARING, "not mine")
        assert str(caught.value).startswith(
            f"build {build.id}: node pc-b no longer holds it (epoch 0): this node does not "
            "hold the build (")
        assert _warnings(logs) == [{"event": "lease_lost", "log_level": "warning",
                                    "build_id": build.id, "node": "pc-b", "epoch": 0,
                                    "why": "this node does not hold the build"}]

    def test_without_a_send_deadline_a_send_keeps_the_normal_lease(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a", lease_s=60.0)
        build = _build(a)
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING):
            a.transition_build(build.id, step, str(step))
        assert 50 < _lease_left_s(pg_url, build.id) <= 60
