"""Session 21's whole runs of store/fenced.py and store/leases.py (real PostgreSQL): the event
of a claim that takes a build over, why a move on a lease that ran out is refused, how long
an idle build is kept, and what the renewal pass does with a build whose work moved it while
the pass asked about it (idle on the clock seam; that work placed in the ``in_use`` callback,
which the pass asks about an idle build just before renewing or letting it go)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import LeaseLostError
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.leases import NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore
from tests.unit.store.conftest import NodeFactory, build_in_state

S = JobState
LEASE_S = 60.0
_RAN_OUT = "its lease ran out or another node took it over"


def _build(store: NodeJobStore) -> Build:
    job = store.create_job(recipe="dental", source_path="/nas/processing/m.stl",
                           content_hash="sha256:m", state=S.PROCESSING)
    return store.create_build(recipe="dental", job_ids=[job.id])


def _warnings(logs: list[MutableMapping[str, Any]]) -> list[tuple[str, int]]:
    return [(e["event"], e["build_id"]) for e in logs if e["log_level"] == "warning"]


def _register(store: PostgresJobStore, *names: str) -> None:
    for name in names:
        store.register_node(NodeInfo(id=name, host=f"{name}.farm.local", version="0.1.0"))


class TestATakeoverIsLogged:
    """A claim that takes a build over from a node whose lease ran out names that node."""

    def test_the_claim_event_names_the_previous_owner(self, pg_store: PostgresJobStore) -> None:
        build = build_in_state(pg_store, S.PREPARED)
        _register(pg_store, "pc-1", "pc-2")
        # A zero lease runs out as soon as it is granted: pc-1 "stalled" at once.
        assert pg_store.claim_build("pc-1", lease_s=0.0) is not None
        with capture_logs() as logs:
            taken = pg_store.claim_build("pc-2")
        assert taken is not None and taken.previous_owner == "pc-1"
        assert [e for e in logs if e["event"] == "build_claimed"] == [
            {"event": "build_claimed", "log_level": "info", "build_id": build.id,
             "node": "pc-2", "epoch": 2, "state": "prepared", "previous_owner": "pc-1"}]


class TestAMoveOnALeaseThatRanOut:
    """A move that asks for no lease beyond now is refused because the lease ran out, and the
    refusal says so rather than naming a margin nobody asked for."""

    def test_a_fenced_move_without_a_margin_says_the_lease_ran_out(
        self, pg_store: PostgresJobStore
    ) -> None:
        build = build_in_state(pg_store, S.PREPARED)
        _register(pg_store, "pc-1")
        lease = pg_store.claim_build("pc-1", lease_s=0.0)
        assert lease is not None
        history = pg_store.build_history(build.id)
        with capture_logs() as logs, pytest.raises(LeaseLostError) as caught:
            pg_store.transition_build_fenced(lease, S.FAILED, "late")
        assert caught.value.message == (
            f"build {build.id}: node pc-1 no longer holds it (epoch 1): {_RAN_OUT}")
        assert [e["why"] for e in logs if e["event"] == "lease_lost"] == [_RAN_OUT]
        assert pg_store.build_history(build.id) == history

    def test_a_node_s_move_that_is_not_a_send_says_the_lease_ran_out(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=0.0, send_deadline_s=600.0, on_lost=lost.append)
        build = _build(a)
        with pytest.raises(LeaseLostError) as caught:
            a.transition_build(build.id, S.PREPARING, "late")
        assert caught.value.message == (
            f"build {build.id}: node pc-a no longer holds it (epoch 1): {_RAN_OUT}")
        assert lost == [build.id]
        assert a.get_build(build.id).state is S.PROCESSING


class TestTheIdleLimit:
    """A held build nobody uses is kept for exactly a lease of idleness (one being sent: its
    deadline and a lease), and let go once that has passed."""

    def test_a_build_idle_for_exactly_its_lease_is_renewed_and_let_go_just_after(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        a = node("pc-a", lease_s=LEASE_S, clock=clock)
        a.in_use = lambda _build_id, _state: False
        build = _build(a)
        before = a.held(build.id)
        assert before is not None
        clock.advance(LEASE_S)
        with capture_logs() as logs:
            a.renew_all()
        assert _warnings(logs) == []
        kept = a.held(build.id)
        assert kept is not None and kept.until > before.until
        clock.advance(0.5)
        with capture_logs() as logs:
            a.renew_all()
        assert _warnings(logs) == [("build_let_go", build.id)]
        assert a.held(build.id) is None
        assert a.list_nodes()[0].held_builds == ()

    def test_a_build_being_sent_is_kept_past_a_lease_until_its_deadline_too(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        a = node("pc-a", lease_s=LEASE_S, send_deadline_s=600.0, clock=clock)
        a.in_use = lambda _build_id, _state: False
        build = _build(a)
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING):
            a.transition_build(build.id, step, str(step))
        clock.advance(LEASE_S + 1)  # idle past a plain lease, well within the send's
        with capture_logs() as logs:
            a.renew_all()
        assert _warnings(logs) == []
        kept = a.held(build.id)
        assert kept is not None and kept.state is S.PRINT_SENDING
        clock.advance(600.0)  # and now past the send's deadline and a lease
        with capture_logs() as logs:
            a.renew_all()
        assert [(e["event"], e["state"]) for e in logs if e["log_level"] == "warning"] == [
            ("build_let_go", "print_sending")]
        assert a.held(build.id) is None


class TestABuildMovedWhileThePassAsksAboutIt:
    """The pass lets go only of what the node still holds: a build its work lost meanwhile is
    given back once, a build its work finished meanwhile is neither lost nor let go."""

    def test_a_build_lost_meanwhile_and_not_in_use_is_given_back_and_the_pass_ends(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        lost: list[int] = []
        # A node lease of 0 s: its send renews the build for the send's deadline, and the fence
        # right after (a later transaction, so a later now() on the database) finds less than
        # that deadline left and refuses. The build leaves the node's book, yet the database
        # still shows it as this node's.
        a = node("pc-a", lease_s=0.0, send_deadline_s=600.0, on_lost=lost.append, clock=clock)
        b = node("pc-b")
        _build(a)  # its 0 s claim has run out: claim it again for longer
        lease = a.claim_build("pc-a", lease_s=600.0)
        assert lease is not None
        a.hold(lease)
        build_id = lease.build_id
        a.transition_build(build_id, S.PREPARING, "layout")
        a.transition_build(build_id, S.PREPARED, "saved")

        def sent_refused_then_dropped(held_id: int, _state: JobState) -> bool:
            with pytest.raises(LeaseLostError):
                a.transition_build(held_id, S.PRINT_SENDING, "send")
            return False  # its batch gave the build up after the refusal

        a.in_use = sent_refused_then_dropped
        clock.advance(1)  # idle for longer than its (0 s) lease: the pass asks about it
        with capture_logs() as logs:
            a.renew_all()
        assert lost == [build_id]
        assert _warnings(logs) == [("lease_lost", build_id), ("build_lease_lost", build_id),
                                   ("build_let_go", build_id)]
        assert a.held_ids() == frozenset()
        # Given back, not left to run out: another node takes it up at once, as a free build.
        taken = b.claim_build("pc-b")
        assert taken is not None and taken.build_id == build_id
        assert taken.previous_owner is None and taken.state is S.PREPARED

    def test_a_build_its_work_finished_meanwhile_is_not_reported_lost(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=LEASE_S, clock=clock, on_lost=lost.append)
        build = _build(a)

        def finished_meanwhile(build_id: int, _state: JobState) -> bool:
            a.transition_build(build_id, S.PREPARING, "preparing")
            a.transition_build(build_id, S.FAILED, "the server refused it")  # given back
            return False  # its batch is over

        a.in_use = finished_meanwhile
        clock.advance(LEASE_S + 1)  # idle past a lease: the pass asks before letting go
        with capture_logs() as logs:
            a.renew_all()
        assert lost == []  # no stop signal for a build that is over
        assert _warnings(logs) == []
        assert a.held(build.id) is None
        assert a.get_build(build.id).state is S.FAILED
        assert a.list_nodes()[0].held_builds == ()
