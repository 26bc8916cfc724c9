"""The fleet folder's prints feed field by field: each print as the Web API would list it at
each moment, the files a simulator leaves half-written or without an end, the filters, pages
and the budget the poller paces by."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import PrintFilter, PrintRun
from preform_pipeline.printing import FleetFolderFeed
from preform_pipeline.printing.fleetfolder import FLEET_FEED_BUDGET, read_fleet_jobs

T0 = datetime(2021, 3, 2, 9, 0, tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _job(folder: Path, job_id: str, **fields: Any) -> dict[str, Any]:
    """A job file as the simulated server writes it (``jobs/<job id>.json``)."""
    job = {"format": "preform-simulator-job", "version": 1, "job_id": job_id, **fields}
    (folder / "jobs").mkdir(parents=True, exist_ok=True)
    (folder / "jobs" / f"{job_id}.json").write_text(json.dumps(job), encoding="utf-8")
    return job


def _timed(folder: Path, job_id: str, *, start_s: float, end_s: float,
           created_s: float = 0.0, **fields: Any) -> dict[str, Any]:
    return _job(folder, job_id, created_at=_iso(T0 + timedelta(seconds=created_s)),
                started_at=_iso(T0 + timedelta(seconds=start_s)),
                ends_at=_iso(T0 + timedelta(seconds=end_s)), **fields)


def _only(feed: FleetFolderFeed) -> PrintRun:
    (run,) = feed.list_prints_page(1).items
    return run


class TestOnePrintOverTime:
    """A print is queued, then printing with the time it has left, then ended with its
    outcome, its times and its message, the rest of its fields as recorded."""

    def test_every_field_at_each_moment(self, tmp_path: Path) -> None:
        _timed(tmp_path, "job-1", created_s=0, start_s=10, end_s=70, job_name="C-1 PP-A",
               printer="Form4-A", layer_count=420, volume_ml=12.5, outcome="ERROR",
               outcome_message="Resin level too low")
        clock = ManualClock(wall=T0 + timedelta(seconds=5))
        feed = FleetFolderFeed(tmp_path, clock=clock)

        queued = _only(feed)
        assert (queued.guid, queued.print_job, queued.name, queued.printer) == (
            "job-1", "job-1", "C-1 PP-A", "Form4-A")
        assert (queued.status, queued.message) == ("QUEUED", None)
        assert (queued.layer_count, queued.volume_ml, queued.created_at) == (420, 12.5, T0)
        assert queued.estimated_duration_ms == 60_000
        assert (queued.print_started_at, queued.print_finished_at,
                queued.estimated_time_remaining_ms) == (None, None, None)

        clock.advance(5)  # the start itself: printing
        printing = _only(feed)
        assert printing.status == "PRINTING" and printing.message is None
        assert printing.print_started_at == T0 + timedelta(seconds=10)
        assert printing.print_finished_at is None
        assert printing.estimated_time_remaining_ms == 60_000
        assert printing.estimated_duration_ms == 60_000

        clock.advance(60)  # the end itself: over
        ended = _only(feed)
        assert (ended.status, ended.message) == ("ERROR", "Resin level too low")
        assert ended.print_started_at == T0 + timedelta(seconds=10)
        assert ended.print_finished_at == T0 + timedelta(seconds=70)
        assert ended.estimated_time_remaining_ms is None
        assert ended.estimated_duration_ms == 60_000
        assert ended.is_terminal

    def test_an_ended_print_without_an_outcome_finished_and_an_empty_message_is_none(
        self, tmp_path: Path
    ) -> None:
        _timed(tmp_path, "job-2", start_s=0, end_s=1, outcome=None, outcome_message="")
        ended = _only(FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(hours=1))))
        assert (ended.status, ended.message) == ("FINISHED", None)
        assert ended.print_finished_at == T0 + timedelta(seconds=1)

    def test_a_print_without_a_recorded_start_waits_until_its_end(self, tmp_path: Path) -> None:
        _job(tmp_path, "job-3", created_at=_iso(T0), ends_at=_iso(T0 + timedelta(seconds=30)))
        clock = ManualClock(wall=T0 + timedelta(seconds=29))
        feed = FleetFolderFeed(tmp_path, clock=clock)
        waiting = _only(feed)
        assert waiting.status == "QUEUED"
        assert (waiting.estimated_duration_ms, waiting.print_started_at) == (None, None)
        clock.advance(1)
        assert _only(feed).status == "FINISHED"


class TestFilesAsWritten:
    """Times without a zone are UTC; a file without an end says what it says; a file being
    replaced is left out with a warning; no folder is no prints."""

    def test_times_without_a_zone_are_read_as_utc(self, tmp_path: Path) -> None:
        naive = (T0 + timedelta(seconds=10)).replace(tzinfo=None)
        _job(tmp_path, "job-4", created_at=T0.replace(tzinfo=None).isoformat(),
             started_at=T0.replace(tzinfo=None).isoformat(), ends_at=naive.isoformat())
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(seconds=4)))
        run = _only(feed)
        assert run.status == "PRINTING"
        assert run.estimated_time_remaining_ms == 6_000

    def test_times_with_another_offset_keep_it(self, tmp_path: Path) -> None:
        paris = timezone(timedelta(hours=1))
        _job(tmp_path, "job-p", created_at=T0.astimezone(paris).isoformat(),
             started_at=T0.astimezone(paris).isoformat(),
             ends_at=(T0 + timedelta(seconds=10)).astimezone(paris).isoformat())
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(seconds=4)))
        run = _only(feed)
        assert run.status == "PRINTING"
        assert run.estimated_time_remaining_ms == 6_000

    def test_a_file_without_an_end_has_its_own_status_or_is_queued(
        self, tmp_path: Path
    ) -> None:
        _job(tmp_path, "job-5", created_at=_iso(T0), status="PAUSED",
             started_at=_iso(T0), outcome="ERROR", outcome_message="no")
        _job(tmp_path, "job-6", created_at=_iso(T0 + timedelta(seconds=1)),
             ends_at="not a time")
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(days=1)))
        runs = {r.guid: r for r in feed.list_prints_page(1).items}
        assert (runs["job-5"].status, runs["job-5"].message) == ("PAUSED", None)
        assert (runs["job-6"].status, runs["job-6"].message) == ("QUEUED", None)
        assert runs["job-5"].estimated_duration_ms is None
        assert runs["job-5"].print_started_at is None
        assert (runs["job-5"].name, runs["job-5"].printer) == ("", "")

    def test_a_half_written_file_is_left_out_and_logged(self, tmp_path: Path) -> None:
        for i in range(12):  # the half-written file is not the last one read
            _timed(tmp_path, f"job-7{i:02d}", start_s=0, end_s=1)
        broken = tmp_path / "jobs" / "job-8.json"
        broken.write_text('{"job_id": "job-8", "created', encoding="utf-8")
        (tmp_path / "jobs" / "job-9.json").write_text("[1, 2]", encoding="utf-8")
        with capture_logs() as logs:
            jobs = read_fleet_jobs(tmp_path)
        assert sorted(j["job_id"] for j in jobs) == [f"job-7{i:02d}" for i in range(12)]
        (warning,) = [e for e in logs if e["event"] == "fleet_job_unreadable"]
        assert warning["path"] == str(broken) and warning["log_level"] == "warning"
        assert "Unterminated string" in warning["error"]

    def test_no_jobs_folder_is_an_empty_feed(self, tmp_path: Path) -> None:
        (tmp_path / "jobs").write_text("not a folder", encoding="utf-8")
        assert read_fleet_jobs(tmp_path) == []
        page = FleetFolderFeed(tmp_path / "nowhere").list_prints_page(1)
        assert (page.items, page.count, page.next_page, page.previous_page) == ((), 0, None,
                                                                              None)


class TestListing:
    """Newest first, by name and by date as the Web API filters, in pages."""

    def _five(self, folder: Path) -> None:
        for i in range(5):
            _timed(folder, f"job-{i}", created_s=60 * i, start_s=60 * i, end_s=60 * i + 1,
                   job_name=f"{'upper' if i % 2 else 'lower'} arch {i}")

    def test_the_newest_come_first_and_a_tie_goes_by_job_id(self, tmp_path: Path) -> None:
        self._five(tmp_path)
        _timed(tmp_path, "job-9", created_s=240, start_s=240, end_s=241)
        _job(tmp_path, "job-x", job_name="no creation time")
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(hours=1)))
        assert [r.guid for r in feed.list_prints_page(1).items] == [
            "job-9", "job-4", "job-3", "job-2", "job-1", "job-0", "job-x"]

    def test_a_name_matches_a_part_of_the_job_name(self, tmp_path: Path) -> None:
        self._five(tmp_path)
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(hours=1)))
        page = feed.list_prints_page(1, where=PrintFilter(name="upper"))
        assert [r.guid for r in page.items] == ["job-3", "job-1"] and page.count == 2
        assert len(feed.list_prints_page(1, where=PrintFilter(name="")).items) == 5
        _job(tmp_path, "job-x", created_at=_iso(T0))  # a print without a name
        for text in ("X", "None"):
            assert feed.list_prints_page(1, where=PrintFilter(name=text)).items == ()

    def test_a_date_bound_is_strict_and_a_day_bounds_the_whole_day(
        self, tmp_path: Path
    ) -> None:
        self._five(tmp_path)
        _job(tmp_path, "job-n", job_name="no date")  # no creation time: counts as now
        _timed(tmp_path, "job-t", created_s=86_400 + 5, start_s=86_400 + 5, end_s=86_400 + 6)
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(days=2)))

        def after(bound: Any) -> list[str]:
            return sorted(r.guid for r in feed.list_prints_page(
                1, where=PrintFilter(date__gt=bound)).items)

        assert after(T0 + timedelta(seconds=120)) == ["job-3", "job-4", "job-n", "job-t"]
        naive = (T0 + timedelta(seconds=120)).replace(tzinfo=None)
        assert after(naive) == ["job-3", "job-4", "job-n", "job-t"]
        paris = (T0 + timedelta(seconds=120)).astimezone(timezone(timedelta(hours=1)))
        assert after(paris) == ["job-3", "job-4", "job-n", "job-t"]
        assert after(date(2021, 3, 2)) == ["job-n", "job-t"]
        assert after(None) == sorted(["job-0", "job-1", "job-2", "job-3", "job-4", "job-n",
                                      "job-t"])

    def test_pages_of_a_given_size_and_of_a_hundred(self, tmp_path: Path) -> None:
        self._five(tmp_path)
        feed = FleetFolderFeed(tmp_path, clock=ManualClock(wall=T0 + timedelta(hours=1)))
        assert [r.guid for r in feed.list_prints_page().items] == [
            "job-4", "job-3", "job-2", "job-1", "job-0"]  # the first page by default
        first, second, third = (feed.list_prints_page(n, 2) for n in (1, 2, 3))
        assert [r.guid for r in first.items] == ["job-4", "job-3"]
        assert (first.page, first.per_page, first.count, first.next_page,
                first.previous_page) == (1, 2, 5, 2, None)
        assert [r.guid for r in second.items] == ["job-2", "job-1"]
        assert (second.next_page, second.previous_page) == (3, 1)
        assert [r.guid for r in third.items] == ["job-0"]
        assert (third.next_page, third.previous_page) == (None, 2)
        exact = feed.list_prints_page(1, 5)
        assert (len(exact.items), exact.next_page, exact.previous_page) == (5, None, None)
        for i in range(5, 101):
            _timed(tmp_path, f"job-{i:03d}", created_s=60 * i, start_s=0, end_s=1)
        whole = feed.list_prints_page(1)
        assert (len(whole.items), whole.per_page, whole.count, whole.next_page) == (
            100, 100, 101, 2)
        assert [r.guid for r in feed.list_prints_page(2).items] == ["job-0"]


class TestBudget:
    """Reading files spends no request: the budget is always full, and counts the pages read."""

    def test_the_budget_is_full_and_counts_pages(self, tmp_path: Path) -> None:
        feed = FleetFolderFeed(tmp_path)
        assert feed.description == f"the fleet folder {tmp_path}"
        before = feed.budget()
        assert (before.spent, before.remaining, before.limit, before.window_s, before.total) \
            == (0, FLEET_FEED_BUDGET, FLEET_FEED_BUDGET, 3600.0, 0)
        feed.list_prints_page(1)
        feed.list_prints_page(2, 5)
        after = feed.budget()
        assert (after.spent, after.remaining, after.total) == (0, FLEET_FEED_BUDGET, 2)
