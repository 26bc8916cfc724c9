"""The fleet folder as a prints feed: what the simulator records is what the poller reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import PrintFilter
from preform_pipeline.printing import FleetFolderFeed, FleetFolderLocator, SendRecord
from preform_pipeline.simulator.fleet import FleetState
from preform_pipeline.store import embed_key
from preform_pipeline.verify.poller import PendingPrint, VerificationPoller, VerifiedStatus

T0 = datetime(2020, 1, 6, 8, 0, tzinfo=timezone.utc)
KEY_A, KEY_B, KEY_C = "PP-AAAAAAAAAA", "PP-BBBBBBBBBB", "PP-CCCCCCCCCC"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print(fleet: FleetState, key: str, printer: str, at: datetime, seconds: float,
           scale: float) -> dict[str, Any]:
    """Record a print the way the simulated server does: scheduled, then written."""
    job = {"job_id": f"job-{key}", "job_name": embed_key("C-1 upper", key), "printer": printer,
           "target_kind": "printer", "estimated_print_time_s": seconds, "created_at": _iso(at)}
    scheduled = fleet.schedule(job, scale)
    fleet.record_job(scheduled)
    return scheduled


class TestRecordedOutcomes:
    """The simulator records each print's start, end and outcome on its own clock."""

    def test_prints_on_one_printer_follow_each_other_and_an_error_ends_early(
        self, tmp_path: Path
    ) -> None:
        fleet = FleetState(tmp_path)
        (tmp_path / "outcomes.yaml").write_text(
            f'jobs:\n  - name: "*{KEY_B}*"\n    outcome: ERROR\n    at: 0.5\n'
            '    message: "Resin level too low"\n', encoding="utf-8")
        a = _print(fleet, KEY_A, "P1", T0, 1000, 0.01)  # 10 s
        b = _print(fleet, KEY_B, "P1", T0 + timedelta(seconds=1), 1000, 0.01)
        assert (a["started_at"], a["ends_at"], a["outcome"]) == (
            _iso(T0), _iso(T0 + timedelta(seconds=10)), "FINISHED")
        # B waits for A, then fails half-way through its 10 s.
        assert b["started_at"] == a["ends_at"]
        assert b["ends_at"] == _iso(T0 + timedelta(seconds=15))
        assert (b["outcome"], b["outcome_message"]) == ("ERROR", "Resin level too low")
        assert fleet.busy_until(0.01)["P1"] == T0 + timedelta(seconds=15)

    def test_without_a_time_scale_a_print_ends_as_it_starts(self, tmp_path: Path) -> None:
        a = _print(FleetState(tmp_path), KEY_A, "P1", T0, 1000, 0.0)
        assert a["started_at"] == a["ends_at"] == _iso(T0)


class TestFleetFolderFeed:
    """The feed shows each print queued, printing, then ended, as the Web API would."""

    def _fleet(self, tmp_path: Path) -> FleetState:
        fleet = FleetState(tmp_path)
        (tmp_path / "outcomes.yaml").write_text(
            f'jobs:\n  - name: "*{KEY_C}*"\n    outcome: ABORTED\n', encoding="utf-8")
        _print(fleet, KEY_A, "P1", T0, 1000, 0.01)
        _print(fleet, KEY_B, "P1", T0 + timedelta(seconds=1), 1000, 0.01)
        _print(fleet, KEY_C, "P2", T0 + timedelta(seconds=2), 1000, 0.01)
        return fleet

    def test_statuses_follow_the_clock(self, tmp_path: Path) -> None:
        self._fleet(tmp_path)
        clock = ManualClock(wall=T0 + timedelta(seconds=5))
        feed = FleetFolderFeed(tmp_path, clock=clock)

        def statuses() -> dict[str, str]:
            return {r.name.split()[-1]: r.status for r in feed.list_prints_page(1).items}

        assert statuses() == {KEY_A: "PRINTING", KEY_B: "QUEUED", KEY_C: "PRINTING"}
        clock.advance(6)  # 11 s: A ended, B prints; C aborted at half of its 10 s
        assert statuses() == {KEY_A: "FINISHED", KEY_B: "PRINTING", KEY_C: "ABORTED"}
        page = feed.list_prints_page(1)
        assert [r.name.split()[-1] for r in page.items] == [KEY_C, KEY_B, KEY_A]  # newest first
        running = next(r for r in page.items if r.status == "PRINTING")
        assert running.estimated_time_remaining_ms == 9000

    def test_date_filter_and_pages_are_honoured(self, tmp_path: Path) -> None:
        self._fleet(tmp_path)
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(seconds=60)))
        later = feed.list_prints_page(1, where=PrintFilter(date__gt=T0 + timedelta(seconds=1)))
        assert [r.name.split()[-1] for r in later.items] == [KEY_C]
        first = feed.list_prints_page(1, 2)
        assert len(first.items) == 2 and first.next_page == 2
        assert len(feed.list_prints_page(2, 2).items) == 1

    def test_the_shared_poller_verifies_through_it(self, tmp_path: Path) -> None:
        self._fleet(tmp_path)
        clock = ManualClock(wall=T0 + timedelta(seconds=30))
        poller = VerificationPoller(FleetFolderFeed(tmp_path, clock=clock), clock=clock,
                                    interval_s=1.0)
        pending = [PendingPrint(key, T0) for key in (KEY_A, KEY_B, KEY_C)]
        results = {r.key: r.status for r in poller.poll_once(pending)}
        assert results == {KEY_A: VerifiedStatus.FINISHED, KEY_B: VerifiedStatus.FINISHED,
                           KEY_C: VerifiedStatus.ABORTED}

    def test_the_locator_reports_the_status_of_the_moment(self, tmp_path: Path) -> None:
        self._fleet(tmp_path)
        send = SendRecord(None, KEY_B, None, "P1", T0, None)
        sighting = FleetFolderLocator(tmp_path).locate(send)
        # The locator reads the wall clock: long past these 2020 prints' ends.
        assert sighting is not None and sighting.status == "FINISHED"
        assert sighting.job_id == f"job-{KEY_B}"
