"""A renewal pass that races the build's own work (NodeJobStore.renew_all, real PostgreSQL).

The pass copies the book, then renews each copy; meanwhile the build's work may move it on or
give it back. The ``in_use`` callback, which the pass asks about an idle build just before
renewing it, is where a test makes that work happen, deterministically (idle on the clock
seam).
"""

from __future__ import annotations

from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.fenced import NodeJobStore
from tests.unit.store.conftest import NodeFactory

S = JobState
LEASE_S = 30.0


def _build(store: NodeJobStore) -> Build:
    job = store.create_job(recipe="dental", source_path="/nas/processing/m.stl",
                           content_hash="sha256:m", state=S.PROCESSING)
    return store.create_build(recipe="dental", job_ids=[job.id])


class TestARenewalRacingTheBuildsWork:
    """What the build's work did while a renewal pass ran is what the book keeps."""

    def test_a_build_given_back_by_its_work_meanwhile_is_not_reported_lost(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        lost: list[int] = []
        a = node("pc-a", lease_s=LEASE_S, clock=clock, on_lost=lost.append)
        build = _build(a)

        def finished_meanwhile(build_id: int, state: JobState) -> bool:
            a.transition_build(build_id, S.PREPARING, "preparing")
            a.transition_build(build_id, S.FAILED, "the server refused it")  # given back
            return True

        a.in_use = finished_meanwhile
        clock.advance(LEASE_S + 1)  # idle past a lease: the pass asks before renewing
        with capture_logs() as logs:
            a.renew_all()
        assert lost == []  # no stop signal for a build that is over
        assert "build_lease_lost" not in [e["event"] for e in logs]
        assert a.held(build.id) is None
        assert a.get_build(build.id).state is S.FAILED

    def test_the_book_keeps_the_state_the_build_moved_to_and_the_renewed_lease(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        a = node("pc-a", lease_s=LEASE_S, clock=clock)
        build = _build(a)
        before = a.held(build.id)
        assert before is not None and before.state is S.PROCESSING

        def moved_on_meanwhile(build_id: int, state: JobState) -> bool:
            a.transition_build(build_id, S.PREPARING, "preparing")
            return True

        a.in_use = moved_on_meanwhile
        clock.advance(LEASE_S + 1)
        a.renew_all()
        after = a.held(build.id)
        assert after is not None
        assert after.state is S.PREPARING  # not the pass's stale copy
        assert after.epoch == before.epoch and after.until > before.until
