"""The fleet folder's prints feed keeps what every field of a print filter asks for, as the
Web API does: a caller asking for one printer's prints gets that printer's, never every one's."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import PrintFilter
from preform_pipeline.printing import FleetFolderFeed
from preform_pipeline.simulator.scene import SceneSettings

T0 = datetime(2021, 3, 2, 9, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=1, hours=1)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print(folder: Path, job_id: str, printer: str, machine: str, material: str, *,
           created: datetime, lasts: timedelta) -> None:
    """A job file as a simulated server writes it when it accepts a print."""
    job: dict[str, Any] = {
        "format": "preform-simulator-job", "version": 1, "job_id": job_id,
        "job_name": f"case {job_id}", "printer": printer,
        "scene_settings": SceneSettings(machine, material, 0.1).to_json(),
        "created_at": _iso(created), "started_at": _iso(created),
        "ends_at": _iso(created + lasts),
    }
    (folder / "jobs").mkdir(parents=True, exist_ok=True)
    (folder / "jobs" / f"{job_id}.json").write_text(json.dumps(job), encoding="utf-8")


@pytest.fixture
def feed(tmp_path: Path) -> FleetFolderFeed:
    """Four prints on three printers over two days; at NOW two have ended, two still print."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    _print(tmp_path, "a-grey", "Form4-A", "FORM-4-0", "FLGPGR05", created=T0, lasts=hour)
    _print(tmp_path, "a-black", "Form4-A", "FORM-4-0", "FLGPBK05", created=T0 + day,
           lasts=2 * hour)
    _print(tmp_path, "b-grey", "Form4-B", "FORM-4-0", "FLGPGR05", created=T0 + 2 * hour,
           lasts=hour)
    _print(tmp_path, "c-grey", "Form3-C", "FORM-3-0", "FLGPGR04", created=T0 + day,
           lasts=3 * hour)
    return FleetFolderFeed(tmp_path, clock=ManualClock(wall=NOW))


def _kept(feed: FleetFolderFeed, **fields: Any) -> list[str]:
    page = feed.list_prints_page(1, where=PrintFilter(**fields))
    assert page.count == len(page.items)
    return sorted(str(run.guid) for run in page.items)


class TestEveryFilterFieldIsHonoured:
    """Each field narrows the feed as the Web API narrows it; none is ignored."""

    def test_a_printer_gives_that_printer_s_prints_only(self, feed: FleetFolderFeed) -> None:
        assert _kept(feed, printer="Form4-A") == ["a-black", "a-grey"]
        assert _kept(feed, printer="Form4-B") == ["b-grey"]
        assert _kept(feed, printer="Form4") == []  # exact, not a part of the name

    def test_a_status_is_the_print_s_status_at_this_moment(self, feed: FleetFolderFeed) -> None:
        assert _kept(feed, status="FINISHED") == ["a-grey", "b-grey"]
        assert _kept(feed, status="PRINTING") == ["a-black", "c-grey"]
        assert _kept(feed, status="QUEUED") == []

    def test_a_material_is_the_code_the_scene_was_set_up_with(
        self, feed: FleetFolderFeed
    ) -> None:
        assert _kept(feed, material="FLGPGR05") == ["a-grey", "b-grey"]
        listed = feed.list_prints_page(1, where=PrintFilter(material="FLGPBK05")).items
        assert [(r.guid, r.material) for r in listed] == [("a-black", "FLGPBK05")]

    def test_machine_types_keep_a_print_on_any_of_them(self, feed: FleetFolderFeed) -> None:
        assert _kept(feed, machine_type_id="FORM-3-0") == ["c-grey"]
        assert _kept(feed, machine_type_id=("FORM-3-0", "FORM-4-0")) == [
            "a-black", "a-grey", "b-grey", "c-grey"]
        assert _kept(feed, machine_type_id="FORM-4L-0") == []

    def test_a_day_and_both_bounds_are_strict_where_the_web_api_s_are(
        self, feed: FleetFolderFeed
    ) -> None:
        assert _kept(feed, date=date(2021, 3, 2)) == ["a-grey", "b-grey"]
        assert _kept(feed, date__lt=T0 + timedelta(hours=2)) == ["a-grey"]
        assert _kept(feed, date__lt=date(2021, 3, 3)) == ["a-grey", "b-grey"]
        naive = (T0 + timedelta(hours=2)).replace(tzinfo=None)  # read as UTC, like the files
        assert _kept(feed, date__lt=naive) == ["a-grey"]
        assert _kept(feed, date=date(2021, 3, 3), date__gt=T0) == ["a-black", "c-grey"]
        # An exact moment is the one a job was created at, a naive one read as UTC too.
        assert _kept(feed, date=T0) == ["a-grey"]
        assert _kept(feed, date=T0.replace(tzinfo=None)) == ["a-grey"]

    def test_fields_together_keep_what_all_of_them_keep(self, feed: FleetFolderFeed) -> None:
        assert _kept(feed, printer="Form4-A", status="PRINTING") == ["a-black"]
        assert _kept(feed, printer="Form4-A", material="FLGPGR04") == []
        assert _kept(feed, name="case a-", date__gt=T0) == ["a-black"]

    def test_a_job_file_without_scene_settings_matches_no_material_or_machine_type(
        self, feed: FleetFolderFeed, tmp_path: Path
    ) -> None:
        (tmp_path / "jobs" / "bare.json").write_text(json.dumps(
            {"job_id": "bare", "printer": "Form4-A", "created_at": _iso(T0)}), encoding="utf-8")
        assert _kept(feed, printer="Form4-A") == ["a-black", "a-grey", "bare"]
        assert "bare" not in _kept(feed, material="FLGPGR05")
        assert "bare" not in _kept(feed, machine_type_id="FORM-4-0")
        assert _kept(feed, machine_type_id="None") == []  # no type is made up for it
