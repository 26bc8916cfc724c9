"""Session 21's seed-38 sample of the store (real PostgreSQL): a node that creates a build while
the database is away (its sessions cut off, as a database restart would), and a build the node
loses while its renewal pass is on it."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import LeaseLostError, StoreError
from preform_pipeline.store import JobState
from tests.unit.store.conftest import NodeFactory, cut_off_stores


class TestABuildCreatedWhileTheDatabaseIsAway:
    """A node's new build that cannot reach the database is refused, names what it was doing,
    leaves nothing behind, and the next try creates and claims it."""

    def test_the_refusal_names_the_claimed_creation_and_the_retry_succeeds(
        self, node: NodeFactory, pg_url: str
    ) -> None:
        a = node("pc-a", lease_s=600.0)
        job = a.create_job(recipe="dental", source_path="/nas/processing/m.stl",
                           content_hash="sha256:m", state=JobState.PROCESSING)
        cut_off_stores(pg_url)
        with pytest.raises(StoreError) as caught:
            a.create_build(recipe="dental", job_ids=[job.id])
        assert str(caught.value).startswith(
            f"{pg_url}: cannot reach the PostgreSQL job store while creating a claimed build: ")
        assert caught.value.hint.startswith("check that the database server runs")
        # Nothing was written: no build, the job still waits to be batched, nothing is held.
        assert a.list_builds() == ()
        still = a.get_job(job.id)
        assert (still.state, still.build_id) == (JobState.PROCESSING, None)
        assert a.held_ids() == frozenset()
        build = a.create_build(recipe="dental", job_ids=[job.id])
        held = a.held(build.id)
        assert held is not None and held.owner == "pc-a"
        assert a.get_job(job.id).build_id == build.id
        assert [t.reason for t in a.build_history(build.id)] == ["batched"]


class TestABuildLostDuringTheRenewalPass:
    """A build the node loses after the renewal pass read its book, but before the pass renews
    it, stays lost: the pass ends normally and does not put the build back in the book."""

    def test_the_pass_ends_and_the_lost_build_stays_out_of_the_book(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        lost: list[int] = []
        # A node lease of 0 s: its send renews the build for the send's deadline, and the fence
        # right after (a later transaction, so a later now() on the database) finds less than
        # that deadline left and refuses. The build leaves the node's book, yet the database
        # still shows it as this node's, so the pass's own renewal of it succeeds.
        a = node("pc-a", lease_s=0.0, send_deadline_s=600.0, on_lost=lost.append, clock=clock)
        job = a.create_job(recipe="dental", source_path="/nas/processing/m.stl",
                           content_hash="sha256:m", state=JobState.PROCESSING)
        a.create_build(recipe="dental", job_ids=[job.id])  # its 0 s claim has run out
        lease = a.claim_build("pc-a", lease_s=600.0)
        assert lease is not None
        a.hold(lease)
        build_id = lease.build_id
        a.transition_build(build_id, JobState.PREPARING, "layout")
        a.transition_build(build_id, JobState.PREPARED, "saved")
        refused: list[str] = []

        def in_use(held_id: int, _state: JobState) -> bool:
            # The batch thread sends the build in the instant between the pass's look at the
            # book and its renewal of this build (the pass asks only about idle builds).
            try:
                a.transition_build(held_id, JobState.PRINT_SENDING, "send")
            except LeaseLostError as exc:
                refused.append(exc.message)
            return True

        a.in_use = in_use
        clock.advance(1)  # idle for longer than its (0 s) lease: the pass asks whether in use
        with capture_logs() as logs:
            a.renew_all()
        assert refused == [f"build {build_id}: node pc-a no longer holds it (epoch 2): its lease "
                           "has less than 600 s left, or is gone"]
        assert lost == [build_id]
        assert a.held(build_id) is None and a.held_ids() == frozenset()
        assert [(e["event"], e["build_id"]) for e in logs if e["log_level"] == "warning"] == [
            ("lease_lost", build_id), ("build_lease_lost", build_id)]
        assert a.get_build(build_id).state is JobState.PREPARED
