"""The shared store as one node sees it (NodeJobStore): claimed creation, fenced moves,
renewals, a lost lease, what the node may act on, and orphaned jobs (real PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import LeaseLostError
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from tests.unit.store.conftest import NodeFactory

S = JobState


def _jobs(store: PostgresJobStore, count: int, *, tag: str = "m") -> list[Job]:
    """Jobs taken from ``/nas/inbox/<tag><i>.stl`` (their hot-folder place names it)."""
    return [store.create_job(recipe="dental", source_path=f"/nas/processing/{tag}{i}.stl",
                             content_hash=f"sha256:{tag}{i}", state=S.PROCESSING,
                             fields={HOTFOLDER_FIELD: JobPlace(_INBOX, f"{tag}{i}.stl").to_json()})
            for i in range(count)]


_INBOX = Path("/nas/inbox")


class TestCreatedBuildsAreClaimed:
    """A build a node creates is its own from the first moment."""

    def test_no_other_node_can_claim_a_build_just_created(self, node: NodeFactory) -> None:
        a, b = node("pc-a"), node("pc-b")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 2)])
        assert a.held(build.id) is not None
        assert b.claim_build("pc-b") is None
        assert {n.info.id: n.held_builds for n in a.list_nodes()}["pc-a"] == (build.id,)


class TestFencedMoves:
    """Every move of a claimable build goes through the node's lease."""

    def test_a_held_build_moves_and_the_audit_names_node_and_epoch(
        self, node: NodeFactory
    ) -> None:
        a = node("pc-a")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        a.transition_build(build.id, S.PREPARING, "preparing")
        assert a.build_history(build.id)[-1].reason.endswith("[pc-a, epoch 1]")

    def test_a_build_the_node_does_not_hold_is_refused_and_nothing_is_written(
        self, node: NodeFactory
    ) -> None:
        a, b = node("pc-a"), node("pc-b")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        history = a.build_history(build.id)
        with pytest.raises(LeaseLostError, match="does not hold"):
            b.transition_build(build.id, S.PREPARING, "not mine")
        with pytest.raises(LeaseLostError):
            b.update_build(build.id, server="127.0.0.1:1")
        assert b.build_history(build.id) == history
        assert b.get_build(build.id).server is None

    def test_leaving_the_claimable_states_gives_the_lease_back(self, node: NodeFactory) -> None:
        a = node("pc-a")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        a.transition_build(build.id, S.PREPARING, "preparing")
        a.transition_build(build.id, S.FAILED, "the server refused it")
        assert a.held(build.id) is None
        assert a.list_nodes()[0].held_builds == ()

    def test_a_send_extends_the_lease_by_the_print_request_s_deadline(
        self, node: NodeFactory
    ) -> None:
        a = node("pc-a", lease_s=30.0, send_deadline_s=600.0)
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING):
            a.transition_build(build.id, step, str(step))
        sending = a.held(build.id)
        assert sending is not None
        a.renew_all()  # renewals while sending keep the long lease
        renewed = a.held(build.id)
        assert renewed is not None and renewed.until >= sending.until
        assert (renewed.until - a.get_build(build.id).updated_at).total_seconds() > 600


class TestRenewalsAndLoss:
    """Leases are renewed while held; a lost one is reported and fences the node out."""

    def test_renewal_extends_every_held_lease(self, node: NodeFactory) -> None:
        a = node("pc-a", lease_s=30.0)
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        before = a.held(build.id)
        assert before is not None
        a.renew_all()
        after = a.held(build.id)
        assert after is not None and after.until > before.until

    def test_a_lease_taken_over_is_reported_and_the_late_move_writes_nothing(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        # A zero lease runs out as soon as it is granted: the node "stalled" at once.
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)
        b = node("pc-b")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        taken = b.claim_build("pc-b", states=[S.PROCESSING])
        assert taken is not None and taken.build_id == build.id and taken.epoch == 2
        b.hold(taken)
        history = b.build_history(build.id)
        a.renew_all()
        assert lost == [build.id]
        assert a.held(build.id) is None
        with pytest.raises(LeaseLostError):
            a.transition_build(build.id, S.PREPARING, "late")
        assert b.build_history(build.id) == history
        b.transition_build(build.id, S.PREPARING, "the new holder goes on")

    def test_a_failing_fenced_move_reports_the_loss_too(self, node: NodeFactory) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        with pytest.raises(LeaseLostError):
            a.transition_build(build.id, S.PREPARING, "late")
        assert lost == [build.id]


class TestConfirmingALease:
    """A node asks the database, not its book, whether it still holds a build."""

    def test_a_held_build_is_confirmed_and_its_lease_extended_by_a_whole_lease(
        self, node: NodeFactory
    ) -> None:
        # Longer than the default lease: a renewal of the default length would shorten it.
        a = node("pc-a", lease_s=300.0)
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        before = a.held(build.id)
        assert before is not None
        confirmed = a.confirm_held(build.id)
        assert confirmed.epoch == before.epoch and confirmed.until > before.until
        assert a.held(build.id) == confirmed
        a.in_use = lambda _build_id, _state: True
        a.renew_all()  # the book is whole after the confirmation: renewals go on
        renewed = a.held(build.id)
        assert renewed is not None and renewed.until >= confirmed.until

    def test_a_build_being_sent_keeps_the_send_s_long_lease(self, node: NodeFactory) -> None:
        a = node("pc-a", lease_s=30.0, send_deadline_s=600.0)
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING):
            a.transition_build(build.id, step, str(step))
        sending = a.held(build.id)
        assert sending is not None
        confirmed = a.confirm_held(build.id)
        assert confirmed.until >= sending.until
        assert (confirmed.until - a.get_build(build.id).updated_at).total_seconds() > 600

    def test_a_lease_taken_over_while_the_book_still_lists_it_is_reported_lost(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)  # runs out at once: a stall
        b = node("pc-b")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        taken = b.claim_build("pc-b", states=[S.PROCESSING])
        assert taken is not None and taken.build_id == build.id
        assert a.held(build.id) is not None  # the book does not know yet
        with capture_logs() as logs, pytest.raises(LeaseLostError, match="ran out or another"):
            a.confirm_held(build.id)
        assert lost == [build.id]
        assert a.held(build.id) is None
        assert [e["event"] for e in logs] == ["lease_lost", "build_lease_lost"]

    def test_a_build_the_node_never_held_is_refused(self, node: NodeFactory) -> None:
        lost: list[int] = []
        a = node("pc-a")
        b = node("pc-b", on_lost=lost.append)
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        with capture_logs() as logs, pytest.raises(LeaseLostError) as refused:
            b.confirm_held(build.id)
        assert (refused.value.build_id, refused.value.owner, refused.value.epoch) == (
            build.id, "pc-b", 0)
        assert refused.value.message == (
            f"build {build.id}: node pc-b no longer holds it (epoch 0): this node does not "
            "hold the build")
        assert lost == []  # nothing it held was lost
        assert logs == [{"event": "lease_lost", "build_id": build.id, "node": "pc-b",
                         "epoch": 0, "why": "this node does not hold the build",
                         "log_level": "warning"}]
        assert a.confirm_held(build.id).owner == "pc-a"


class TestLettingIdleBuildsGo:
    """An idle build is given back, unless it was taken over: then the node learns its loss."""

    def test_an_idle_build_still_held_is_let_go_for_any_node_to_recover(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)
        a.in_use = lambda _build_id, _state: False
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        with capture_logs() as logs:
            a.renew_all()
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["build_let_go"]
        assert a.held(build.id) is None and lost == []
        assert a.list_nodes()[0].held_builds == ()

    def test_an_idle_build_taken_over_meanwhile_is_reported_lost_not_let_go(
        self, node: NodeFactory
    ) -> None:
        lost: list[int] = []
        # A zero lease: the node "stalled" past it at once, and pc-b took the build over.
        a = node("pc-a", lease_s=0.0, on_lost=lost.append)
        a.in_use = lambda _build_id, _state: False
        b = node("pc-b")
        build = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1)])
        taken = b.claim_build("pc-b", states=[S.PROCESSING])
        assert taken is not None and taken.epoch == 2
        with capture_logs() as logs:
            a.renew_all()
        assert lost == [build.id]
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "build_lease_lost"]
        assert a.held(build.id) is None
        assert {n.info.id: n.held_builds for n in b.list_nodes()}["pc-b"] == (build.id,)


class TestWhatANodeActsOn:
    """Listings of claimable builds show the node's own; later states show everyone's."""

    def test_other_nodes_waiting_builds_are_not_listed_but_sent_ones_are(
        self, node: NodeFactory
    ) -> None:
        a, b = node("pc-a"), node("pc-b")
        mine = a.create_build(recipe="dental", job_ids=[j.id for j in _jobs(a, 1, tag="a")])
        theirs = b.create_build(recipe="dental", job_ids=[j.id for j in _jobs(b, 1, tag="b")])
        sent = b.create_build(recipe="dental", job_ids=[j.id for j in _jobs(b, 1, tag="c")])
        for step in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            b.transition_build(sent.id, step, str(step))
        listed = {x.id for x in a.list_builds()}
        assert mine.id in listed and sent.id in listed and theirs.id not in listed
        assert [x.id for x in a.list_builds(state=S.PROCESSING, limit=1)] == [mine.id]


class TestOrphanedJobs:
    """Jobs a gone node took but never batched are adopted by one node each."""

    def test_a_stopped_node_s_unbatched_jobs_go_to_one_adopter_each(
        self, node: NodeFactory
    ) -> None:
        gone, b, c = node("pc-gone"), node("pc-b"), node("pc-c")
        jobs = _jobs(gone, 6)
        for job in jobs:
            assert gone.claim_inbox_file("pc-gone", _INBOX / job.source_path.name,
                                         str(job.content_hash))
        batched = gone.create_build(recipe="dental", job_ids=[jobs[0].id])
        assert b.adopt_orphan_jobs("pc-b") == ()  # its node is alive: they are its own
        gone.node_stopped("pc-gone")
        won: dict[str, tuple[int, ...]] = {}

        def adopt(store: NodeJobStore) -> None:
            won[store.node_id] = store.adopt_orphan_jobs(store.node_id)

        threads = [threading.Thread(target=adopt, args=(s,)) for s in (b, c)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        adopted = sorted(won["pc-b"] + won["pc-c"])
        assert adopted == sorted(j.id for j in jobs if j.id != jobs[0].id)
        assert batched.id not in adopted
        assert b.adopt_orphan_jobs("pc-b") == () and c.adopt_orphan_jobs("pc-c") == ()

    def test_a_restarted_node_adopts_its_own_previous_life_s_jobs(
        self, node: NodeFactory
    ) -> None:
        a = node("pc-a")
        (job,) = _jobs(a, 1)
        a.claim_inbox_file("pc-a", _INBOX / job.source_path.name, str(job.content_hash))
        assert a.adopt_orphan_jobs("pc-a") == ()
        assert a.adopt_orphan_jobs("pc-a", own=True) == (job.id,)
