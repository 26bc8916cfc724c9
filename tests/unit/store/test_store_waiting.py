"""Builds waiting for a printer keep their target, priority and wait times in both stores, and a
cancelled member takes its waiting build back to preparation."""

from __future__ import annotations

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import JobState, JobStore
from tests.unit.store.conftest import build_in_state

TARGET = {"auto": True, "machine_type": "FORM-4-0", "material": "FLGPGR05"}


class TestWaitingBuilds:
    """A build that waits for a printer, on SQLite and on PostgreSQL alike."""

    def test_the_target_priority_and_start_of_the_wait_are_kept(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        build = build_in_state(store, JobState.PREPARED)
        clock.advance(5)
        waiting = store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer",
                                         expect=JobState.PREPARED, print_target=TARGET,
                                         priority=3)
        again = store.get_build(build.id)
        assert again == waiting
        assert again.print_target == TARGET and again.priority == 3
        assert again.waiting_since == clock.now() and again.wait_notified_at is None
        assert [j.state for j in store.build_members(build.id)] == [
            JobState.WAITING_FOR_PRINTER, JobState.WAITING_FOR_PRINTER
        ]
        assert [b.id for b in store.list_builds(state=JobState.WAITING_FOR_PRINTER)] == [build.id]

    def test_the_late_notice_is_stored_and_a_new_wait_clears_it(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        build = build_in_state(store, JobState.PREPARED)
        store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer",
                               print_target=TARGET)
        clock.advance(60)
        noted = store.update_build(build.id, wait_notified_at=clock.now().isoformat())
        assert noted.wait_notified_at == clock.now()
        store.transition_build(build.id, JobState.PROCESSING, "the .form is gone")
        store.transition_build(build.id, JobState.PREPARING, "again")
        store.transition_build(build.id, JobState.PREPARED, "again")
        clock.advance(1)
        rewaited = store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer")
        assert rewaited.waiting_since == clock.now() and rewaited.wait_notified_at is None

    def test_a_cancelled_member_sends_its_waiting_build_back_to_preparation(
        self, store: JobStore
    ) -> None:
        build = build_in_state(store, JobState.PREPARED)
        store.transition_build(build.id, JobState.WAITING_FOR_PRINTER, "no printer",
                               print_target=TARGET)
        first, second = build.job_ids
        store.transition(first, JobState.CANCELLED, "cancelled by a person")
        assert store.get_build(build.id).state is JobState.PROCESSING
        assert store.get_job(second).state is JobState.PROCESSING
        assert store.list_builds(state=JobState.WAITING_FOR_PRINTER) == ()
