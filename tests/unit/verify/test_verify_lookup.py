"""Sends a crash left in print_sending: what each becomes, and what the report says of it."""

from __future__ import annotations

import threading

from verify_support import run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.printing import PrintOwner, SendHolder
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.simulator.cloud.testing import FakeWebApi
from preform_pipeline.store import Build, JobState, SqliteJobStore, embed_key
from preform_pipeline.verify import settle_interrupted_sends


def _sending(store: SqliteJobStore, name: str, holder: SendHolder | None = None) -> Build:
    """A build whose print request was under way when the process died."""
    job = store.create_job(recipe="dental", source_path=f"{name}.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="dental", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    return store.transition_build(
        build.id, JobState.PRINT_SENDING, "sending", job_name=embed_key(name, build.job_key),
        printer="Form4-Lab", send_holder=holder.to_json() if holder is not None else None,
    )


def _owner(store: SqliteJobStore, client: WebApiClient, clock: ManualClock) -> PrintOwner:
    return PrintOwner(store, [WebApiLocator(client)], clock=clock)


class TestEachDecision:
    """Found, proven absent, not yet known and never knowable each say so and move the build."""

    def test_a_print_in_the_feed_is_found_and_sent(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build = _sending(store, "crash")
        fake_api.prints = [run_record(build.job_name or "", status="PRINTING",
                                      created=clock.now(), guid="job-9")]
        [settled] = settle_interrupted_sends(store, _owner(store, client, clock))
        assert settled.decision == "found"
        assert settled.reason.startswith("found in ")
        assert (settled.build.id, settled.build.state, settled.build.print_job_id) == (
            build.id, JobState.PRINT_SENT, "job-9")
        assert store.get_build(build.id).state is JobState.PRINT_SENT

    def test_a_print_missing_after_the_grace_period_may_be_sent_again(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        build = _sending(store, "gone", reaped_holder())
        clock.advance(3600)
        [settled] = settle_interrupted_sends(store, _owner(store, client, clock))
        assert settled.decision == "not_sent"
        assert "is gone and nothing in" in settled.reason
        assert settled.build.state is JobState.PREPARED
        assert store.get_build(build.id).state is JobState.PREPARED

    def test_a_print_not_seen_yet_is_left_sending_without_waiting(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        build = _sending(store, "young", reaped_holder(request_timeout_s=60))
        started = clock.monotonic()
        [settled] = settle_interrupted_sends(store, _owner(store, client, clock))
        assert settled.decision == "undecided"
        assert settled.reason.startswith("not seen yet;")
        assert settled.build.state is JobState.PRINT_SENDING
        assert store.get_build(build.id).state is JobState.PRINT_SENDING
        assert clock.monotonic() == started

    def test_waiting_looks_again_until_the_grace_period_passed(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        _sending(store, "young", reaped_holder(request_timeout_s=60))
        started = clock.monotonic()
        [settled] = settle_interrupted_sends(store, _owner(store, client, clock), wait=True)
        assert settled.decision == "not_sent"
        assert settled.build.state is JobState.PREPARED
        assert clock.monotonic() - started >= 60

    def test_a_stopped_wait_keeps_the_pending_answer(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock
    ) -> None:
        _sending(store, "young", reaped_holder(request_timeout_s=60))
        stop = threading.Event()
        stop.set()
        [settled] = settle_interrupted_sends(
            store, _owner(store, client, clock), wait=True, stop=stop)
        assert settled.decision == "undecided"
        assert settled.build.state is JobState.PRINT_SENDING

    def test_without_anywhere_to_look_the_send_is_unverified(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        build = _sending(store, "blind")
        [settled] = settle_interrupted_sends(store, PrintOwner(store, clock=clock))
        assert settled.decision == "unverified"
        assert settled.reason == (
            "there is no way to list the printer's jobs (no fleet folder, no Web API)")
        assert settled.build.state is JobState.UNVERIFIED
        assert store.get_build(build.id).state is JobState.UNVERIFIED


class TestWhichBuilds:
    """Only builds in print_sending are settled, each once, in the store's order."""

    def test_other_builds_are_left_alone(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        first, second = _sending(store, "a"), _sending(store, "b")
        job = store.create_job(recipe="dental", source_path="c.stl", state=JobState.PROCESSING)
        prepared = store.create_build(recipe="dental", job_ids=[job.id])
        settled = settle_interrupted_sends(store, PrintOwner(store, clock=clock))
        assert sorted(s.build.id for s in settled) == [first.id, second.id]
        assert {s.decision for s in settled} == {"unverified"}
        assert store.get_build(prepared.id).state is prepared.state

    def test_nothing_in_print_sending_settles_nothing(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        assert settle_interrupted_sends(store, PrintOwner(store, clock=clock)) == []
