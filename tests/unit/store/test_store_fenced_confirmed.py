"""A build whose lease a node just confirmed (before loading it onto a server to send it) is
in use from then on: the node does not let it go as idle (real PostgreSQL, a manual clock)."""

from __future__ import annotations

from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import JobState
from tests.unit.store.conftest import NodeFactory

LEASE_S = 60.0


class TestAConfirmedBuild:
    """Confirming a lease counts as using the build, as a claim or a move does."""

    def test_a_build_confirmed_within_its_lease_is_renewed_a_lease_later_not_let_go(
        self, node: NodeFactory, clock: ManualClock
    ) -> None:
        a = node("pc-a", lease_s=LEASE_S, clock=clock)
        a.in_use = lambda _build_id, _state: False  # only the last touch keeps it
        job = a.create_job(recipe="dental", source_path="/nas/processing/m.stl",
                           content_hash="sha256:m", state=JobState.PROCESSING)
        build = a.create_build(recipe="dental", job_ids=[job.id])
        clock.advance(LEASE_S - 10)
        confirmed = a.confirm_held(build.id)
        clock.advance(20)  # a lease and more since the claim, 20 s since the confirmation
        with capture_logs() as logs:
            a.renew_all()
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == []
        held = a.held(build.id)
        assert held is not None and held.epoch == confirmed.epoch
        assert held.until >= confirmed.until
        # And once a whole lease has passed since the confirmation, it is idle and let go.
        clock.advance(LEASE_S)
        with capture_logs() as logs:
            a.renew_all()
        assert [e for e in logs if e["event"] == "build_let_go"] == [
            {"event": "build_let_go", "log_level": "warning", "build_id": build.id,
             "node": "pc-a", "state": "processing"}]
        assert a.held(build.id) is None
