"""The store's notices about names too long outlive neither their inbox nor their node.

A daemon keeps at its first scan (then daily) the notices whose file it finds in its inboxes,
and forgets then those nobody kept for ``NOTICE_RETENTION_S``: an inbox removed from the
settings leaves no row for ever, while the names in an inbox still watched are said once,
however long they stay, and its rescans between write nothing. The daemons run (most
``--once``) on a real SQLite store, on a :class:`ManualClock` the test moves by days (the
store's and the daemons' clock).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon_support import Script, make_daemon
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.daemon import NOTICE_RETENTION_S
from preform_pipeline.hotfolder.files import MAX_NAME_BYTES
from preform_pipeline.hotfolder.testing import (
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_recipe,
)
from preform_pipeline.store import SqliteJobStore

DAY_S = 86_400.0
WAIT_S = 30.0
LONG_NAME = "n" * (MAX_NAME_BYTES + 1) + ".stl"


def long_name_in_an_inbox(where: Path) -> Path:
    """A model whose name is a byte too long, in ``where/inbox``."""
    (where / "inbox").mkdir(parents=True)
    path = where / "inbox" / LONG_NAME
    path.write_bytes(tetra_stl_bytes(1))
    return path


class TestANoticeOfAnInboxRemovedFromTheSettings:
    """Its notice is forgotten once nobody kept it for the retention; the names of the inbox
    still watched are kept at each scan and said once."""

    def test_it_is_forgotten_after_the_retention_and_said_again_if_the_inbox_comes_back(
        self, tmp_path: Path
    ) -> None:
        clock = ManualClock()
        old, new = tmp_path / "old", tmp_path / "new"
        old_file, new_file = long_name_in_an_inbox(old), long_name_in_an_inbox(new)
        recipe = write_recipe(tmp_path, name="hot")

        with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:

            def once(where: Path) -> tuple[list[str], list[dict[str, Any]]]:
                """A daemon whose one inbox is ``where/inbox`` runs ``--once``: its lines and
                the notices it forgot by age."""
                daemon = make_daemon(where, store, Script(fleet_dir=where / "fleet"), recipe,
                                     clock=clock)
                lines: list[str] = []
                daemon.notice = lines.append
                with capture_logs() as logs:
                    assert daemon.run(once=True) == 0
                return lines, [e for e in logs if e["event"] == "notices_expired"]

            assert len(once(old)[0]) == 1  # said while its inbox was in the settings
            # From now on the settings name only the new inbox.
            (said,), _ = once(new)
            assert said.startswith(f"{new_file} stays in the inbox")
            clock.advance(NOTICE_RETENTION_S - DAY_S)
            assert once(new) == ([], [])  # a day short of the retention: nothing forgotten
            clock.advance(2 * DAY_S)

            lines, expired = once(new)

            assert lines == []  # the new inbox's name, kept at each scan, is not said again
            assert [(e["paths"], e["days"]) for e in expired] == [([str(old_file)], 30.0)]
            assert store.notice_keys("") == (f"drop_name_too_long {new_file}",)
            (again,), _ = once(old)  # the old inbox in the settings again: said once more
            assert again.startswith(f"{old_file} stays in the inbox")


def said_at(store_path: Path) -> list[tuple[str, str]]:
    """The notices' keys and stamps, read from the store's file by a connection of its own."""
    with contextlib.closing(sqlite3.connect(f"{store_path.as_uri()}?mode=ro", uri=True)) as db:
        return [(k, str(t)) for k, t in db.execute("SELECT key, said_at FROM notices")]


def data_version(db: sqlite3.Connection) -> int:
    """SQLite's count of the changes other connections committed to the file, as seen by
    ``db`` (it moves on each commit that changed the file, and on nothing else)."""
    return int(db.execute("PRAGMA data_version").fetchone()[0])


def rescanned(logs: Sequence[Mapping[str, Any]], clock: ManualClock) -> None:
    """Wait for the running daemon's rescan at the clock's time or later."""
    moment = clock.monotonic()
    wait_for(lambda: any(e["event"] == "hotfolder_rescanned" and e["monotonic"] >= moment
                         for e in logs), WAIT_S, what=f"a rescan at {moment}")


class TestANameTooLongThatStaysInItsInbox:
    """A running daemon rescans (every 60 s by default) an inbox whose too long name stays:
    the store is written when the notice is first said, not again at each rescan."""

    def test_rescans_write_nothing_and_the_notices_stamp_stays(
        self, tmp_path: Path, script: Script
    ) -> None:
        clock = ManualClock()
        long_file = long_name_in_an_inbox(tmp_path)
        store_path = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(store_path, clock=clock) as store, contextlib.closing(
            sqlite3.connect(store_path)
        ) as watcher:
            daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, name="hot"),
                                 clock=clock, hot={"rescan_interval_s": 60.0})
            lines: list[str] = []
            daemon.notice = lines.append
            with capture_logs() as logs, running_daemon(daemon):
                # Said (and written) once the loop judged the file; rescans come after.
                wait_for(lambda: bool(lines) and any(
                    e["event"] == "hotfolder_started" for e in logs), WAIT_S, what="the name said")
                first = said_at(store_path)
                before = data_version(watcher)
                for _ in range(3):
                    clock.advance(60.0)
                    rescanned(logs, clock)
                after, unchanged = data_version(watcher), said_at(store_path)
                clock.advance(DAY_S)  # a day on: the notice is kept, its stamp moves on
                rescanned(logs, clock)
                kept = said_at(store_path)
            assert [line.split(" stays")[0] for line in lines] == [str(long_file)]
            assert unchanged == first
            assert [key for key, _ in first] == [f"drop_name_too_long {long_file}"]
            assert after == before  # three rescans, no write
            assert [key for key, _ in kept] == [key for key, _ in first]
            assert kept[0][1] > first[0][1]
