"""Interrupted sends: the key is looked up in the feed, the queues and the printer first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from verify_support import minutes, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.cloud.testing import (
    FakeWebApi,
    ScriptedAnswer,
    sample_group,
    sample_print_run,
    sample_printer,
    sample_queue_item,
)
from preform_pipeline.errors import CloudUnavailableError
from preform_pipeline.hotfolder.lookup import LookupStatus
from preform_pipeline.simulator.cloud import records
from preform_pipeline.store import Build, JobState, SqliteJobStore, embed_key
from preform_pipeline.verify import (
    PrintLookup,
    WebApiBuildLookup,
    settle_interrupted_sends,
)

GRACE_S = 300.0


def _sending_build(store: SqliteJobStore, tmp_name: str = "part.stl") -> Build:
    """A build left in print_sending, as a crash right after the request leaves it."""
    job = store.create_job(recipe="dental", source_path=tmp_name, state=JobState.PROCESSING)
    build = store.create_build(recipe="dental", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    return store.transition_build(
        build.id, JobState.PRINT_SENDING, "sending", job_name=embed_key("case 7", build.job_key),
        printer="Form4-SweetMatcha",
    )


@pytest.fixture
def lookup(client: WebApiClient, clock: ManualClock) -> PrintLookup:
    return PrintLookup(client, clock=clock, sleep=clock.sleep, grace_s=GRACE_S, retry_s=30)


class TestFind:
    """One lookup searches the prints feed, then Fleet Control queues, then the printer."""

    def test_a_print_in_the_feed_is_found_with_its_job_id(
        self, lookup: PrintLookup, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        key = "PP-4K7QX0M2ZD"
        fake_api.prints = [run_record(embed_key("case 7", key), status="PRINTING",
                                      guid="job-1", created=clock.now())]
        found = lookup.find(key, sent_at=clock.now() - minutes(2))
        assert found is not None
        assert (found.where, found.job_id, found.status) == ("prints feed", "job-1", "PRINTING")
        [request] = [r for r in fake_api.api_requests() if r.url.path.endswith("/prints/")]
        assert request.url.params["name"] == key

    def test_a_name_that_only_contains_the_key_as_a_substring_does_not_count(
        self, lookup: PrintLookup, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        fake_api.prints = [run_record("xPP-4K7QX0M2ZDx", status="FINISHED", created=clock.now())]
        assert lookup.find("PP-4K7QX0M2ZD") is None

    def test_a_job_waiting_in_a_fleet_control_queue_is_found(
        self, lookup: PrintLookup, fake_api: FakeWebApi
    ) -> None:
        group = sample_group()
        fake_api.groups = [group]
        fake_api.queues = {group["id"]: [sample_queue_item(id="q-7",
                                                           name="crowns PP-4K7QX0M2ZD")]}
        found = lookup.find("PP-4K7QX0M2ZD")
        assert found is not None
        assert (found.job_id, found.status) == ("q-7", "QUEUED")
        assert "Fleet Control queue" in found.where

    def test_the_target_printers_current_print_is_found(
        self, lookup: PrintLookup, fake_api: FakeWebApi
    ) -> None:
        printer = sample_printer(serial="Form4-Lab")
        printer["printer_status"]["current_print_run"] = records.nested_print_run(
            sample_print_run(name="case PP-4K7QX0M2ZD", status="PREPRINT", print_job="job-9")
        )
        fake_api.printers = [printer]
        found = lookup.find("PP-4K7QX0M2ZD", printer="Form4-Lab")
        assert found is not None
        assert (found.where, found.job_id) == ("the status of printer Form4-Lab", "job-9")

    def test_nothing_anywhere_is_none_and_an_unknown_printer_is_no_error(
        self, lookup: PrintLookup, fake_api: FakeWebApi
    ) -> None:
        fake_api.groups = [sample_group()]
        assert lookup.find("PP-4K7QX0M2ZD", printer="192.0.2.11") is None

    def test_a_failed_lookup_raises_rather_than_reading_as_not_found(
        self, lookup: PrintLookup, fake_api: FakeWebApi
    ) -> None:
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}))
        with pytest.raises(CloudUnavailableError):
            lookup.find("PP-4K7QX0M2ZD")


class TestWaitFor:
    """Not found counts only from a lookup that started after the grace period."""

    def test_not_found_is_concluded_once_the_grace_period_passed(
        self, lookup: PrintLookup, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        sent_at = clock.now() - timedelta(seconds=100)
        assert lookup.wait_for("PP-4K7QX0M2ZD", sent_at=sent_at) is None
        assert clock.slept >= GRACE_S - 100
        assert lookup.grace_left(sent_at) <= 0

    def test_a_print_that_shows_up_within_the_grace_period_is_found(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            fake_api.prints = [run_record("late PP-4K7QX0M2ZD", status="QUEUED",
                                          created=clock.now())]

        lookup = PrintLookup(client, clock=clock, sleep=sleep, grace_s=GRACE_S, retry_s=30)
        found = lookup.wait_for("PP-4K7QX0M2ZD", sent_at=clock.now())
        assert found is not None and found.status == "QUEUED"
        assert clock.slept == 30

    def test_a_failure_after_the_grace_period_raises(
        self, lookup: PrintLookup, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        fake_api.script(ScriptedAnswer(503, json={"detail": "down"}))
        with pytest.raises(CloudUnavailableError):
            lookup.wait_for("PP-4K7QX0M2ZD", sent_at=clock.now() - timedelta(hours=1))


class TestSettleInterruptedSends:
    """On start, builds caught in print_sending are found, proven unsent, or left alone."""

    def test_a_found_print_marks_the_build_print_sent_with_its_job_id(
        self, store: SqliteJobStore, lookup: PrintLookup, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build = _sending_build(store)
        fake_api.prints = [run_record(build.job_name or "", status="PRINTING", guid="job-5",
                                      created=clock.now())]
        [settled] = settle_interrupted_sends(store, lookup)
        assert settled.decision == "found"
        after = store.get_build(build.id)
        assert (after.state, after.print_job_id) == (JobState.PRINT_SENT, "job-5")
        assert "not sent again" in store.build_history(build.id)[-1].reason

    def test_a_print_missing_after_the_grace_period_is_safe_to_resend(
        self, store: SqliteJobStore, lookup: PrintLookup, clock: ManualClock
    ) -> None:
        build = _sending_build(store)
        clock.advance(GRACE_S + 1)
        [settled] = settle_interrupted_sends(store, lookup)
        assert settled.decision == "not_sent"
        assert store.get_build(build.id).state is JobState.PREPARED

    def test_a_recent_send_not_found_yet_is_left_undecided(
        self, store: SqliteJobStore, lookup: PrintLookup
    ) -> None:
        build = _sending_build(store)
        [settled] = settle_interrupted_sends(store, lookup)
        assert settled.decision == "undecided"
        assert store.get_build(build.id).state is JobState.PRINT_SENDING

    def test_without_credentials_nothing_is_decided(self, store: SqliteJobStore) -> None:
        build = _sending_build(store)
        [settled] = settle_interrupted_sends(store, None)
        assert (settled.decision, store.get_build(build.id).state) == (
            "undecided", JobState.PRINT_SENDING
        )


class TestHotFolderAdapter:
    """The hot-folder daemon's lookup protocol answered from the Web API."""

    def test_found_not_found_and_unknown(
        self, store: SqliteJobStore, lookup: PrintLookup, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        adapter = WebApiBuildLookup(lookup)
        build = _sending_build(store)
        assert adapter.settle_s == GRACE_S
        assert adapter.find(build).status is LookupStatus.NOT_FOUND
        fake_api.prints = [run_record(build.job_name or "", status="FINISHED", guid="j",
                                      created=clock.now())]
        found = adapter.find(build)
        assert (found.status, found.job_id) == (LookupStatus.FOUND, "j")
        fake_api.script(ScriptedAnswer(500, json={"detail": "boom"}))
        assert adapter.find(build).status is LookupStatus.UNKNOWN

