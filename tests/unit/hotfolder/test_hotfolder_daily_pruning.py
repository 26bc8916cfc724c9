"""A running daemon's days come from its clock: its daily pruning of old outputs, and the
names of its batches' run ids and output folders.

The daemon runs on a thread with a :class:`ManualClock`; the test moves the clock's days.
Each recipe's output folder is ``out/{date}``, so a root named by another clock than the
daemon's is not the one the test filled.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from daemon_support import Script, drop, make_daemon
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock, local_time
from preform_pipeline.hotfolder.testing import running_daemon, tetra_stl_bytes, wait_for
from preform_pipeline.hotfolder.testing import write_recipe as write_fast_recipe
from preform_pipeline.store import SqliteJobStore

DAY_S = 86_400.0
WAIT_S = 30.0
#: 06:00 on a fixed day in this machine's time zone: a few hours later it is the same day.
MORNING = datetime(2024, 5, 1, 6, 0).astimezone(timezone.utc)


def dated_recipe(tmp_path: Path) -> Path:
    """The fast recipe, its outputs below ``out/{date}``."""
    recipe = write_fast_recipe(tmp_path, name="hot")
    out = (tmp_path / "out").as_posix()
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace(f"root: {out}", f"root: {out}/{{date}}"), encoding="utf-8")
    return recipe


def written(path: Path, at: datetime) -> Path:
    """``path`` written, last modified at ``at``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}", encoding="utf-8")
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def day_folder(tmp_path: Path, clock: ManualClock, later_s: float = 0.0) -> Path:
    return tmp_path / "out" / f"{local_time(clock) + timedelta(seconds=later_s):%Y-%m-%d}"


def rescans_since(logs: list[dict[str, Any]], moment: float) -> list[dict[str, Any]]:
    """The daemon's periodic rescans that ran at ``moment`` (its clock's) or later."""
    return [e for e in logs if e["event"] == "hotfolder_rescanned" and e["monotonic"] >= moment]


class TestADaemonPrunesOnceADay:
    """With ``retention_days``, a running daemon prunes at its start and again a day later,
    by its own clock: the folder named for that day, files older than the days by then."""

    def test_the_next_days_folder_is_pruned_a_day_later(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        clock = ManualClock(wall=MORNING)
        today = day_folder(tmp_path, clock)
        tomorrow = day_folder(tmp_path, clock, DAY_S)
        stale = written(today / "reports" / "stale.json", MORNING - timedelta(days=31))
        due = written(tomorrow / "reports" / "due.json", MORNING - timedelta(days=29.5))
        # Two years old by the machine's own clock: only the daemon's clock keeps it young.
        young = written(tomorrow / "reports" / "young.json", MORNING - timedelta(days=10))
        daemon = make_daemon(tmp_path, store, script, dated_recipe(tmp_path), clock=clock,
                             hot={"output_root": None, "retention_days": 30})
        said: list[str] = []
        daemon.notice = said.append
        with capture_logs() as logs, running_daemon(daemon):
            # Its loop's first rescan is timed once it says it started: from then on the
            # clock's moves are the loop's.
            wait_for(lambda: any(e["event"] == "hotfolder_started" for e in logs), WAIT_S,
                     what="the daemon's loop")
            assert not stale.exists()  # the start's pruning
            assert due.exists()  # tomorrow's folder is not the one a batch would use today
            clock.advance(6 * 3600.0)  # the same day: a rescan, and no pruning yet
            later = clock.monotonic()
            wait_for(lambda: rescans_since(logs, later), WAIT_S, what="a rescan 6 hours on")
            assert [e["pruned"] for e in rescans_since(logs, later)] == [False]
            assert [e["root"] for e in logs if e["event"] == "retention_pruned"] == [str(today)]
            clock.advance(DAY_S - 5 * 3600.0)  # the next day, an hour past the start's time
            next_day = clock.monotonic()
            wait_for(lambda: not due.exists(), WAIT_S, what="the next day's pruning")
            wait_for(lambda: rescans_since(logs, next_day), WAIT_S, what="the next day's rescan")
            assert [e["pruned"] for e in rescans_since(logs, next_day)][:1] == [True]
        assert young.exists()
        assert said == [
            f"retention: removed 1 file older than 30 days (0.0 MB) from {today}: "
            "reports/stale.json",
            f"retention: removed 1 file older than 30 days (0.0 MB) from {tomorrow}: "
            "reports/due.json"]
        pruned = [e["root"] for e in logs if e["event"] == "retention_pruned"]
        assert pruned == [str(today), str(tomorrow)]


class TestABatchIsNamedByTheDaemonsClock:
    """A batch's run id and output folder carry the daemon's date, not the machine's."""

    def test_its_files_are_written_below_the_clocks_day(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        clock = ManualClock(wall=MORNING)
        script.saves_form = True
        daemon = make_daemon(tmp_path, store, script, dated_recipe(tmp_path), clock=clock,
                             hot={"output_root": None})
        drop(tmp_path, "part.stl", tetra_stl_bytes(1))
        report = tmp_path / "inbox" / "done" / "part.stl.report.json"

        def settled() -> bool:
            clock.advance(0.2)  # the quiet period and the batching window pass on its clock
            return report.exists()

        with running_daemon(daemon):
            wait_for(settled, WAIT_S, what="part.stl settled in done/")
        data = json.loads(report.read_text(encoding="utf-8"))
        (form,) = data["files_written"]
        folder = day_folder(tmp_path, clock)
        assert Path(form).parent == folder
        # The batch's run report, named by its run id: the clock's day and time of day.
        (run_report,) = (folder / "reports").glob("*.json")
        assert run_report.name.startswith(f"{local_time(clock):%Y%m%d}-06")
