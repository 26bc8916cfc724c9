"""Two prints carrying one job key: the newest run decides what the user is told."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from verify_support import minutes, newest_first, run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.simulator.cloud.testing import FakeWebApi
from preform_pipeline.store import embed_key, new_key
from preform_pipeline.verify import PendingPrint, VerificationPoller, VerifiedStatus


def _sent_twice(
    clock: ManualClock, fake_api: FakeWebApi, *, older: str, newer: str, older_message: str = ""
) -> PendingPrint:
    """One pending print whose job was sent twice: an older and a newer run in the feed."""
    item = PendingPrint(key=new_key(), sent_at=clock.now() - minutes(90), name="crowns")
    name = embed_key("crowns", item.key)
    fake_api.prints = newest_first([
        run_record(name, status=older, guid="run-older", message=older_message or None,
                   created=item.sent_at + minutes(1)),
        run_record(name, status=newer, guid="run-newer", created=item.sent_at + minutes(40)),
    ])
    return item


class TestDuplicateJobKeys:
    """The result carries the newest run's status and guid, and the duplicate is logged."""

    # By created_at: the contract promises no order, so a feed listed oldest first too.
    @pytest.mark.parametrize("oldest_first", [False, True])
    def test_a_newer_finished_run_wins_over_an_older_failed_one(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock,
        oldest_first: bool,
    ) -> None:
        item = _sent_twice(clock, fake_api, older="ERROR", newer="FINISHED",
                           older_message="Resin level too low")
        if oldest_first:
            fake_api.prints.reverse()
        with capture_logs() as logs:
            [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert (result.status, result.print_guid, result.message) == (
            VerifiedStatus.FINISHED, "run-newer", None
        )
        duplicates = [e for e in logs if e["event"] == "verify_duplicate_print"]
        assert [(e["job_key"], e["newest"], e["other"]) for e in duplicates] == [
            (item.key, "run-newer", "run-older")
        ]

    def test_a_newer_failed_run_wins_over_an_older_finished_one(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _sent_twice(clock, fake_api, older="FINISHED", newer="ABORTED")
        [result] = VerificationPoller(client, clock=clock).poll_once([item])
        assert (result.status, result.print_guid) == (VerifiedStatus.ABORTED, "run-newer")

    def test_a_newer_run_still_printing_keeps_the_print_in_progress(
        self, client: WebApiClient, fake_api: FakeWebApi, clock: ManualClock
    ) -> None:
        item = _sent_twice(clock, fake_api, older="FINISHED", newer="PRINTING")
        outcome = VerificationPoller(client, clock=clock).poll([item])
        assert outcome.results == ()
        assert [p.run.guid for p in outcome.in_progress] == ["run-newer"]

